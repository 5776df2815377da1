"""Peak memory of `mmtrans translate` against the size of its input: it must not grow.

For each N given, a JSON array (one line, as `json.dumps` writes it) and a JSON Lines file of
N stockmark-like records (the 5,343 real sentences repeated, each copy with its own curid and
text) are translated by `mmtrans translate --concurrency 64`, in a process of its own, against
a loopback scripted server (in a process of its own) that answers at once. Figures: wall
seconds and the child's peak RSS (`ru_maxrss` of `os.wait4`) for the first run and for the
same command run again (a finished run: nothing is sent, the input is not decoded).

A full run sends one request per record; past `--full` records (default 200,000) a run is
given `--limit 2000` instead: it still reads, checks and stores every record (the input pass
is the part whose memory could grow), translates the first 2,000, and its rerun is the
finished run (`--limit` is not part of a run's identity).

    python bench/overhead/memory.py 200000 2000000 [--full 200000] [--concurrency 64]
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

from mmtrans.testing import ServerProcess, repeated_items

STOCKMARK = Path(__file__).resolve().parents[2] / "tests/data/stockmark-ner-wikipedia/ner.json"
LIMITED = 2000


def write_inputs(folder: Path, n: int) -> tuple[Path, Path]:
    """The N records as a one-line JSON array and as JSON Lines, written a record at a time."""
    array, lines = folder / f"ner{n}.json", folder / f"ner{n}.jsonl"
    with array.open("w", encoding="utf-8") as a, lines.open("w", encoding="utf-8") as j:
        a.write("[")
        for i, item in enumerate(repeated_items(STOCKMARK, n)):
            text = json.dumps(item, ensure_ascii=False)
            a.write(("," if i else "") + text)
            j.write(text + "\n")
        a.write("]")
    return array, lines


def timed(cmd: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MB) and exit code of `cmd` run to its end."""
    started = time.monotonic()
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    _, status, usage = os.wait4(process.pid, 0)
    error = process.stderr.read().decode("utf-8", "replace").strip()
    code = os.waitstatus_to_exitcode(status)
    if code:
        print(f"exit {code}: {error[-500:]}", file=sys.stderr)
    return time.monotonic() - started, usage.ru_maxrss / 1024, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", type=int, nargs="+", help="records per input")
    parser.add_argument("--full", type=int, default=200_000,
                        help=f"largest input translated in full (above: --limit {LIMITED})")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--tmp", default=None, help="folder for the inputs and stores")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp, ServerProcess() as server:
        for n in args.sizes:
            array, lines = write_inputs(Path(tmp), n)
            for source in (array, lines):
                db = Path(tmp) / f"{source.name}.db"
                cmd = [sys.executable, "-m", "mmtrans", "translate", str(source), "--src", "ja",
                       "--tgt", "en", "--labels", "scnm", "--db", str(db), "--base-url",
                       server.base_url, "--model", "bench", "--concurrency",
                       str(args.concurrency), "--no-fidelity"]
                if n > args.full:
                    cmd += ["--limit", str(LIMITED)]
                translated = n if n <= args.full else LIMITED
                for what in ("first run", "finished rerun"):
                    load = os.getloadavg()[0]
                    seconds, rss, code = timed(cmd)
                    rows.append((n, source.suffix, translated, what, seconds, rss, code, load))
                    print(*rows[-1], sep="\t", file=sys.stderr, flush=True)
                db.unlink(missing_ok=True)
                Path(f"{db}-lock").unlink(missing_ok=True)
            array.unlink()
            lines.unlink()
    print(f"mmtrans translate, {os.cpu_count()} cores; load = 1-minute load average at start")
    print("| records | input | translated | run | seconds | peak RSS MB | exit | load |")
    print("|---|---|---|---|---|---|---|---|")
    for n, kind, translated, what, seconds, rss, code, load in rows:
        print(f"| {n:,} | {kind} | {translated:,} | {what} | {seconds:.0f} | {rss:.0f} | "
              f"{code} | {load:.2f} |")


if __name__ == "__main__":
    main()
