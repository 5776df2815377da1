"""Resume benchmark: answers paid for and lost when a run is killed, again and again.

A 300-record run against a loopback server that answers each request after 1 s
(concurrency 4) is killed (SIGKILL, or SIGTERM with --signal TERM) 0.3 s after the server
delivered it 4 to 20 answers, ten times, then run to its end. The server notes when it
delivered each answer; an answer delivered to a client that was still alive, and asked
again by a later run, was bought twice. The figure should be 0: every answer is
committed the moment it arrives.

    python bench/resume/run.py [--records 300] [--kills 10] [--signal KILL|TERM]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mmtrans.testing import Deliveries, FakeLLM

STOCKMARK = Path(__file__).resolve().parents[2] / "tests/data/stockmark-ner-wikipedia/ner.json"


def command(source: Path, db: Path, base_url: str, concurrency: int) -> list[str]:
    return [sys.executable, "-m", "mmtrans", "translate", str(source), "--src", "ja",
            "--tgt", "en", "--labels", "scnm", "--db", str(db), "--base-url", base_url,
            "--model", "bench", "--concurrency", str(concurrency)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--signal", choices=["KILL", "TERM"], default="KILL")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--code", type=Path, help="run the client from this checkout (to "
                        "measure another version, e.g. main's)")
    args = parser.parse_args()
    chance = random.Random(args.seed)
    sig = getattr(signal, f"SIG{args.signal}")
    env = {**os.environ, "OPENAI_API_KEY": "bench"}
    if args.code:
        env["PYTHONPATH"] = str(args.code.resolve())  # and run there: -m looks in . first
    cwd = args.code.resolve() if args.code else None
    deaths: list[float] = []
    codes: list[int] = []
    load = os.getloadavg()[0]
    script = Deliveries(delay=args.latency)
    with tempfile.TemporaryDirectory() as tmp, FakeLLM(script) as server:
        # A killed client's connections break under the server's answers: expected here.
        server.server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        source, db = Path(tmp) / "ner.json", Path(tmp) / "run.db"
        items = json.loads(STOCKMARK.read_text(encoding="utf-8"))[:args.records]
        source.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
        cmd = command(source, db, server.base_url, args.concurrency)
        for _ in range(args.kills):
            process = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            # Killed 0.3 s after the server delivered 4 to 20 answers to this run.
            wanted = script.delivered_before(time.time()) + chance.randint(4, 20)
            while script.delivered_before(time.time()) < wanted and process.poll() is None:
                time.sleep(0.01)
            time.sleep(0.3)
            deaths.append(time.time())
            process.send_signal(sig)
            codes.append(process.wait())
        final = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
        twice = script.bought_twice(deaths)
        answered = script.answered()
    print(f"{args.records} records, latency {args.latency} s, concurrency {args.concurrency}, "
          f"{args.kills} x SIG{args.signal}, load {load:.2f} at start, "
          f"{os.getloadavg()[0]:.2f} at end")
    print(f"exit codes of the killed runs: {sorted(set(codes))}; final run: {final.returncode}")
    print(f"answers delivered: {answered}")
    print(f"delivered answers bought twice: {twice}")


if __name__ == "__main__":
    main()
