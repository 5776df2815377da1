"""The review page in a real browser: Debian's chromium driven by Playwright, keyboard only."""

from __future__ import annotations

import base64
import functools
import json
import os
import shutil

import pytest

import mmtrans
from mmtrans.store import Store
from mmtrans.testing import name_for

from .review_data import make_review_db

# A browser starts once a module (its first test pays for it) and a page can take seconds.
pytestmark = pytest.mark.timeout(300)
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM) and not os.environ.get("CI"):
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def served(tmp_path, stockmark_items, serve):
    """The review app over a fresh run with three flagged records: (db, start(**options))."""
    db = make_review_db(tmp_path, stockmark_items)
    return db, functools.partial(serve, db)


def open_page(browser, url, viewport=(1400, 900)):
    """The page, opened and showing its first record. The page asks in its own dialogs: a
    browser dialog (alert, prompt) fails the test when it closes."""
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    page.on("dialog", lambda d: (d.dismiss(), native_dialogs.append(d.message)))
    page.goto(url)
    page.wait_for_selector("#view:not([hidden])")
    return page


native_dialogs: list[str] = []


@pytest.fixture(autouse=True)
def no_native_dialogs():
    native_dialogs.clear()
    yield
    assert native_dialogs == [], "the page used a browser dialog instead of its own"


def give_reason(page, reason: str | None = "checked by hand") -> None:
    """Answer the page's own dialog asking why a record with problems is kept (None:
    cancel it)."""
    page.wait_for_selector("#ask:not([hidden])")
    assert page.get_attribute("#ask-form", "role") == "dialog"
    if reason is None:
        page.keyboard.press("Escape")
    else:
        page.fill("#ask-free", reason)
        page.keyboard.press("Enter")
    page.wait_for_selector("#ask", state="hidden")


def reviews(db):
    store = Store(db)
    try:
        return [(r["record_id"], r["annotator"], r["decision"]) for r in store._db["reviews"].rows]
    finally:
        store.close()


def test_three_records_reviewed_with_the_keyboard_only(browser, served, tmp_path):
    db, start = served
    page = open_page(browser, start(annotator="aiko"))
    assert page.locator("#queue-list li").count() == 3
    assert "松友美佐紀" in page.inner_text("#source-text")
    # 1: edit, fixing the person's name so that it occurs in the translation
    page.keyboard.press("e")
    page.wait_for_selector("#editor:not([hidden])")
    page.keyboard.press("Tab")  # the first mention's label
    page.keyboard.press("Tab")  # the first mention's string
    page.keyboard.press("Control+A")
    page.keyboard.type(name_for("松友美佐紀", "en"))
    page.wait_for_selector("#edit-check .ok")
    page.keyboard.press("Control+Enter")
    page.wait_for_function("document.querySelector('#source-text').innerText.startsWith('1964')")
    # 2: accept, with a reason (its kana stays); 3: reject
    page.keyboard.press("a")
    give_reason(page)
    page.wait_for_function("document.querySelector('#source-text').innerText.startsWith('安丹')")
    page.keyboard.press("x")
    page.wait_for_function("document.querySelector('#reviewed').innerText === '3'")

    assert reviews(db) == [("scnm.json:1", "aiko", "edit"),
                           ("scnm.json:3", "aiko", "accept"),
                           ("scnm.json:5", "aiko", "reject")]
    out = tmp_path / "final.json"
    assert mmtrans.export(db, out, fmt="mre").written == 4  # the one kept with its kana: not
    mmtrans.export(db, out, fmt="mre", include_overridden=True,
                   force=True)  # unless asked for
    exported = {item["input"]: item["output"] for item in json.loads(out.read_text())}
    fixed_name = name_for("松友美佐紀", "en")
    edited = next(o for i, o in exported.items() if fixed_name in i)
    assert f":Person;{fixed_name}:" in edited
    assert len(exported) == 5 and not any("安丹" in i for i in exported)


def test_undo_help_and_the_name_asked_once(browser, served):
    db, start = served
    page = open_page(browser, start())  # no --annotator: the page asks
    page.wait_for_selector("#name-dialog:not([hidden])")
    page.keyboard.type("ben")
    page.keyboard.press("Enter")
    page.wait_for_selector("#name-dialog", state="hidden")
    page.keyboard.press("ArrowRight")
    page.wait_for_function("document.querySelector('#source-text').innerText.startsWith('1964')")
    page.keyboard.press("a")
    give_reason(page)
    page.wait_for_function("document.querySelector('#reviewed').innerText === '1'")
    page.keyboard.press("u")
    page.wait_for_function("document.querySelector('#reviewed').innerText === '0'")
    assert [d for *_, d in reviews(db)] == ["accept", "undo"]
    page.keyboard.press("?")
    page.wait_for_selector("#help:not([hidden])")
    assert "undo your last decision" in page.inner_text("#help")
    page.keyboard.press("Escape")
    page.wait_for_selector("#help", state="hidden")


def test_screenshot_of_the_review_page_is_not_blank(browser, served, tmp_path):
    _, start = served
    page = open_page(browser, start(annotator="aiko"))
    shot = tmp_path / "review.png"
    page.screenshot(path=str(shot), full_page=True)
    data = base64.b64encode(shot.read_bytes()).decode()
    colours = page.evaluate("""async (data) => {
        const img = new Image();
        img.src = 'data:image/png;base64,' + data;
        await img.decode();
        const canvas = document.createElement('canvas');
        canvas.width = img.width; canvas.height = img.height;
        const ctx = canvas.getContext('2d');
        ctx.drawImage(img, 0, 0);
        const pixels = ctx.getImageData(0, 0, img.width, img.height).data;
        const seen = new Set();
        for (let i = 0; i < pixels.length; i += 4 * 7) {
            seen.add(pixels[i] << 16 | pixels[i + 1] << 8 | pixels[i + 2]);
        }
        return seen.size;
    }""", data)
    assert shot.stat().st_size > 20_000
    assert colours > 50  # text, highlights in several colours, borders: not a blank page
