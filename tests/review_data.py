"""A run with flagged records to review, made through the real pipeline and scripted server."""

from __future__ import annotations

import json
from pathlib import Path

import mmtrans
from mmtrans.testing import FakeLLM, Reply, good_translation

# stockmark indexes: 2 松友美佐紀 (flagged: anchored), 2299 IBM (flagged: residual kana),
# 2517 安丹駅 (flagged: reply does not parse), 1 Red Fox, 3 and 5 accepted.
INDEXES = [1, 2, 3, 2299, 5, 2517]
WRONG_NAME = "Misaki Matsumoto"


def script(payload, request):
    answer = good_translation(payload)
    text = payload["text"]
    if text.startswith("松友美佐紀"):
        answer["entities"][0]["text"] = WRONG_NAME  # not in the translated text
    elif text.startswith("1964年"):
        answer["text"] += " これは"
    elif text.startswith("安丹駅"):
        return Reply("Sorry, I cannot do that.")
    return Reply(json.dumps(answer, ensure_ascii=False))


def make_review_db(tmp_path: Path, items: list[dict]) -> Path:
    source = tmp_path / "scnm.json"
    source.write_text(json.dumps([items[i] for i in INDEXES], ensure_ascii=False),
                      encoding="utf-8")
    db = tmp_path / "review.db"
    with FakeLLM(script) as llm:
        mmtrans.translate(source, db, mmtrans.Settings(
            src="ja", tgt="en", labels=["scnm"], base_url=llm.base_url, repair=0,
            concurrency=1))
    return db
