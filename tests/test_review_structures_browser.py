"""Relations and events fixed by selection in a real browser (Debian's chromium): on a desktop
by keyboard and mouse, and on a phone by touch, whose selection is taken once it settles."""

from __future__ import annotations

import json

import pytest

import mmtrans
from mmtrans.store import Store

from .editor_data import EE_TEXT, RE_TEXT, WRONG_TAIL, make_structures_db
from .test_review_browser import browser, give_reason, no_native_dialogs  # noqa: F401

pytestmark = pytest.mark.timeout(300)
DESKTOP = {"viewport": {"width": 1366, "height": 800}}
PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True,
         "device_scale_factor": 3}


@pytest.fixture
def structures(tmp_path, serve):
    db = make_structures_db(tmp_path)
    return db, serve(db, annotator="aiko")


def open_record(browser, url, context, text):  # noqa: F811
    """A page showing the queue's record whose source starts with `text`."""
    page = browser.new_context(**context).new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("#view:not([hidden])")
    go_to(page, text)
    return page


def go_to(page, text: str) -> None:
    """The queue's record whose source starts with `text` (the runs' order is their ids')."""
    starts = f"document.querySelector('#source-text').innerText.startsWith({json.dumps(text)})"
    page.wait_for_selector("#editor", state="hidden")
    for i in range(page.locator("#queue-list li").count()):
        page.locator("#queue-list li").nth(i).click()
        page.wait_for_function(f"state.index === {i} && state.view && "
                               f"state.view.id === state.entries[{i}].id && "
                               f"state.view.run_id === state.entries[{i}].run_id")
        if page.evaluate(starts):
            return
    raise AssertionError(f"no record starting with {text!r}")


errors: list[str] = []


@pytest.fixture(autouse=True)
def no_page_errors():
    errors.clear()
    yield
    assert errors == []


def select_by_keyboard(page, text: str) -> None:
    """The caret before `text` in the editor's text, then Shift+Right over it, as a person
    selects with the keys."""
    page.evaluate(f"""() => {{ const a = document.querySelector('#edit-text');
        const i = a.value.indexOf({json.dumps(text)}); a.focus(); a.setSelectionRange(i, i); }}""")
    page.keyboard.down("Shift")
    for _ in text:
        page.keyboard.press("ArrowRight")
    page.keyboard.up("Shift")


def touch_select(page, words: list[str], settle_ms: int = 900) -> None:
    """A long press on the text that selects the first word (the finger lifts: touchend),
    then the selection handle dragged over the next words, one step each; then a wait."""
    box = page.locator("#edit-text").bounding_box()
    cdp = page.context.new_cdp_session(page)
    point = [{"x": box["x"] + 20, "y": box["y"] + 15}]
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": point})
    text = page.input_value("#edit-text")
    start = text.index(" ".join(words))
    page.evaluate(f"() => {{ const a = document.querySelector('#edit-text'); a.focus(); "
                  f"a.setSelectionRange({start}, {start + len(words[0])}); }}")
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    for k in range(2, len(words) + 1):
        page.wait_for_timeout(150)  # the handle moves: only selectionchange says so
        end = start + len(" ".join(words[:k]))
        page.evaluate(f"document.querySelector('#edit-text').setSelectionRange({start}, {end})")
    page.wait_for_timeout(settle_ms)


def exported(db, tmp_path, task: str):
    with Store(db) as store:
        run_id = next(r["id"] for r in store.run_rows(None) if f"/{task}/" in r["input_path"])
    out = tmp_path / f"{task}.json"
    mmtrans.export(db, out, run_id=run_id, fmt="iepile", force=True)
    return json.loads(out.read_text(encoding="utf-8"))


def test_a_relation_tail_and_an_event_argument_fixed_by_keyboard_and_mouse(
        browser, structures, tmp_path):  # noqa: F811
    db, url = structures
    page = open_record(browser, url, DESKTOP, "如何演好")
    # The relation is shown: head, relation and tail, paired with the model's, its problem
    # on its row, and highlighted in both texts in its row's colour.
    row = page.locator("#relations tbody tr")
    assert row.count() == 1
    assert "主演 → starring" in row.inner_text() and "周星驰 → " + WRONG_TAIL in row.inner_text()
    assert "does not occur" in row.locator("td").nth(4).inner_text()
    colour = row.locator(".swatch").get_attribute("style")
    assert page.locator("#source-text mark", has_text="周星驰").get_attribute("style") == colour
    assert page.locator("#target-text mark", has_text="The King of Comedy") \
        .get_attribute("style") == colour
    # "1" opens the editor on row 1, its broken tail armed; the keys select the right name.
    page.keyboard.press("1")
    page.wait_for_selector("#editor:not([hidden]) .slot.armed input[aria-label^='tail']")
    assert page.is_hidden("#edit-add")  # a relation record adds relations, not mentions
    select_by_keyboard(page, "Stephen Chow")
    assert page.input_value("input[aria-label='tail of relation 1']") == "Stephen Chow"
    page.wait_for_selector("#edit-check .ok")
    page.keyboard.press("Control+Enter")
    # The event record: the mistyped time argument, picked with the mouse and set by keys.
    go_to(page, "消失")
    assert page.locator("#events tbody tr").count() == 3  # the event and its two arguments
    page.click("#btn-edit")
    # The broken argument is armed first; the mouse arms another row, then this one again.
    page.wait_for_selector(".arg-edit[data-arg='1'] .slot.armed")
    page.click("button.arm[data-kind='arg'][data-j='0']")
    page.wait_for_selector(".arg-edit[data-arg='0'] .slot.armed")
    page.click("button.arm[data-kind='arg'][data-j='1']")
    select_by_keyboard(page, "in May")
    assert page.input_value("input[aria-label='argument 2 of event 1']") == "in May"
    page.wait_for_selector("#edit-check .ok")
    page.click("#edit-save")
    page.wait_for_function("document.querySelector('#reviewed').innerText === '2'")

    relation = exported(db, tmp_path, "RE")[0]
    assert relation["text"] == RE_TEXT
    assert relation["relation"] == [{"head": "The King of Comedy", "relation": "starring",
                                     "tail": "Stephen Chow"}]
    event = exported(db, tmp_path, "EE")[0]
    assert event["text"] == EE_TEXT
    assert [a["argument"] for a in event["event"][0]["arguments"]] == ["over 900 people",
                                                                       "in May"]


def test_a_two_word_argument_and_tail_fixed_by_touch_on_a_phone(
        browser, structures, tmp_path):  # noqa: F811
    db, url = structures
    page = open_record(browser, url, PHONE, "如何演好")
    page.tap("#btn-edit")
    page.wait_for_selector("#editor:not([hidden]) .slot.armed input[aria-label^='tail']")
    # The editor's label lists (the tables' longest label) never widen the page.
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    touch_select(page, ["Stephen", "Chow"])
    assert page.input_value("input[aria-label='tail of relation 1']") == "Stephen Chow"
    page.wait_for_selector("#edit-check .ok")
    page.tap("#edit-save")
    go_to(page, "消失")
    page.tap("#btn-edit")
    page.wait_for_selector(".arg-edit[data-arg='1'] .slot.armed")
    touch_select(page, ["in", "May"])
    assert page.input_value("input[aria-label='argument 2 of event 1']") == "in May"
    page.wait_for_selector("#edit-check .ok")
    page.tap("#edit-save")
    page.wait_for_function("document.querySelector('#reviewed').innerText === '2'")
    assert exported(db, tmp_path, "RE")[0]["relation"][0]["tail"] == "Stephen Chow"
    assert exported(db, tmp_path, "EE")[0]["event"][0]["arguments"][1]["argument"] == "in May"


def test_a_relation_removed_and_added_again_by_selection(
        browser, structures, tmp_path):  # noqa: F811
    db, url = structures
    page = open_record(browser, url, DESKTOP, "如何演好")
    page.keyboard.press("e")
    page.wait_for_selector("#editor:not([hidden]) .rel-edit")
    page.click(".rel-delete")
    page.wait_for_function(
        "document.querySelector('#edit-check').innerText.includes('count_mismatch')")
    select_by_keyboard(page, "The King of Comedy")
    page.click("#edit-add-relation")
    # The new relation has no relation name until one of the tables' is chosen; its tail is next.
    assert page.input_value(".rel-edit .rel-label") == ""
    page.select_option(".rel-edit .rel-label", "starring")
    page.wait_for_selector(".slot.armed input[aria-label='tail of relation 1']")
    select_by_keyboard(page, "Stephen Chow")
    page.wait_for_selector("#edit-check .ok")
    page.click("#edit-save")
    page.wait_for_selector("#editor", state="hidden")
    assert exported(db, tmp_path, "RE")[0]["relation"] == [
        {"head": "The King of Comedy", "relation": "starring", "tail": "Stephen Chow"}]
