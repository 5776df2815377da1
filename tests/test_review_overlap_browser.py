"""Blind double annotation on the page, in Debian's chromium: two annotators on two servers over
one store, in two browser contexts, decide the same 20 records by keyboard without seeing each
other's work and without a conflict question; the lead settles the disputes on a third."""

from __future__ import annotations

import pytest

import mmtrans
from mmtrans.review import Team

from .test_review_browser import browser, native_dialogs, no_native_dialogs  # noqa: F401
from .test_review_overlap import FLAGGED, LEFTOVER, team_db  # noqa: F401 (fixture)

pytestmark = pytest.mark.timeout(300)


def open_as(browser, url: str):  # noqa: F811
    context = browser.new_context(viewport={"width": 1366, "height": 800})
    page = context.new_page()
    page.on("dialog", lambda d: (d.dismiss(), native_dialogs.append(d.message)))
    page.goto(url + "?poll=300")
    page.wait_for_selector("#view:not([hidden])")
    return context, page


def next_record(page, before: str) -> None:
    page.wait_for_function(f"state.view && state.view.id !== {before!r}")


def edit_to(page, text: str) -> None:
    """Edit the shown record's text (its strings stay) and save it once every check passes."""
    page.keyboard.press("e")
    page.wait_for_selector("#editor:not([hidden])")
    page.fill("#edit-text", text)
    page.wait_for_selector("#edit-check .ok")
    page.keyboard.press("Control+Enter")


def decide_all(page, plan: dict[int, str | None]) -> None:
    """Decide the records of the page's queue in order: None rejects, a suffix edits (the
    model's leftover kana taken out, the suffix added)."""
    for i in range(FLAGGED):
        view = page.evaluate("state.view")
        assert page.evaluate("state.index") == i
        # Blind: the model's translation, never the other annotator's version.
        assert view["version"] == "translation" and view["target"]["text"].endswith(LEFTOVER)
        assert "edited by" not in page.inner_text("#tgt-lang")
        assert page.inner_text("#decisions") == ""
        suffix = plan.get(i)
        if suffix is None:
            page.keyboard.press("x")
        else:
            edit_to(page, view["target"]["text"].removesuffix(LEFTOVER) + suffix)
        if i < FLAGGED - 1:
            next_record(page, view["id"])
        else:
            page.wait_for_function(f"document.querySelector('#message').innerText"
                                   f".includes('saved for {view['id']}')")
        assert page.is_hidden("#conflict")  # never asked about the other annotator


def test_two_annotators_decide_the_same_20_records_blind_and_the_lead_settles_them(
        browser, team_db, serve, tmp_path):  # noqa: F811
    aiko_url = serve(team_db, annotator="aiko", team=Team(overlap=2))
    ben_url = serve(team_db, annotator="ben")
    aiko_context, aiko = open_as(browser, aiko_url)
    ben_context, ben = open_as(browser, ben_url)
    for page in (aiko, ben):
        assert page.is_checked("#filter-mine")  # blind work starts on one's own queue
        assert page.locator("#queue-list li").count() == FLAGGED
        assert "0/2" in page.inner_text("#queue-list li >> nth=0")
    decide_all(aiko, {17: "", 18: "", 19: ""})
    decide_all(ben, {14: " Fixed.", 15: " Fixed.", 16: "", 17: "", 18: "", 19: ""})
    # A reload of aiko's own queue shows nothing left, and no record she decided.
    aiko.reload()
    aiko.wait_for_selector("#empty:not([hidden])")
    assert aiko.locator("#queue-list li").count() == 0
    assert aiko.inner_text("#agreement") == ""  # how far they agree is the lead's
    assert aiko.is_visible("#team-progress")
    assert "aiko: 20" in aiko.inner_text("#team-progress")  # per annotator
    assert "ben: 20" in aiko.inner_text("#team-progress")
    aiko_context.close()
    ben_context.close()

    lead_context, lead = open_as(browser, serve(team_db, annotator="chie",
                                                team=Team(adjudicate=True)))
    lead.wait_for_function("document.querySelector('#agreement').innerText.includes('aiko / ben')")
    assert f"({FLAGGED})" in lead.inner_text("#agreement")  # 20 pairs of decisions
    assert lead.input_value("#filter-status") == "disagreement"
    assert lead.locator("#queue-list li").count() == 3
    for k in range(3):
        lead.wait_for_function("document.querySelectorAll('#votes-list li').length === 2")
        votes = lead.locator("#votes-list li")
        assert "aiko" in votes.nth(0).inner_text() and "reject" in votes.nth(0).inner_text()
        assert "ben" in votes.nth(1).inner_text() and "edit" in votes.nth(1).inner_text()
        before = lead.evaluate("state.view.id")
        if k < 2:
            lead.keyboard.press("2")  # take ben's version
        else:
            lead.click("#votes-list li >> nth=1 >> button.edit-version")
            lead.wait_for_selector("#editor:not([hidden])")
            text = lead.input_value("#edit-text")
            assert text == lead.evaluate("state.view.votes[1].record.text")
            lead.fill("#edit-text", text + " Settled.")
            lead.wait_for_selector("#edit-check .ok")
            lead.keyboard.press("Control+Enter")
        lead.wait_for_function(f"document.querySelector('#message').innerText"
                               f".includes('saved for {before}')")
    lead.select_option("#filter-status", "disagreement")
    lead.wait_for_selector("#empty:not([hidden])")
    lead_context.close()
    out = tmp_path / "final.json"
    mmtrans.export(team_db, out, fmt="mre")
    exported = out.read_text(encoding="utf-8")
    assert exported.count("Fixed.") == 2 and exported.count("Settled.") == 1
    assert LEFTOVER.strip() not in exported


def test_a_comment_goes_with_the_decision_and_every_passing_record_is_accepted_at_once(
        browser, team_db, serve):  # noqa: F811
    context, page = open_as(browser, serve(team_db, annotator="aiko", spot_check=1.0))
    first = page.evaluate("state.view.id")
    page.fill("#comment-text", "the source is cut off")
    page.evaluate("document.activeElement.blur()")  # hand the keys back to the page
    page.keyboard.press("x")
    next_record(page, first)
    page.click("#queue-list li >> nth=0")
    page.wait_for_function(f"state.view.id === {first!r}")
    assert "the source is cut off" in page.inner_text("#comments-list")
    assert "with a decision" in page.inner_text("#comments-list")
    page.click("#btn-accept-passing")
    page.wait_for_selector("#ask:not([hidden])")
    assert "5 record(s)" in page.inner_text("#ask-text")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#message').innerText.includes('accepted 5')")
    # the queue is read again after the message: wait for it, do not race it
    page.wait_for_function(
        "document.querySelectorAll('#queue-list li .state-accepted').length === 5")
    context.close()
