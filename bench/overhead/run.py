"""Overhead benchmark: what mmtrans itself costs per record when the model costs nothing.

50,000 records (the 5,343 stockmark sentences repeated, each copy with new ids and its own
text, so no request is a cache hit of another) are translated by `mmtrans translate
--concurrency 64` against a loopback server, in a process of its own, that answers at once.
Figures: records per second end to end and the client's peak RSS for a fresh run; the same for
the same command run again when everything is done (a fully cached rerun); and, for a run
killed half way with SIGKILL, how long after its start the resumed run sends its first new
request.

    python bench/overhead/run.py [--records 50000] [--concurrency 64] [--no-resume]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mmtrans.testing import ServerProcess

STOCKMARK = Path(__file__).resolve().parents[2] / "tests/data/stockmark-ner-wikipedia/ner.json"


def make_input(path: Path, n: int) -> None:
    items = json.loads(STOCKMARK.read_text(encoding="utf-8"))
    out = []
    for i in range(n):
        item = dict(items[i % len(items)])
        copy = i // len(items)
        if copy:
            # Appended text keeps every entity span where it was.
            item["curid"] = f"{item['curid']}-{copy}"
            item["text"] = f"{item['text']}（{copy}）"
        out.append(item)
    path.write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")


def command(source: Path, db: Path, base_url: str, concurrency: int) -> list[str]:
    return [sys.executable, "-m", "mmtrans", "translate", str(source), "--src", "ja",
            "--tgt", "en", "--labels", "scnm", "--db", str(db), "--base-url", base_url,
            "--model", "bench", "--concurrency", str(concurrency)]


def timed(cmd: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MB) and exit code of `cmd` run to its end."""
    started = time.monotonic()
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    return time.monotonic() - started, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def translations(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return conn.execute("select count(*) from translations").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def resume_delay(source: Path, db: Path, server: ServerProcess, concurrency: int,
                 kill_at: int) -> float | None:
    """Seconds from the start of a resumed run to its first new request, after a run
    killed with SIGKILL once `kill_at` records were translated."""
    cmd = command(source, db, server.base_url, concurrency)
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 1800
    while translations(db) < kill_at and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    first.send_signal(signal.SIGKILL)
    first.wait()
    started = time.time()
    second = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.time() - started < 300:
            arrived = server.first_request_after(started)
            if arrived is not None:
                return arrived - started
            time.sleep(0.05)
        return None
    finally:
        second.send_signal(signal.SIGKILL)
        second.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--no-resume", action="store_true", help="skip the resume figure")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, ServerProcess() as server:
        source = Path(tmp) / "ner.json"
        make_input(source, args.records)
        db = Path(tmp) / "run.db"
        cmd = command(source, db, server.base_url, args.concurrency)
        load = os.getloadavg()[0]
        seconds, rss, code = timed(cmd)
        rows.append(("fresh run: records/s", f"{args.records / seconds:.0f}"))
        rows.append(("fresh run: peak RSS MB", f"{rss:.0f}"))
        rows.append(("fresh run: exit code", str(code)))
        rows.append(("store MB", f"{db.stat().st_size / 1e6:.0f}"))
        seconds, rss, code = timed(cmd)
        rows.append(("fully cached rerun: records/s", f"{args.records / seconds:.0f}"))
        rows.append(("fully cached rerun: peak RSS MB", f"{rss:.0f}"))
        if not args.no_resume:
            delay = resume_delay(source, Path(tmp) / "resume.db", server, args.concurrency,
                                 args.records // 2)
            rows.append(("resumed run: first new request after s",
                         f"{delay:.2f}" if delay is not None else "none in 300 s"))
        end_load = os.getloadavg()[0]
    print(f"{args.records} records, concurrency {args.concurrency}, "
          f"load {load:.2f} at start, {end_load:.2f} at end")
    print("| figure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
