"""The review page passes axe-core (the npm package, injected into the page) with no serious
or critical violation: at desktop and phone size, with each dialog and the editor open."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mmtrans.review import Team
from mmtrans.store import Store

from .test_review_browser import (  # noqa: F401 (fixtures)
    browser,
    no_native_dialogs,
    open_page,
    served,
)

# A browser starts once a module (its first test pays for it) and a page can take seconds.
pytestmark = pytest.mark.timeout(300)
AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
def axe():
    if not AXE.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{AXE} is missing: run npm install")
        pytest.skip("axe-core is not installed: run npm install")
    return AXE


def serious_violations(page, axe_path: Path) -> list[str]:
    page.add_script_tag(path=str(axe_path))
    violations = page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ['violations']});
        return result.violations.map((v) => ({id: v.id, impact: v.impact,
            nodes: v.nodes.map((n) => n.target.join(' ') + ': ' + n.failureSummary)}));
    }""")
    return [f"{v['id']} ({v['impact']}): {'; '.join(v['nodes'])}" for v in violations
            if v["impact"] in ("serious", "critical")]


def each_panel_passes(page, axe) -> None:
    """The record, then each panel opened in turn by its key (keys, guidelines, the reject
    reason dialog, the editor): no serious or critical violation in any."""
    page.wait_for_selector("#queue-list li.current")
    assert serious_violations(page, axe) == []
    for key, panel in (("?", "#help"), ("g", "#guidelines"), ("x", "#ask"), ("e", "#editor")):
        page.keyboard.press(key)
        page.wait_for_selector(f"{panel}:not([hidden])")
        if key == "e":
            page.wait_for_selector("#edit-check li, #edit-check .ok")
        assert serious_violations(page, axe) == [], panel
        page.keyboard.press("Escape")


TEAM = Team(reasons=["garbled", "untranslatable"], guidelines="<p>Keep suffixes.</p>")


def test_desktop_with_a_current_queue_item_and_each_panel_open(browser, served, serve, axe):  # noqa: F811
    db, _ = served
    each_panel_passes(open_page(browser, serve(db, annotator="aiko", team=TEAM)), axe)


def test_phone_the_name_dialog_and_each_panel_open(browser, served, serve, axe):  # noqa: F811
    db, _ = served
    page = open_page(browser, serve(db, team=TEAM), viewport=(390, 844))
    page.wait_for_selector("#name-dialog:not([hidden])")
    assert serious_violations(page, axe) == []
    page.fill("#name-input", "ben")
    page.keyboard.press("Enter")
    page.wait_for_selector("#name-dialog", state="hidden")
    each_panel_passes(page, axe)


def test_adjudication_view(browser, served, serve, axe):  # noqa: F811
    db, _ = served
    with Store(db) as store:
        run_id = store._db.execute("select run_id from records").fetchone()[0]
        store.add_review(run_id, "scnm.json:3", "aiko", "reject")
        store.add_review(run_id, "scnm.json:3", "ben", "accept", reason="fine")
    page = open_page(browser, serve(db, annotator="chie", team=Team(adjudicate=True)),
                     viewport=(1280, 800))
    page.wait_for_selector("#votes-list li")
    assert serious_violations(page, axe) == []
