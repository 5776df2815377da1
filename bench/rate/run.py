"""Rate benchmark: how close mmtrans keeps to an endpoint's request limit, on limiters built
the different ways real endpoints build them, idle and with a busy process beside it.

For each semantics of mmtrans/limiters.py (`bucket`: OpenAI's refilling bucket; `sliding`: a
sliding 60 s log whose remaining stays near zero at full pace and whose reset says `1s`;
`window10`: Azure's fixed 10 s windows), without and with a per-second quantum (no more than
rpm/60 within any 1 s span, `sliding`, or within each second of the server's clock, `fixed`),
at each RPM, a loopback server in a process of its own enforces the limit (latency uniform
150-600 ms), counting each request at the kernel's receive time (`--front threads`: when a
server thread parsed it), and answers good translations of stockmark records, so
prompts and answers have their real sizes. The limit is not given to mmtrans: it learns it from
the answers. Each run lasts about `--seconds` at the limit (records = rpm * seconds / 60, the
5,343 stockmark sentences repeated with their own text when more are needed). `busy` runs a
process spinning on the CPU beside the client (the machine has 2 cores). The fraction of the
limit is measured by the server, from the first request it admitted to the last, and from 5 s
after the first on: the limit is learned from the first answer, and until it comes one request
is in flight, so the first ~0.8 s of a run go at no pace (a limiter that also counts per
second never lets that time be made up).

The fraction of the limit: requests admitted over the run's window (from the first admitted to
the last, N - 1 intervals) divided by the limit's steady allowance over that window (rpm/60 a
second). The allowance a limiter has at the start beyond its steady rate (a bucket that
starts full, a sliding minute or a first 10 s window that starts empty) is left out, so a
client that burst it would show more than 1; mmtrans never bursts it. "from the first answer"
is the same from the moment the server sent its first answer, which names the limit: until
then one request is in flight (about one latency, 0.4 s, at no pace: 0.6% of a 65 s run,
nothing of an hour's; a limiter that counts per second never lets it be made up). "from 5 s
on" is the same from 5 s after the first admitted request.

`--virtual` prints the same table from `mmtrans.limiters.simulate`: the real RateLimiter against
the same limiters in virtual time, with what a busy machine adds made explicit (each request
reaching the limiter late by 1 ms on average, exponentially; every wake-up of the client as
late; "busy core": 4 ms, 10 ms at 600 RPM). It takes seconds, is the same on every machine,
and separates the pacing from the client's CPU, which decides the 10,000 RPM rows of a real run
on a loaded machine.

Beside the pace each row shows the client's CPU (this process over the wall), requests sent
a second, the lateness from the SDK's post being entered to the kernel's receive time at the
server (request by request), the client's event-loop lag (a 5 ms timer's overshoot) and the
connections the server accepted. `bench/rate/stages.py` traces one row's sends stage by stage.

    python bench/rate/run.py                       # every row: about 30 minutes
    python bench/rate/run.py --rpm 600 --quantum sliding --json rows.json   # in parts ...
    python bench/rate/run.py --table rows.json more.json                     # ... one table
    python bench/rate/run.py --semantics sliding --rpm 600 --load busy --seconds 65
    python bench/rate/run.py --virtual             # every row in virtual time: seconds
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import mmtrans
from mmtrans.limiters import FRONTS, QUANTA, SEMANTICS, LimitedServer, message_key
from mmtrans.llm import OpenAIBackend
from mmtrans.testing import repeated_items

STOCKMARK = Path(__file__).resolve().parents[2] / "tests/data/stockmark-ner-wikipedia/ner.json"
SPIN = "while True: pass"


def make_input(path: Path, n: int) -> None:
    path.write_text(json.dumps(list(repeated_items(STOCKMARK, n)), ensure_ascii=False),
                    encoding="utf-8")


class Sends:
    """When the client sent each request (wall clock, as the server's arrivals): the SDK's
    post is entered right after the limiter let the request go."""

    def __init__(self) -> None:
        self.times: dict[int, list[float]] = {}
        self.original = OpenAIBackend._create
        self.lags: list[float] = []  # how late the event loop ran a 5 ms timer, each time
        self.probe: asyncio.Task[None] | None = None

    async def _probe(self) -> None:
        """The event loop's own lateness: a send can go no sooner than the loop runs it."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + 0.005
            await asyncio.sleep(0.005)
            self.lags.append(loop.time() - due)

    def __enter__(self) -> Sends:
        sends, original = self, self.original

        async def create(backend: OpenAIBackend, messages: Any, params: Any) -> Any:
            key = message_key({"messages": messages})
            sends.times.setdefault(key, []).append(time.time())
            if sends.probe is None:  # (asyncio.run cancels it when the run ends)
                sends.probe = asyncio.get_running_loop().create_task(sends._probe())
            return await original(backend, messages, params)

        OpenAIBackend._create = create  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: Any) -> None:
        OpenAIBackend._create = self.original  # type: ignore[method-assign]

    def lateness(self, arrivals: list[tuple[float, bool, int]]) -> list[float]:
        """Seconds from each send to its arrival at the server."""
        return sorted(arrived - sent for (arrived, _, _), sent in paired(arrivals, self.times))


def paired(arrivals: list[tuple[float, bool, int]], sends: dict[int, list[Any]]
           ) -> list[tuple[tuple[float, bool, int], Any]]:
    """Each arrival (time, admitted, request key) with its send: the k-th send of a request
    is its k-th arrival; an arrival with no send recorded is left out."""
    seen: dict[int, int] = {}
    pairs = []
    for arrival in arrivals:
        key = arrival[2]
        k = seen.get(key, 0)
        seen[key] = k + 1
        sent = sends.get(key, [])
        if k < len(sent):
            pairs.append((arrival, sent[k]))
    return pairs


def percentile(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, int(share * len(values)))] if values else 0.0


def run_one(semantics: str, quantum: str | None, rpm: float, busy: bool, seconds: float,
            concurrency: int, front: str) -> dict[str, object]:
    records = max(50, round(rpm * seconds / 60))
    spinner = subprocess.Popen([sys.executable, "-c", SPIN]) if busy else None
    try:
        with tempfile.TemporaryDirectory() as tmp, \
                LimitedServer(semantics, rpm, quantum=quantum or False, front=front) as server, \
                Sends() as sends:
            source = Path(tmp) / "ner.json"
            make_input(source, records)
            # No fidelity check: its embedding model per record is CPU beside the pacing
            # (bench/fidelity measures it); at 10,000 RPM it alone would decide the pace.
            settings = mmtrans.Settings(src="ja", tgt="en", labels=["scnm"], model="gpt-4o-mini",
                                        base_url=server.base_url, repair=0,
                                        concurrency=concurrency, fidelity=False)
            load = os.getloadavg()[0]
            started, cpu = time.monotonic(), time.process_time()
            result = mmtrans.translate(source, Path(tmp) / "run.db", settings)
            wall = time.monotonic() - started
            cpu = time.process_time() - cpu
            achieved = server.achieved()
            late = sends.lateness(server.arrivals())
            lags = sorted(sends.lags)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    sent = achieved["answered"] + achieved["refused"]
    return {"semantics": semantics, "quantum": quantum, "rpm": rpm, "busy": busy,
            "front": front, "load": max(load, os.getloadavg()[0]), "records": records,
            "fraction": achieved["rpm"] / rpm,
            "settled": achieved["rpm_settled"] / rpm, "known": achieved["rpm_known"] / rpm,
            "refused": achieved["refused"],
            "refused_share": achieved["refused"] / sent if sent else 0.0,
            "failed": result["failed"], "accepted": result["accepted"], "wall": wall,
            "cpu": cpu / wall if wall else 0.0, "sent_per_second": sent / wall if wall else 0.0,
            "late_p50": percentile(late, 0.5), "late_p99": percentile(late, 0.99),
            "late_max": late[-1] if late else 0.0,
            "lag_p99": percentile(lags, 0.99), "lag_max": lags[-1] if lags else 0.0,
            "connections": achieved.get("connections", 0)}


def run_virtual(semantics: str, quantum: str | None, rpm: float, busy: bool,
                seconds: float) -> dict[str, object]:
    from mmtrans.limiters import simulate

    late = (0.01 if rpm < 1000 else 0.004) if busy else 0.001
    achieved = simulate(semantics, rpm, quantum=quantum or False, seconds=seconds,
                        arrival_jitter=0.001, late_wake=late)
    sent = achieved["answered"] + achieved["refused"]
    return {"semantics": semantics, "quantum": quantum, "rpm": rpm, "busy": busy,
            "front": "virtual", "load": os.getloadavg()[0], "records": achieved["answered"],
            "fraction": achieved["rpm"] / rpm, "settled": achieved["rpm_settled"] / rpm,
            "known": achieved["rpm_known"] / rpm,
            "refused": achieved["refused"], "refused_share": achieved["refused"] / sent,
            "failed": achieved["failed"], "accepted": achieved["answered"] - achieved["failed"],
            "wall": 0.0}


def quantum_name(quantum: str | None) -> str:
    return {None: "none", "sliding": "1/60, any 1 s",
            "fixed": "1/60, each clock second"}[quantum]


HEADER = ("| semantics | quantum | RPM | load | fraction of limit | from the first answer | "
          "from 5 s on | 429s | failed | records | wall s | client CPU | sent/s | "
          "send to arrival p50 / p99 / max ms | loop lag p99 / max ms | connections |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def table_row(row: dict[str, Any]) -> str:
    load = f"{'busy core' if row['busy'] else 'no spinner'}, {row['load']:.1f}"
    late = (f"{row['late_p50'] * 1000:.1f} / {row['late_p99'] * 1000:.1f} / "
            f"{row['late_max'] * 1000:.0f}" if "late_p50" in row else "")
    cpu = f"{row['cpu']:.0%}" if "cpu" in row else ""
    sent = f"{row['sent_per_second']:.1f}" if "sent_per_second" in row else ""
    lag = (f"{row['lag_p99'] * 1000:.1f} / {row['lag_max'] * 1000:.0f}"
           if "lag_p99" in row else "")
    return (f"| {row['semantics']} | {quantum_name(row['quantum'])} | {row['rpm']:,.0f} | "
            f"{load} | {row['fraction']:.3f} | {row['known']:.3f} | {row['settled']:.3f} | "
            f"{row['refused']} ({row['refused_share']:.2%}) | {row['failed']} | "
            f"{row['records']:,} | {row['wall']:.0f} | {cpu} | {sent} | {late} | {lag} | "
            f"{row.get('connections') or ''} |")


def summary(rows: list[dict[str, Any]], load: bool = True) -> str:
    worst = min(rows, key=lambda r: r["fraction"])
    steady = min(rows, key=lambda r: r["settled"])
    known = min(rows, key=lambda r: r["known"])
    most = max(rows, key=lambda r: r["refused_share"])
    return (f"lowest fraction {worst['fraction']:.3f} ({known['known']:.3f} from the first "
            f"answer, {steady['settled']:.3f} from 5 s on); most 429s "
            f"{most['refused_share']:.2%}; failed records {sum(r['failed'] for r in rows)}"
            + (f"; load at the end {os.getloadavg()[0]:.1f}" if load else ""))


def order(row: dict[str, Any]) -> tuple[Any, ...]:
    quanta = (None, *QUANTA)
    return (row["rpm"], SEMANTICS.index(row["semantics"]), quanta.index(row["quantum"]),
            row["busy"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--semantics", default=",".join(SEMANTICS),
                        help=f"comma-separated, of {', '.join(SEMANTICS)}")
    parser.add_argument("--quantum", default="no,sliding,fixed",
                        help="comma-separated, of no, sliding (any 1 s span; also: yes), fixed "
                             "(each second of the server's clock)")
    parser.add_argument("--rpm", default="600,10000", help="comma-separated limits")
    parser.add_argument("--load", default="idle,busy", help="idle, busy or idle,busy")
    parser.add_argument("--seconds", type=float, default=65.0,
                        help="length of each run at the limit (past 60 s, so a sliding minute "
                             "fills)")
    parser.add_argument("--concurrency", type=int, default=256,
                        help="mmtrans --concurrency: the cap; Little's law sets what is used")
    parser.add_argument("--front", choices=FRONTS, default="kernel",
                        help="the limiter server's HTTP front: kernel (counts a request at "
                             "the kernel's receive time) or threads (when a thread parsed it)")
    parser.add_argument("--json", type=Path,
                        help="also add the rows to this file (kept across runs: a table run "
                             "in parts)")
    parser.add_argument("--table", type=Path, nargs="+", metavar="JSON",
                        help="run nothing: print one table of the rows in these files")
    parser.add_argument("--virtual", action="store_true",
                        help="the real limiter against the same limiters in virtual time")
    args = parser.parse_args()
    if args.table:
        rows = sorted((row for path in args.table for row in json.loads(path.read_text())),
                      key=order)
        print(HEADER)
        for row in rows:
            print(table_row(row))
        print("\n" + summary(rows, load=False))  # (each row has its own load)
        return
    rows = []
    print(f"{os.cpu_count()} cores; {args.seconds:g} s per run at the limit; latency "
          "150-600 ms; limits learned from the headers"
          + ("; VIRTUAL TIME: arrivals 1 ms late on average, wake-ups 1 ms (busy core: "
             "10 ms at 600 RPM, 4 ms at 10,000)" if args.virtual else
             f"; server front: {args.front}"), flush=True)
    print(HEADER, flush=True)
    quanta = [None if q == "no" else "sliding" if q == "yes" else q
              for q in args.quantum.split(",")]
    for rpm in (float(x) for x in args.rpm.split(",")):
        for semantics in args.semantics.split(","):
            for quantum in quanta:
                for busy in (x == "busy" for x in args.load.split(",")):
                    row = run_virtual(semantics, quantum, rpm, busy, args.seconds) \
                        if args.virtual else run_one(semantics, quantum, rpm, busy,
                                                     args.seconds, args.concurrency,
                                                     args.front)
                    rows.append(row)
                    print(table_row(row), flush=True)
                    if args.json:  # row by row: a run stopped short keeps what it measured
                        kept = json.loads(args.json.read_text()) if args.json.exists() else []
                        args.json.write_text(json.dumps(kept + [row], indent=1))
    print("\n" + summary(rows))


if __name__ == "__main__":
    main()
