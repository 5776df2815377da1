"""Review at scale: two annotators on one store of 1,000,000 flagged records, each in their own
chromium on their own `mmtrans review` server, deciding at the same time.

The store is made by `make_store.py` (or given with --db). Two review servers are started as
real processes over it (`mmtrans review --annotator ann` and `... ben`), and a headless
chromium page opened on each. Measured:

- page open: from navigation to the first record drawn, for each annotator;
- filter: from typing a search into the page's search box to the first matching record drawn;
- decision to next record: key `x` pressed on both pages at once, `--decisions` times each,
  each time from the key press to the next record drawn (ann works from the top of the queue,
  ben through the records a search keeps, so they never decide the same record);
- the API alone: a page of the queue, unfiltered and filtered (what each page load costs).

    python bench/review/run.py [--records 1000000] [--db STORE] [--decisions 100]

Figures on a shared machine are noisy: the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from playwright.async_api import Page, async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_store import make_store  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
#: ben's search: words of one seed record (every 200th record holds them), none of which
#: ann reaches from the top of the queue in the decisions of one run.
BEN_SEARCH = "吹奏楽クラブ"

DECIDE = """async (n) => {
    const times = [];
    for (let i = 0; i < n; i++) {
        const before = state.view;
        const t0 = performance.now();
        document.body.dispatchEvent(new KeyboardEvent('keydown', {key: 'x', bubbles: true}));
        while (state.view.id === before.id ||
               !document.querySelector('#source-text').innerText.length) {
            if (performance.now() - t0 > 20000) throw new Error(`no next record after ` +
                `${before.id}: ` + document.querySelector('#message').innerText);
            await new Promise((r) => setTimeout(r, 0));
        }
        await new Promise((r) => requestAnimationFrame(() => r()));  // drawn
        times.push(performance.now() - t0);
    }
    return times;
}"""

FILTER = """async (text) => {
    const before = state.view.id;
    const t0 = performance.now();
    const box = document.getElementById('filter-q');
    box.value = text;
    box.dispatchEvent(new Event('change', {bubbles: true}));
    // Done when the first record the search keeps is drawn.
    const first = () => state.entries.length && state.view &&
        state.entries[0].id === state.view.id && state.view.id !== before;
    while (state.applied.q !== text || !first()) {
        if (performance.now() - t0 > 60000) throw new Error('the filter did not answer');
        await new Promise((r) => setTimeout(r, 0));
    }
    await new Promise((r) => requestAnimationFrame(() => r()));
    return [performance.now() - t0, state.total, state.entries.length];
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def review_server(db: Path, annotator: str) -> Iterator[str]:
    """`mmtrans review` over `db` in a process of its own; yields its URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mmtrans", "review", "--db", str(db), "--port", str(port),
         "--annotator", annotator], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/api/config", timeout=5)
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the review server did not start: "
                                       f"{process.stderr.read().decode()[-2000:]}") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(10)


async def open_page(browser, url: str) -> tuple[Page, float]:
    page = await browser.new_page(viewport={"width": 1366, "height": 800})
    t0 = time.perf_counter()
    await page.goto(url)
    await page.wait_for_selector("#view:not([hidden])", timeout=120_000)
    return page, (time.perf_counter() - t0) * 1000


def quantiles(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return (f"median {statistics.median(ordered):.1f} ms, p95 {p95:.1f} ms, "
            f"max {ordered[-1]:.1f} ms over {len(ordered)}")


def api_reads(url: str) -> str:
    out = []
    with httpx.Client(base_url=url, timeout=120) as client:
        for label, params in (("page", {}), ("search", {"q": BEN_SEARCH}),
                              ("problem code", {"code": "residual_source"}),
                              ("to review", {"status": "to review"})):
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                answer = client.get("/api/queue", params=params)
                times.append((time.perf_counter() - t0) * 1000)
            out.append(f"{label} {statistics.median(times):.0f} ms "
                       f"({len(answer.content) / 1000:.0f} KB)")
    return "; ".join(out)


async def measure(ann_url: str, ben_url: str, decisions: int) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                          args=["--no-sandbox", "--disable-gpu"])
        ann, ann_open = await open_page(browser, ann_url)
        ben, ben_open = await open_page(browser, ben_url)
        print(f"page open (to the first record drawn): ann {ann_open:.0f} ms, ben "
              f"{ben_open:.0f} ms (target < 2000 ms); load {os.getloadavg()}")
        filtered, total, held = await ben.evaluate(FILTER, BEN_SEARCH)
        print(f"search {BEN_SEARCH!r}: {total} records match, first drawn in "
              f"{filtered:.0f} ms (target < 1000 ms); the page holds {held}; "
              f"load {os.getloadavg()}")
        ann_times, ben_times = await asyncio.gather(ann.evaluate(DECIDE, decisions),
                                                    ben.evaluate(DECIDE, decisions))
        load = os.getloadavg()
        print(f"decision to next record, both deciding at once: ann {quantiles(ann_times)}; "
              f"ben {quantiles(ben_times)}")
        print(f"  both: {quantiles(ann_times + ben_times)} (target median < 50 ms, "
              f"p95 < 100 ms); load {load}")
        held = await ann.evaluate("state.entries.length")
        print(f"ann's page holds {held} queue entries of "
              f"{await ann.evaluate('state.progress.in_queue')}")
        await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, help="a store made by make_store.py")
    parser.add_argument("--decisions", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db
        if db is None:
            db = Path(tmp) / "review.db"
            started = time.monotonic()
            make_store(db, args.records)
            print(f"built {args.records} flagged records in "
                  f"{time.monotonic() - started:.0f} s")
        with review_server(db, "ann") as ann_url, review_server(db, "ben") as ben_url:
            print(f"API alone: {api_reads(ann_url)}; load {os.getloadavg()}")
            asyncio.run(measure(ann_url, ben_url, args.decisions))


if __name__ == "__main__":
    main()
