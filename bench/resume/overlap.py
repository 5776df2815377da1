"""Overlap benchmark: several `translate` runs on one store whose requests are the same.

The same input under three names is three runs (a run is its input's path and content and
its settings) whose every request is the same. Started together on one store against a
loopback server (0.5 s per answer, concurrency 4), they should ask each request once
between them: printed is how many requests were sent more than once (should be 0).

    python bench/resume/overlap.py [--records 100] [--runs 3] [--code ../main]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from mmtrans.testing import Deliveries, FakeLLM

STOCKMARK = Path(__file__).resolve().parents[2] / "tests/data/stockmark-ner-wikipedia/ner.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--code", type=Path, help="run the client from this checkout")
    args = parser.parse_args()
    env = {**os.environ, "OPENAI_API_KEY": "bench"}
    if args.code:
        env["PYTHONPATH"] = str(args.code.resolve())  # and run there: -m looks in . first
    cwd = args.code.resolve() if args.code else None
    script = Deliveries(delay=0.5)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp, FakeLLM(script) as server:
        source, db = Path(tmp) / "ner-0.json", Path(tmp) / "run.db"
        items = json.loads(STOCKMARK.read_text(encoding="utf-8"))[:args.records]
        source.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
        inputs = [source]
        for i in range(1, args.runs):
            inputs.append(Path(tmp) / f"ner-{i}.json")
            shutil.copy(source, inputs[-1])
        runs = [subprocess.Popen(
            [sys.executable, "-m", "mmtrans", "translate", str(path), "--src", "ja", "--tgt",
             "en", "--labels", "scnm", "--db", str(db), "--base-url", server.base_url,
             "--model", "bench", "--concurrency", "4"], env=env, cwd=cwd,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for path in inputs]
        codes = [run.wait() for run in runs]
        with script.lock:
            asked = Counter(identity for identity, _, _ in script.log)
    print(f"{args.runs} runs x {args.records} records, load {load:.2f} at start, "
          f"{os.getloadavg()[0]:.2f} at end; exit codes {codes}")
    print(f"requests asked: {sum(asked.values())} for {len(asked)} distinct")
    print(f"requests sent twice: {sum(n - 1 for n in asked.values())}")


if __name__ == "__main__":
    main()
