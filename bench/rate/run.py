"""Rate benchmark: how close mmtrans keeps to an endpoint's rate limit, and at what cost in
429 answers and failed records.

A loopback server enforces the limits the way OpenAI does (sliding 60 s windows and the same
limits pro rata over every second, `x-ratelimit-*` headers on every answer, 429 with
`Retry-After`, latency uniform 150-600 ms) and answers good translations of stockmark records,
so prompts and answers have their real sizes. The limits are not given to mmtrans: it has to
learn them from the answers. Achieved pace is measured by the server, from the first request
it admitted to the last.

    python bench/rate/run.py                              # 600 requests/min, 1,200 records
    python bench/rate/run.py --tpm 60000 --records 300    # tokens per minute bind first
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import mmtrans
from mmtrans.testing import ServerProcess

STOCKMARK = Path(__file__).resolve().parents[2] / "tests/data/stockmark-ner-wikipedia/ner.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1200)
    parser.add_argument("--rpm", type=float, default=600.0, help="server's request limit")
    parser.add_argument("--tpm", type=float, default=None, help="server's token limit")
    parser.add_argument("--concurrency", type=int, default=32,
                        help="mmtrans --concurrency (today's fixed pool; a cap once adaptive)")
    args = parser.parse_args()
    rpm = args.rpm or 600.0
    items = json.loads(STOCKMARK.read_text(encoding="utf-8"))[: args.records]
    with tempfile.TemporaryDirectory() as tmp, \
            ServerProcess(rpm=rpm, tpm=args.tpm, latency=(0.15, 0.6)) as server:
        source = Path(tmp) / "ner.json"
        source.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
        settings = mmtrans.Settings(src="ja", tgt="en", labels=["scnm"], model="gpt-4o-mini",
                                    base_url=server.base_url, repair=0,
                                    concurrency=args.concurrency)
        started = time.monotonic()
        result = mmtrans.translate(source, Path(tmp) / "run.db", settings)
        seconds = time.monotonic() - started
        achieved = server.achieved()
    load = os.getloadavg()[0]
    limit = f"{rpm:.0f} requests/min" if rpm else ""
    if args.tpm:
        limit = (limit + ", " if limit else "") + f"{args.tpm:.0f} tokens/min"
    print(f"limit: {limit}; {len(items)} records; concurrency {args.concurrency}; "
          f"load {load:.2f}")
    rows = [("achieved requests/min (server)", f"{achieved['rpm']:.1f}")]
    if rpm:
        rows.append(("  as a fraction of the request limit", f"{achieved['rpm'] / rpm:.3f}"))
    rows.append(("achieved tokens/min (server)", f"{achieved['tpm']:.0f}"))
    if args.tpm:
        rows.append(("  as a fraction of the token limit", f"{achieved['tpm'] / args.tpm:.3f}"))
    rows += [("429 answers", str(achieved["refused"])),
             ("records accepted", str(result["accepted"])),
             ("records failed", str(result["failed"])),
             ("wall seconds", f"{seconds:.1f}"),
             ("records/min end to end", f"{len(items) / seconds * 60:.1f}")]
    print("| figure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
