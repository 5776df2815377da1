"""Overhead benchmark: what mmtrans itself costs per record when the model costs nothing.

First, against a bare loop: the 5,343 stockmark records are translated by `mmtrans translate
--concurrency 32` against a loopback server, in a process of its own, that answers at once;
and, in turn with it (A B A B, so a drift of the machine's speed hits both), a bare
`AsyncOpenAI` loop with 32 workers sends the same requests (mmtrans's own prompts for those
records, so the same sizes) through `chat.completions.create` to the same server. Both are
timed as whole processes, start to exit. Figures: mmtrans's records per second over the loop's
requests per second, unpacked (target >= 0.9) and with `--pack 8` (target >= 4). For
reference, the same loop through the SDK's own aiohttp client (`DefaultAioHttpClient`) too:
mmtrans sends through aiohttp (mmtrans/transport.py), and the ratio to that loop says what
mmtrans costs beside the HTTP library it chose.
mmtrans runs with its default check processes (one on a machine with a second core: the
checks of the answers in a forked process beside the run's; `--check-processes 0` adds the
runs with the checks in the run's own process, for comparison) and `--no-fidelity`: this
measures the client, and the fidelity check's model
(on by default once its extra is installed) is bench/fidelity's to measure; with it on, a
run of the 5,343 records took over 16 minutes on this machine.
mmtrans's modules are byte-compiled first, as `pip install` compiles them: a source tree run
with PYTHONDONTWRITEBYTECODE set (as here) would otherwise compile all of them again in every
run, about a second of each process's time on this machine that no installed copy pays, while
the loop's SDK comes compiled from site-packages.

Then, with `--full`: 50,000 records (the 5,343 sentences repeated, each copy with new ids and
its own text, so no request is a cache hit of another) by `mmtrans translate --concurrency 64`:
records per second and peak RSS for a fresh run, the same for a fully cached rerun, and how
long after its start a run killed half way with SIGKILL and resumed sends its first new
request.

    python bench/overhead/run.py [--rounds 3] [--check-processes 0]
                                 [--full [--records 50000] [--no-resume]]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mmtrans.check_pool import auto_processes
from mmtrans.testing import ServerProcess, repeated_items

STOCKMARK = Path(__file__).resolve().parents[2] / "tests/data/stockmark-ner-wikipedia/ner.json"


def make_input(path: Path, n: int) -> None:
    path.write_text(json.dumps(list(repeated_items(STOCKMARK, n)), ensure_ascii=False),
                    encoding="utf-8")


def command(source: Path, db: Path, base_url: str, concurrency: int,
            pack: int = 1, check_processes: int | None = None) -> list[str]:
    """`mmtrans translate` of `source`; `check_processes` None: its default."""
    return [sys.executable, "-m", "mmtrans", "translate", str(source), "--src", "ja",
            "--tgt", "en", "--labels", "scnm", "--db", str(db), "--base-url", base_url,
            "--model", "bench", "--concurrency", str(concurrency), "--pack", str(pack),
            "--no-fidelity",
            *(["--check-processes", str(check_processes)] if check_processes is not None
              else [])]


def write_requests(source: Path, path: Path) -> int:
    """The first turn mmtrans sends for each record of `source`, one JSON list a line."""
    from mmtrans import formats
    from mmtrans.labels import load_tables
    from mmtrans.payload import payload_json
    from mmtrans.prompts import load_prompt
    from mmtrans.records import Record

    prompt = load_prompt("ja", "en")
    table = load_tables(["scnm"], "ja", "en")
    n = 0
    with path.open("w", encoding="utf-8") as out:
        for record in formats.read(source):
            if isinstance(record, Record):
                messages = prompt.messages(payload_json(table.translate(record)), "ja", "en")
                out.write(json.dumps(messages, ensure_ascii=False) + "\n")
                n += 1
    return n


def bare_loop(base_url: str, requests: Path, concurrency: int, aiohttp: bool = False) -> None:
    """The bare `AsyncOpenAI` loop: `concurrency` workers send every request of `requests`;
    with `aiohttp`, through the SDK's own aiohttp client (`openai.DefaultAioHttpClient`)."""
    import asyncio

    import openai

    async def run() -> None:
        # (The SDK's default retries: the test server's listen backlog of 5 refuses some of
        # 32 connections opened at once, and mmtrans retries those too.)
        client = openai.AsyncOpenAI(api_key="none", base_url=base_url, http_client=(
            openai.DefaultAioHttpClient() if aiohttp else None))
        queue = [json.loads(line) for line in requests.read_text(encoding="utf-8").splitlines()]
        queue.reverse()

        async def worker() -> None:
            while queue:
                messages = queue.pop()
                answer = await client.chat.completions.create(model="bench", messages=messages)
                assert answer.choices[0].message.content

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        await client.close()

    asyncio.run(run())


def compile_mmtrans() -> None:
    """Byte-compile the mmtrans package that runs (as an installed copy is)."""
    import mmtrans

    compileall.compile_dir(Path(mmtrans.__file__).parent, quiet=1)


def against_bare_loop(rounds: int, concurrency: int, check_processes: int | None = None
                      ) -> list[tuple[str, str]]:
    """mmtrans (unpacked and --pack 8, with its default check processes) and the bare loop
    in turn, `rounds` times each; with `check_processes`, also both with
    `--check-processes` that many."""
    rows = []
    compile_mmtrans()
    runs: list[tuple[str, int, int | None]] = [
        ("bare", 0, None), ("bare aiohttp", 0, None), ("mmtrans", 1, None),
        ("pack 8", 8, None)]
    pool = f" --check-processes {check_processes}"
    if check_processes is not None:
        runs += [("mmtrans" + pool, 1, check_processes),
                 ("pack 8" + pool, 8, check_processes)]
    with tempfile.TemporaryDirectory() as tmp, ServerProcess() as server:
        source = Path(tmp) / "ner.json"
        make_input(source, len(json.loads(STOCKMARK.read_text(encoding="utf-8"))))
        requests = Path(tmp) / "requests.jsonl"
        n = write_requests(source, requests)
        bare = [sys.executable, __file__, "--bare", server.base_url, str(requests),
                "--concurrency", str(concurrency)]
        loops = {"bare": bare, "bare aiohttp": bare + ["--aiohttp"]}
        seconds: dict[str, list[float]] = {name: [] for name, *_ in runs}
        cpu: dict[str, list[float]] = {name: [] for name, *_ in runs}
        loads = [os.getloadavg()[0]]
        for i in range(rounds):
            for n_run, (name, pack, processes) in enumerate(runs):
                cmd = loops[name] if not pack else command(
                    source, Path(tmp) / f"run-{n_run}-{i}.db", server.base_url, concurrency,
                    pack, processes)
                wall, _, code = timed(cmd)
                if code:
                    raise SystemExit(f"{name} exited with {code}: {' '.join(cmd)}")
                seconds[name].append(wall)
                cpu[name].append(LAST_CPU[0])
            loads.append(os.getloadavg()[0])
    rate = {name: n / statistics.median(walls) for name, walls in seconds.items()}
    rows.append((f"bare AsyncOpenAI loop: requests/s ({n} requests, median of {rounds})",
                 f"{rate['bare']:.0f}"))
    rows.append(("the same loop through the SDK's aiohttp client (DefaultAioHttpClient): "
                 "requests/s", f"{rate['bare aiohttp']:.0f}"))
    for name, *_ in runs[2:]:
        shown = name.replace("pack 8", "mmtrans --pack 8")
        rows.append((f"{shown}: records/s", f"{rate[name]:.0f}"))
    for name, pack, _ in runs[2:]:
        shown = name.replace("pack 8", "mmtrans --pack 8")
        for loop, target in (("bare", f" (target >= {4 if pack > 1 else 0.9})"),
                             ("bare aiohttp", "")):
            ratio = [(n / m) / (n / b) for m, b in zip(seconds[name], seconds[loop])]
            rows.append((f"{shown} / {loop.replace('bare', 'bare loop')}, each round{target}",
                         ", ".join(f"{r:.2f}" for r in ratio)
                         + f"; median {statistics.median(ratio):.2f}"))
    rows.append(("CPU ms a record (a request for the loop), the process and its children, "
                 "median: " + ", ".join(name for name, *_ in runs),
                 ", ".join(f"{1000 * statistics.median(cpu[name]) / n:.2f}"
                           for name, *_ in runs)))
    rows.append(("load (1-minute average) before and after each round",
                 ", ".join(f"{x:.1f}" for x in loads)))
    return rows


#: CPU seconds (user and system) of the last command `timed` ran, its children included.
LAST_CPU = [0.0]


def timed(cmd: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MB) and exit code of `cmd` run to its end."""
    started = time.monotonic()
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    LAST_CPU[0] = usage.ru_utime + usage.ru_stime
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


def full(records: int, concurrency: int, resume: bool) -> list[tuple[str, str]]:
    rows = []
    compile_mmtrans()
    with tempfile.TemporaryDirectory() as tmp, ServerProcess() as server:
        source = Path(tmp) / "ner.json"
        make_input(source, records)
        db = Path(tmp) / "run.db"
        cmd = command(source, db, server.base_url, concurrency)
        load = os.getloadavg()[0]
        seconds, rss, code = timed(cmd)
        rows.append((f"{records} records, fresh run: records/s (load {load:.1f})",
                     f"{records / seconds:.0f}"))
        rows.append(("fresh run: peak RSS MB", f"{rss:.0f}"))
        rows.append(("fresh run: exit code", str(code)))
        rows.append(("store MB", f"{db.stat().st_size / 1e6:.0f}"))
        seconds, rss, code = timed(cmd)
        rows.append(("fully cached rerun: records/s", f"{records / seconds:.0f}"))
        rows.append(("fully cached rerun: peak RSS MB", f"{rss:.0f}"))
        if resume:
            delay = resume_delay(source, Path(tmp) / "resume.db", server, concurrency,
                                 records // 2)
            rows.append(("resumed run: first new request after s",
                         f"{delay:.2f}" if delay is not None else "none in 300 s"))
        rows.append(("load at the end", f"{os.getloadavg()[0]:.1f}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="A B rounds against the loop")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--check-processes", type=int, default=None,
                        help="also run both with --check-processes N (0: the checks in the "
                             "run's process)")
    parser.add_argument("--full", action="store_true",
                        help="also the 50,000-record fresh, cached and resumed runs")
    parser.add_argument("--records", type=int, default=50000, help="for --full")
    parser.add_argument("--no-resume", action="store_true", help="skip the resume figure")
    parser.add_argument("--bare", nargs=2, metavar=("BASE_URL", "REQUESTS"),
                        help=argparse.SUPPRESS)  # the bare loop's own process
    parser.add_argument("--aiohttp", action="store_true", help=argparse.SUPPRESS)  # its client
    args = parser.parse_args()
    if args.bare:
        bare_loop(args.bare[0], Path(args.bare[1]), args.concurrency, args.aiohttp)
        return
    print(f"{os.cpu_count()} cores; load {os.getloadavg()[0]:.1f} at start; mmtrans's "
          f"check processes by default here: {auto_processes()}", flush=True)
    rows = against_bare_loop(args.rounds, args.concurrency, args.check_processes)
    if args.full:
        rows += full(args.records, 64 if args.concurrency == 32 else args.concurrency,
                     not args.no_resume)
    print("| figure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
