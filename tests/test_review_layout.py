"""The review page's layout in a real browser, on a desktop (1366x800) and a phone (390x844):
a header on one line that never scrolls away, each new record opened at its top with its
actions in view, dialogs that dim the page, a dark theme that follows the system, and no
command-line flag names anywhere an annotator reads."""

from __future__ import annotations

import re

import pytest

from mmtrans.resources import resource_dir

from .test_review_browser import browser, give_reason, open_page, served  # noqa: F401

DESKTOP, PHONE = (1366, 800), (390, 844)

GEOMETRY = """() => {
  const box = (sel) => document.querySelector(sel).getBoundingClientRect();
  const [h1, help, header, actions] = ['h1', '#help-button', 'header', '#actions'].map(box);
  return { h1Middle: (h1.top + h1.bottom) / 2, helpMiddle: (help.top + help.bottom) / 2,
           headerTop: header.top, headerBottom: header.bottom, headerHeight: header.height,
           actionsTop: actions.top, actionsBottom: actions.bottom, scrollY: window.scrollY,
           viewport: window.innerHeight };
}"""


def decide_next(page) -> None:
    before = page.evaluate("state.view.id")
    page.keyboard.press("x")
    page.wait_for_function(f"state.view && state.view.id !== {before!r}")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_header_stays_on_one_line_and_in_view_after_decisions_and_a_reload(
        browser, served, viewport):  # noqa: F811
    _, start = served
    page = open_page(browser, start(annotator="a-rather-long-annotator-name"), viewport)
    first = page.evaluate(GEOMETRY)
    decide_next(page)
    decide_next(page)
    page.wait_for_function("document.querySelector('#reviewed').innerText === '2'")
    page.reload()
    page.wait_for_selector("#view:not([hidden])")
    page.wait_for_timeout(300)  # what a late layout would move
    for shape in (first, page.evaluate(GEOMETRY)):
        assert abs(shape["helpMiddle"] - shape["h1Middle"]) < 4, shape  # "?" on the title's line
        assert shape["headerTop"] == 0 and shape["scrollY"] == 0, shape
        assert shape["headerHeight"] == first["headerHeight"], shape


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_each_new_record_opens_at_its_top_with_its_actions_in_view(browser, served, viewport):  # noqa: F811
    _, start = served
    page = open_page(browser, start(annotator="ann"), viewport)
    for _ in range(2):
        # Reading down the record (and the queue under it on a phone) before deciding.
        page.evaluate("""() => { for (const el of [document.querySelector('main'),
            document.querySelector('#record'), document.scrollingElement])
            el.scrollTop = 10000; }""")
        read_down = page.evaluate(GEOMETRY)
        assert read_down["headerTop"] == 0, read_down  # the header never scrolls away
        decide_next(page)
        shape = page.evaluate(GEOMETRY)
        assert shape["actionsTop"] >= shape["headerBottom"], shape
        assert shape["actionsBottom"] <= shape["viewport"], shape
        assert shape["scrollY"] == 0, shape
        # The queue shows its current item by scrolling itself, not the record away.
        page.evaluate("markCurrent()")
        assert page.evaluate(GEOMETRY)["actionsTop"] == shape["actionsTop"]


def test_dialogs_dim_the_page_behind_them(browser, served):  # noqa: F811
    _, start = served
    page = open_page(browser, start(annotator="ann"), DESKTOP)
    corner = """() => { const el = document.elementFromPoint(3, window.innerHeight - 3);
        const dim = getComputedStyle(el).backgroundColor;
        return { id: el.id || el.className, alpha: Number((dim.match(/[\\d.]+(?=\\))/) || [1])[0]),
                 dim }; }"""
    page.keyboard.press("?")
    page.wait_for_selector("#help:not([hidden])")
    help_dim = page.evaluate(corner)
    assert help_dim["id"] == "help" and help_dim["alpha"] >= 0.3, help_dim
    page.keyboard.press("Escape")
    page.evaluate("document.getElementById('conflict').hidden = false")
    conflict_dim = page.evaluate(corner)
    assert conflict_dim["id"] == "conflict" and conflict_dim["alpha"] >= 0.3, conflict_dim


def luminance(css: str) -> float:
    r, g, b = (int(x) / 255 for x in re.findall(r"\d+", css)[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_page_follows_the_system_colour_scheme(browser, served, scheme):  # noqa: F811
    _, start = served
    page = browser.new_page(viewport={"width": 1366, "height": 800}, color_scheme=scheme)
    page.goto(start(annotator="ann"))
    page.wait_for_selector("#view:not([hidden])")
    colours = page.evaluate("""() => Object.fromEntries(['body', 'header', 'article',
        '#source-text', '#queue li.current'].map((s) => { const c = getComputedStyle(
        document.querySelector(s)); return [s, [c.backgroundColor, c.color]]; }))""")
    root = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    dark = scheme == "dark"
    assert (luminance(root) < 0.2) if dark else (luminance(root) > 0.8), root
    for where, (_, text) in colours.items():
        assert (luminance(text) > 0.6) if dark else (luminance(text) < 0.4), (where, text)
    panel = colours["article"][0]
    assert (luminance(panel) < 0.25) if dark else (luminance(panel) > 0.9), panel


FLAG = re.compile(r"(?<![\w-])--[a-z]{2,}(?:-[a-z]+)*")


def test_no_command_line_flag_is_named_on_the_page(browser, served):  # noqa: F811
    _, start = served
    page = open_page(browser, start(annotator="ann"), DESKTOP)
    page.keyboard.press("ArrowRight")  # the record with kana: accepting it asks why
    page.wait_for_function("document.querySelector('#source-text').innerText.startsWith('1964')")
    page.keyboard.press("a")
    page.wait_for_selector("#ask:not([hidden])")
    asked = page.inner_text("#ask")
    give_reason(page)
    page.keyboard.press("g")
    page.wait_for_selector("#guidelines:not([hidden])")
    shown = asked + page.inner_text("#guidelines") + page.inner_text("body")
    assert not FLAG.findall(shown), FLAG.findall(shown)
    # Nor in any text the page could show later.
    for name in ("app.js", "index.html"):
        text = (resource_dir("review_ui") / name).read_text(encoding="utf-8")
        assert not FLAG.findall(text), (name, FLAG.findall(text))
