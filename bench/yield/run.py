"""Yield benchmark: how many records survive the checks without repair (the MMM behaviour,
drop what fails), and with 1 and 2 repair turns, for both strategies.

The "model" is simulated: a local OpenAI-compatible server answering good translations with
known error rates on first answers, and fixing a given share of the defects when a repair turn
names them. This measures mmtrans's machinery on simulated errors, not a model's translation
quality. Tokens are counted by the simulator as characters / 2.

    python bench/yield/run.py [--records 2000] [--fix 0.8]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import mmtrans
from mmtrans import formats
from mmtrans.store import Store
from mmtrans.testing import FakeLLM, Reply, good_translation

STOCKMARK = Path(__file__).resolve().parents[2] / "tests/data/stockmark-ner-wikipedia/ner.json"


def uniform(*parts: Any) -> float:
    digest = hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def simulated_model(entity: float, kana: float, malformed: float, fix: float):
    """First answers: `entity` of them lose or alter an annotated string (or tag), `kana` keep
    kana, `malformed` are not JSON. A repair turn fixes the defect with probability `fix`."""

    asked: dict[str, int] = {}  # how often each record was asked: its turn (a repair turn
    # holds the first turn and the last answer only, so the message count does not tell it)

    def answer(source: str, payload: dict[str, Any], turn: int) -> dict[str, Any] | str:
        """One record's answer: its JSON object, or a malformed reply (a string)."""
        u = uniform(source)
        defect = ("entity" if u < entity else "kana" if u < entity + kana
                  else "malformed" if u < entity + kana + malformed else None)
        if defect and any(uniform(source, t) < fix for t in range(1, turn + 1)):
            defect = None
        answer = good_translation(payload)
        tagged = "entities" not in answer
        if defect == "entity":
            missing = uniform(source, "how") < 0.5
            if tagged and "<m1>" in answer["text"]:
                new = "" if missing else "m99"
                answer["text"] = answer["text"].replace("<m1>", f"<{new}>" if new else "")
                answer["text"] = answer["text"].replace("</m1>", f"</{new}>" if new else "")
            elif not tagged and answer["entities"]:
                if missing:
                    answer["entities"].pop()
                else:
                    answer["entities"][0]["text"] += " Jr"
        elif defect == "kana":
            answer["text"] += " これは"
        return f"Here is the translation: {answer['text']}" if defect == "malformed" else answer

    def script(payload: dict[str, Any], request: dict[str, Any]) -> Reply:
        messages = request["messages"]
        if "packed" in payload:  # --pack: first answers only; a malformed one has no text
            answers = []
            for item in payload["packed"]:
                one = {k: v for k, v in item.items() if k != "index"}
                source = json.dumps(one, ensure_ascii=False)
                asked[source] = asked.get(source, -1) + 1
                got = answer(source, one, 0)
                answers.append({"index": item["index"],
                                **(got if isinstance(got, dict) else {"oops": got})})
            content = json.dumps(answers, ensure_ascii=False)
        else:
            source = messages[3]["content"]
            source = source[source.index("{"):]
            turn = asked[source] = asked.get(source, -1) + 1
            got = answer(source, payload, turn)
            content = got if isinstance(got, str) else json.dumps(got, ensure_ascii=False)
        prompt_chars = sum(len(m["content"]) for m in messages)
        usage = {"prompt_tokens": prompt_chars // 2, "completion_tokens": len(content) // 2}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return Reply(content, usage=usage)

    return script


def run(strategy: str, source: Path, work: Path, n: int, script, pack: int = 1
        ) -> dict[str, Any]:
    db = work / f"{strategy}.{pack}.db"
    with FakeLLM(script) as llm:
        started = time.monotonic()
        mmtrans.translate(source, db, mmtrans.Settings(
            src="ja", tgt="en", labels=["scnm"], base_url=llm.base_url, model="simulated",
            strategy=strategy, repair=2, concurrency=16, pack=pack))
        seconds = time.monotonic() - started
    store = Store(db)
    run_id = store.latest_run()
    attempts = store.status()["attempts"]
    accepted_ids = [rid for rid, t in store.latest_translations(run_id).items()
                    if t.status == "accepted"]
    sources = {r.id: r for r in store.records(run_id)}
    store.close()
    # Rerun `mmtrans check` on every accepted record against its source: none may fail.
    exported = work / f"{strategy}.accepted.json"
    mmtrans.export(db, exported, fmt="mre")
    subset = work / f"{strategy}.sources.json"
    formats.write([sources[i] for i in sorted(accepted_ids, key=list(sources).index)],
                  subset, "stockmark")
    failing = sum(not v.ok for v in mmtrans.check_files(subset, exported, "ja", "en", ["scnm"]))

    kept = []
    total = 0
    for k in ("0", "1", "2"):
        total += attempts.get(k, {}).get("accepted", 0)
        kept.append(total)
    repair_tokens = sum(v["tokens"] for k, v in attempts.items() if k != "0")
    rescued = kept[2] - kept[0]
    return {
        "strategy": strategy, "records": n, "kept": kept,
        "kept_pct": [round(100 * k / n, 1) for k in kept],
        "lost_reduction_pct": round(100 * (1 - (n - kept[2]) / (n - kept[0])), 1)
        if n > kept[0] else 100.0,
        "extra_tokens_per_rescued": round(repair_tokens / rescued, 1) if rescued else 0,
        "first_answer_tokens_per_record": round(attempts["0"]["tokens"] / n, 1),
        "accepted_failing_check": failing, "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--entity", type=float, default=0.20)
    parser.add_argument("--kana", type=float, default=0.05)
    parser.add_argument("--malformed", type=float, default=0.03)
    parser.add_argument("--fix", type=float, default=0.8)
    parser.add_argument("--pack", type=int, default=1, help="records per first request")
    args = parser.parse_args()
    items = json.loads(STOCKMARK.read_text(encoding="utf-8"))[: args.records]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = work / "ner.json"
        source.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
        for strategy in ("default", "tagged"):
            for pack in sorted({1, args.pack}):
                script = simulated_model(args.entity, args.kana, args.malformed, args.fix)
                results.append({**run(strategy, source, work, len(items), script, pack),
                                "pack": pack})
    print(f"simulated first-answer errors: {args.entity:.0%} entity lost or altered, "
          f"{args.kana:.0%} kana left, {args.malformed:.0%} malformed; a repair turn fixes "
          f"{args.fix:.0%}")
    print("| strategy | pack | kept, no repair (MMM) | repair 1 | repair 2 | lost records cut by "
          "| extra tokens per rescued record | accepted failing `check` |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        k = r["kept_pct"]
        print(f"| {r['strategy']} | {r['pack']} | {k[0]}% | {k[1]}% | {k[2]}% | "
              f"{r['lost_reduction_pct']}% | {r['extra_tokens_per_rescued']} | "
              f"{r['accepted_failing_check']} |")
    print(json.dumps(results), file=sys.stderr)


if __name__ == "__main__":
    main()
