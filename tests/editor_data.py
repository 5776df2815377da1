"""IEPile relation and event records with a model's mistakes to fix in the review editor,
made through the real pipeline and the scripted server (the source lines are IEPile's own)."""

from __future__ import annotations

import json
from pathlib import Path

import mmtrans
from mmtrans.testing import FakeLLM, Reply, good_translation

from .conftest import DATA

#: IEPile RE sample line 1: 《喜剧之王》周星驰 (主演). The model's tail is a spelling the
#: translation does not hold.
RE_TEXT = ("To play your role well, read An Actor Prepares and The King of Comedy: the secret "
           "of how Stephen Chow rose from poverty.")
WRONG_TAIL = "Stephen Chiau"
#: IEPile EE sample line 1: 5月份在华裁员900余人 (组织关系-裁员; 裁员人数, 时间). The model
#: mistyped the time argument: "in Mai" is not in its own text.
EE_TEXT = ("The vanishing halo of foreign firms: over 900 people laid off in China in May, "
           "and the darling has turned sour.")
WRONG_TIME = "in Mai"


def relation_script(payload, request):
    if "relations" in payload:
        r = payload["relations"][0]
        return Reply(json.dumps({"text": RE_TEXT, "relations": [
            {"head": "The King of Comedy", "relation": r["relation"], "tail": WRONG_TAIL}]}))
    if "events" in payload:
        e = payload["events"][0]
        roles = [a["role"] for a in e["arguments"]]
        return Reply(json.dumps({"text": EE_TEXT, "events": [
            {"type": e["type"], "trigger": "laid off", "arguments": [
                {"role": roles[0], "text": "over 900 people"},
                {"role": roles[1], "text": WRONG_TIME}]}]}))
    return Reply(json.dumps(good_translation(payload), ensure_ascii=False))


def make_structures_db(tmp_path: Path) -> Path:
    """One store with two runs: an IEPile RE file and an IEPile EE file (first line of each
    sample), both flagged (`anchored`)."""
    db = tmp_path / "structures.db"
    for task in ("RE", "EE"):
        folder = tmp_path / task
        folder.mkdir()
        line = (DATA / "iepile" / task / "sample.json").read_text(encoding="utf-8") \
            .splitlines()[0]
        (folder / "sample.json").write_text(line + "\n", encoding="utf-8")
        with FakeLLM(relation_script) as llm:
            mmtrans.translate(folder / "sample.json", db, mmtrans.Settings(
                src="zh", tgt="en", labels=["iepile"], base_url=llm.base_url, repair=0,
                concurrency=1))
    return db
