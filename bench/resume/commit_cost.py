"""What durability costs per answer: the store's work for one answer on a real file.

Each answer is claimed before it is sent (one BEGIN IMMEDIATE transaction) and committed
with its claim released as it arrives (a second one), in WAL with synchronous=NORMAL: no
fsync per commit. Printed: microseconds of store work per answer that way, against the
same rows written in groups of 200 (as answers were before they were made durable), and
the CPU seconds both take, beside the machine's load.

    python bench/resume/commit_cost.py [--answers 5000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from mmtrans.store import Store, content_key

SYSTEM = [{"role": "system", "content": "Translate the record. " * 40},
          {"role": "user", "content": "example " * 60},
          {"role": "assistant", "content": "example answer " * 40}]


def answer(i: int) -> tuple[str, dict[str, object]]:
    messages = [*SYSTEM, {"role": "user", "content": f"record {i} " + "テキスト" * 40}]
    return content_key(i), {"model": "bench", "base_url": "http://127.0.0.1/v1",
                            "messages": messages, "params": {"temperature": 0},
                            "response": '{"text": "' + "answer " * 60 + '"}',
                            "tokens_in": 300, "tokens_out": 80, "latency": 1.0,
                            "attempts": 1, "error": None}


def durable(path: Path, n: int) -> float:
    with Store(path) as store, store.grouped():
        started = time.perf_counter()
        for i in range(n):
            key, row = answer(i)
            assert store.claim(key, 60)
            store.save_request(key, **row)
        return time.perf_counter() - started


def grouped(path: Path, n: int) -> float:
    with Store(path) as store, store.grouped():
        started = time.perf_counter()
        for i in range(n):
            key, row = answer(i)
            store._insert("requests", {"key": key, **row, "messages": "[]", "params": "{}"},
                          "insert or replace")
        store._flush()
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=5000)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        cpu = time.process_time()
        at_once = durable(Path(tmp) / "durable.db", args.answers)
        cpu_at_once = time.process_time() - cpu
        cpu = time.process_time()
        in_groups = grouped(Path(tmp) / "grouped.db", args.answers)
        cpu_in_groups = time.process_time() - cpu
    n = args.answers
    print(f"{n} answers, load {load:.2f}")
    print(f"claimed and committed one by one: {at_once / n * 1e6:.0f} µs per answer "
          f"({cpu_at_once:.2f} s CPU)")
    print(f"written in groups of 200: {in_groups / n * 1e6:.0f} µs per answer "
          f"({cpu_in_groups:.2f} s CPU)")


if __name__ == "__main__":
    main()
