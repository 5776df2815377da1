"""Selection and rows in a real browser (issue 18): a digit jumps to a row, a piece of a word
is taken as the word, labels come from the run's tables (a new mention asks for one, the
text-level label is a list), a label list shows its whole label, and a two-word span is
fixed by touch on a phone."""

from __future__ import annotations

import json

import pytest

import mmtrans
from mmtrans.testing import FakeLLM, Reply, good_translation, name_for

from .test_review_browser import browser, no_native_dialogs  # noqa: F401
from .test_review_structures_browser import (  # noqa: F401
    DESKTOP,
    PHONE,
    errors,
    no_page_errors,
    select_by_keyboard,
    touch_select,
)

pytestmark = pytest.mark.timeout(300)
#: stockmark item 212: nine mentions; the model misspells the eighth.
ITEM = 212
WRONG = "Wrong Shrine"


def script(payload, request):
    answer = good_translation(payload)
    if payload["text"].startswith("一つは「日本鉄道神社」"):
        answer["entities"][7]["text"] = WRONG
    return Reply(json.dumps(answer, ensure_ascii=False))


@pytest.fixture
def url(tmp_path, stockmark_items, serve):
    source = tmp_path / "scnm.json"
    source.write_text(json.dumps([stockmark_items[ITEM]], ensure_ascii=False), encoding="utf-8")
    db = tmp_path / "review.db"
    with FakeLLM(script) as llm:
        mmtrans.translate(source, db, mmtrans.Settings(
            src="ja", tgt="en", labels=["scnm"], base_url=llm.base_url, repair=0))
    return serve(db, annotator="aiko")


def opened(browser, url, context):  # noqa: F811
    page = browser.new_context(**context).new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("#view:not([hidden])")
    return page


def eighth(stockmark_items) -> str:
    return name_for(stockmark_items[ITEM]["entities"][7]["name"], "en")


def test_a_digit_jumps_to_the_eighth_mention_and_a_piece_of_a_word_is_the_word(
        browser, url, stockmark_items):  # noqa: F811
    page = opened(browser, url, DESKTOP)
    # The eighth mention's problem is on its row.
    assert "anchored" in page.locator("#mentions tbody tr").nth(7).inner_text()
    assert "anchored" not in page.locator("#mentions tbody tr").nth(6).inner_text()
    page.keyboard.press("8")
    page.wait_for_selector("#editor:not([hidden]) .mention-edit[data-row='7'].armed")
    text = page.input_value("#edit-text")
    year = next(w for w in ("1927,", "1927)") if w in text)
    select_by_keyboard(page, year[1:])  # "927," inside "1927,"
    assert page.input_value(".mention-edit[data-row='7'] .edit-mention-text") == "1927"
    assert "part of the word" in page.inner_text("#message")
    page.keyboard.press("Alt+8")  # the same row again, from inside the text
    page.wait_for_selector(".mention-edit[data-row='7'].armed")
    select_by_keyboard(page, eighth(stockmark_items))
    assert page.input_value(".mention-edit[data-row='7'] .edit-mention-text") == \
        eighth(stockmark_items)
    page.wait_for_selector("#edit-check .ok")


def test_labels_come_from_the_tables_and_a_label_list_shows_its_whole_label(
        browser, url, stockmark_items):  # noqa: F811
    page = opened(browser, url, DESKTOP)
    page.keyboard.press("e")
    page.wait_for_selector("#editor:not([hidden])")
    # The text-level label: a list of the tables' labels (none for this record), no free text.
    assert page.evaluate("document.querySelector('#edit-label').tagName") == "SELECT"
    assert page.evaluate("[...document.querySelector('#edit-label').options].map(o => o.value)") \
        == [""]
    # A mention added from a selection asks for its label: none is chosen for it.
    select_by_keyboard(page, eighth(stockmark_items))
    page.click("#edit-add")
    new = page.locator(".mention-edit").last.locator(".edit-mention-label")
    assert new.input_value() == ""
    assert page.evaluate("document.activeElement.classList.contains('edit-mention-label')")
    check_says = "document.querySelector('#edit-check').innerText.includes({!r})"
    page.wait_for_function(check_says.format("empty label"))
    new.select_option("Other Organization Name")
    page.wait_for_function(check_says.format("count_mismatch"))
    # Every label list is as wide as the label it shows.
    cut = page.evaluate("""() => [...document.querySelectorAll('.edit-mention-label')]
      .filter((s) => {
        const probe = document.createElement('span');
        probe.style.font = getComputedStyle(s).font; probe.style.whiteSpace = 'pre';
        probe.style.position = 'absolute';  // its own width, not a flex item's of the body
        probe.textContent = s.options[s.selectedIndex].text; document.body.append(probe);
        const wide = probe.offsetWidth; probe.remove();
        return wide + 16 > s.clientWidth; }).map((s) => s.value)""")
    assert cut == []


def test_a_two_word_mention_fixed_by_touch_on_a_phone(browser, url, stockmark_items):  # noqa: F811
    page = opened(browser, url, PHONE)
    page.tap("#btn-edit")
    page.wait_for_selector("#editor:not([hidden]) .mention-edit[data-row='7'].armed")
    words = eighth(stockmark_items).split()
    assert len(words) == 2
    touch_select(page, words)
    assert page.input_value(".mention-edit[data-row='7'] .edit-mention-text") == \
        eighth(stockmark_items)
    page.wait_for_selector("#edit-check .ok")
