"""Full-disk benchmark: a run whose store fills its disk, then resumed once there is room.

The store lives on a 2 MB tmpfs of its own (root only: `mount -t tmpfs`); a 500-record run
against a loopback server (0.2 s per answer, concurrency 4) fills it. Printed: the stopped
run's exit code, its error lines and whether any traceback showed, then, after the tmpfs is
grown to 64 MB and the run resumed, the delivered answers bought twice (should be 0).

    sudo python bench/resume/full_disk.py [--records 500] [--code ../main]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mmtrans.testing import Deliveries, FakeLLM

STOCKMARK = Path(__file__).resolve().parents[2] / "tests/data/stockmark-ner-wikipedia/ner.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--code", type=Path, help="run the client from this checkout")
    args = parser.parse_args()
    env = {**os.environ, "OPENAI_API_KEY": "bench"}
    if args.code:
        env["PYTHONPATH"] = str(args.code.resolve())  # and run there: -m looks in . first
    cwd = args.code.resolve() if args.code else None
    script = Deliveries(delay=0.2)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp, FakeLLM(script) as server:
        server.server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        disk = Path(tmp) / "disk"
        disk.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], check=True)
        try:
            source, db = Path(tmp) / "ner.json", disk / "run.db"
            items = json.loads(STOCKMARK.read_text(encoding="utf-8"))[:args.records]
            source.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
            cmd = [sys.executable, "-m", "mmtrans", "translate", str(source), "--src", "ja",
                   "--tgt", "en", "--labels", "scnm", "--db", str(db), "--base-url",
                   server.base_url, "--model", "bench", "--concurrency", "4"]
            full = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
            stopped = time.time()
            answered = script.answered()
            subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
            resumed = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
        finally:
            subprocess.run(["umount", "-l", str(disk)], check=False)
    errors = [line for line in full.stderr.splitlines() if "error" in line.lower()]
    print(f"{args.records} records, load {load:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    print(f"full disk: exit {full.returncode}, {answered} answers delivered, "
          f"tracebacks: {full.stderr.count('Traceback')}")
    for line in errors[:6]:
        print(f"  {line.strip()[:160]}")
    print(f"resumed with room: exit {resumed.returncode}")
    print(f"delivered answers bought twice: {script.bought_twice([stopped])}")


if __name__ == "__main__":
    main()
