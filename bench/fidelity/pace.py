"""Does the fidelity check hold a run below the endpoint's pace? The same translate run
(ja→en, stockmark records, repair off) against a paced loopback server, fidelity on (the
in-process model) and off: records/s of each and their ratio (target about 1.0).

    python bench/fidelity/pace.py [--rpm 1200] [--records 300]

Run it under the shared lock; the load is printed beside every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import mmtrans  # noqa: E402
from mmtrans.limiters import LimitedServer  # noqa: E402

STOCKMARK = ROOT / "tests" / "data" / "stockmark-ner-wikipedia" / "ner.json"


def one_run(rpm: float, records: int, fidelity: bool) -> tuple[float, dict, float]:
    items = json.loads(STOCKMARK.read_text(encoding="utf-8"))[:records]
    with tempfile.TemporaryDirectory() as tmp, LimitedServer("window10", rpm) as server:
        source = Path(tmp) / "ner.json"
        source.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
        settings = mmtrans.Settings(src="ja", tgt="en", labels=["scnm"], model="gpt-4o-mini",
                                    base_url=server.base_url, repair=0, rpm=rpm,
                                    fidelity=fidelity)
        started = time.monotonic()
        result = mmtrans.translate(source, Path(tmp) / "run.db", settings)
        wall = time.monotonic() - started
    return len(items) / wall, result, os.getloadavg()[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rpm", type=float, default=1200)
    ap.add_argument("--records", type=int, default=300)
    a = ap.parse_args()
    os.environ.pop("MMTRANS_FIDELITY", None)
    from mmtrans.embeddings import InProcessEmbedder

    print(f"in-process model: {InProcessEmbedder().name}; endpoint paced at {a.rpm:.0f} RPM "
          f"= {a.rpm / 60:.1f} records/s")
    rates = {}
    for fidelity in (False, True):
        rate, result, load = one_run(a.rpm, a.records, fidelity)
        rates[fidelity] = rate
        print(f"fidelity {'on ' if fidelity else 'off'}: {rate:.2f} records/s over "
              f"{a.records} records (accepted {result['accepted']}, flagged "
              f"{result.get('flagged', '?')}, failed {result['failed']}); load {load:.2f}")
    print(f"ratio on/off: {rates[True] / rates[False]:.3f}")


if __name__ == "__main__":
    main()
