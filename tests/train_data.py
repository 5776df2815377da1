"""A translated store for the training-side commands (stats, splits, exports), made through
the real pipeline and the scripted server, with a repaired, flagged and reviewed record."""

from __future__ import annotations

import json
from pathlib import Path

import mmtrans
from mmtrans.store import Store
from mmtrans.testing import FakeLLM, Reply, good_translation

# stockmark items 0-9 (all in data/samples too): 2 松友美佐紀 (always loses a string:
# flagged, anchored), 8 2015年5月7日 (kana left in the first answer only: repaired), 9 IHG
# (never parses: flagged, format); the other seven are accepted at once.
INDEXES = list(range(10))


def script(payload, request):
    answer = good_translation(payload)
    text = payload["text"]
    first_turn = len(request["messages"]) == 4
    if text.startswith("松友美佐紀"):
        answer["entities"][0]["text"] = "Misaki Matsumoto"
    elif text.startswith("2015年5月7日") and first_turn:
        answer["text"] += " これは"
    elif text.startswith("IHG"):
        return Reply("Sorry, I cannot do that.")
    return Reply(json.dumps(answer, ensure_ascii=False))


def make_train_db(tmp_path: Path, items: list[dict], name: str = "scnm.json",
                  tgt: str = "en") -> Path:
    """10 records: 8 accepted (one of them at the repair turn), 2 flagged. Reviews: the
    first record rejected, the flagged 松友美佐紀 accepted; so 8 are kept."""
    source = tmp_path / name
    source.write_text(json.dumps([items[i] for i in INDEXES], ensure_ascii=False),
                      encoding="utf-8")
    db = tmp_path / "train.db"
    with FakeLLM(script) as llm:
        result = mmtrans.translate(source, db, mmtrans.Settings(
            src="ja", tgt=tgt, labels=["scnm"], base_url=llm.base_url, repair=1,
            concurrency=2))
    with Store(db) as store:
        ids = [r.id for r in store.records(result["run_id"])]
        store.add_review(result["run_id"], ids[0], "aiko", "reject")
        store.add_review(result["run_id"], ids[2], "aiko", "accept")
    return db
