"""Review throughput: a decision plus moving on, on a 10,000-record queue, in Debian's chromium.

10,000 flagged records (the stockmark sentences repeated with new ids, every answer left with
kana so each one is flagged) are translated against a scripted loopback server. The review
page is then opened over them, and an annotator's key `x` is pressed 100 times: each time
from the key press to the next record drawn. For comparison, the time of reading the whole
queue (what each decision cost before the page patched one entry instead) is measured too.

    python bench/review/run.py [--records 10000] [--decisions 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

import mmtrans
from mmtrans.review import make_app
from mmtrans.testing import FakeLLM, Reply, good_translation, serving

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from overhead.run import make_input  # noqa: E402 (the same 10,000-record input)

CHROMIUM = "/usr/bin/chromium"


def flagged(payload, request):
    answer = good_translation(payload)
    answer["text"] += " これは"  # residual kana: every record goes to review
    return Reply(json.dumps(answer, ensure_ascii=False))


def build(db: Path, records: int) -> None:
    source = db.parent / "scnm.json"
    make_input(source, records)
    with FakeLLM(flagged) as llm:
        mmtrans.translate(source, db, mmtrans.Settings(
            src="ja", tgt="en", labels=["scnm"], base_url=llm.base_url, repair=0,
            concurrency=64))


DECIDE = """async (n) => {
    const times = [];
    for (let i = 0; i < n; i++) {
        const before = state.view.id;
        const t0 = performance.now();
        document.body.dispatchEvent(new KeyboardEvent('keydown', {key: 'x', bubbles: true}));
        while (state.view.id === before ||
               !document.querySelector('#source-text').innerText.length) {
            if (performance.now() - t0 > 10000) throw new Error(`no next record after ${before}: ` +
                document.querySelector('#message').innerText);
            await new Promise((r) => setTimeout(r, 0));
        }
        await new Promise((r) => requestAnimationFrame(() => r()));  // drawn
        times.push(performance.now() - t0);
    }
    return times;
}"""


def measure(url: str, decisions: int) -> tuple[float, list[float], list[float], int]:
    """Page open time, the decision times, the whole-queue read times, and the queue's size."""
    whole = []
    for _ in range(5):
        t0 = time.perf_counter()
        size = len(httpx.get(f"{url}/api/queue", timeout=60).json()["entries"])
        whole.append((time.perf_counter() - t0) * 1000)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        t0 = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("#view:not([hidden])")
        opened = (time.perf_counter() - t0) * 1000
        times = page.evaluate(DECIDE, decisions)
        browser.close()
    return opened, sorted(times), whole, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--decisions", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "review.db"
        started = time.monotonic()
        build(db, args.records)
        print(f"built {args.records} flagged records in {time.monotonic() - started:.0f} s")
        with serving(make_app(db, annotator="bench")) as url:
            opened, times, whole, size = measure(url, args.decisions)
    median, p95 = statistics.median(times), times[int(len(times) * 0.95) - 1]
    print(f"queue: {size} records; page opened in {opened:.0f} ms")
    print(f"decision + next record drawn: median {median:.1f} ms, p95 {p95:.1f} ms, "
          f"max {times[-1]:.1f} ms over {len(times)} decisions (target < 100 ms)")
    print(f"reading the whole queue once (before: twice per decision): median "
          f"{statistics.median(whole):.0f} ms; ratio decision / whole queue "
          f"{median / statistics.median(whole):.2f}")


if __name__ == "__main__":
    main()
