"""Double annotation by two annotators on two review servers over one store, through the API.

20 flagged stockmark records (every answer left with kana) are translated against a scripted
loopback server. Annotator A (server 1) decides all 20 first (edits 3, rejects the rest), then
B (server 2) decides the same 20 as the page does (read the record, send the decision with
what it showed as `seen`). Printed: how many of B's decisions were asked "someone decided this
record while you were on it" (409), how many records B was shown A's version instead of the
model's, the records agreement counts for the pair, and B's decision latency.

    python bench/team/run.py                 # this checkout, --overlap 2
    python bench/team/run.py --code /work/main   # another checkout (before: no --overlap)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LEFTOVER = " これは"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout to measure")
    parser.add_argument("--records", type=int, default=20)
    args = parser.parse_args()
    sys.path.insert(0, str(args.code.resolve()))

    import contextlib

    import httpx

    import mmtrans
    from mmtrans.review import Team, make_app
    from mmtrans.testing import FakeLLM, Reply, good_translation, serving

    def script(payload, request):
        answer = good_translation(payload)
        answer["text"] += LEFTOVER
        return Reply(json.dumps(answer, ensure_ascii=False))

    items = json.loads((ROOT / "tests/data/stockmark-ner-wikipedia/ner.json")
                       .read_text(encoding="utf-8"))[:args.records]
    try:
        team = Team(overlap=2)  # type: ignore[call-arg]
        mode = "--overlap 2"
    except TypeError:
        team, mode = Team(), "shared (no --overlap)"
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as servers:
        source = Path(tmp) / "scnm.json"
        source.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
        db = Path(tmp) / "team.db"
        with FakeLLM(script) as llm:
            mmtrans.translate(source, db, mmtrans.Settings(
                src="ja", tgt="en", labels=["scnm"], base_url=llm.base_url, repair=0))
        a = httpx.Client(base_url=servers.enter_context(serving(make_app(db, "aiko", team=team))))
        b = httpx.Client(base_url=servers.enter_context(serving(make_app(db, "ben"))))
        lead = httpx.Client(base_url=servers.enter_context(
            serving(make_app(db, "chie", team=Team(adjudicate=True)))))
        entries = a.get("/api/queue", params={"annotator": "aiko"}).json()["entries"]

        def decide(client, name, e, i, edit):
            view = client.get("/api/record", params={"run": e["run_id"], "id": e["id"],
                                                     "annotator": name}).json()
            body = {"run": e["run_id"], "id": e["id"], "annotator": name, "seen": view["seen"],
                    "decision": "reject"}
            if edit and view["target"]:
                t = view["target"]
                body.update(decision="edit", record={
                    "text": t["text"].removesuffix(LEFTOVER), "label": t["label"],
                    "mentions": [{"label": m["label"], "text": m["text"]}
                                 for m in t["mentions"]]})
            return view, client.post("/api/decision", json=body)

        for i, e in enumerate(entries):
            decide(a, "aiko", e, i, i >= len(entries) - 3)
        asked = shown_theirs = 0
        latencies = []
        for i, e in enumerate(entries):
            started = time.perf_counter()
            view, answer = decide(b, "ben", e, i, i >= len(entries) - 3)
            latencies.append((time.perf_counter() - started) * 1000)
            shown_theirs += view["version"] != "translation" or bool(view["reviews"])
            asked += answer.status_code == 409
        pairs = lead.get("/api/agreement").json()["pairs"]
    print(f"code: {args.code}  mode: {mode}  records: {len(entries)}")
    print(f"B's decisions asked about A's (409): {asked} of {len(entries)}")
    print(f"records B was shown A's version or decision: {shown_theirs} of {len(entries)}")
    print(f"agreement pairs counted: {[p['records'] for p in pairs]}")
    print(f"B read + decide: median {statistics.median(latencies):.1f} ms, "
          f"max {max(latencies):.1f} ms (load {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
