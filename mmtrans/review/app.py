"""The review web app: a JSON API over the store, and the static page from `review_ui/`.

Every decision is a new row in `reviews`; nothing the model said or an annotator decided is
overwritten. Each request opens the SQLite file anew (WAL), so review goes on while a
`translate` run is still writing to it.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..classify import CODE as PROPOSED
from ..errors import EnoughVotesError
from ..groups import dataset_names
from ..resources import resource_dir
from ..store import FLAGGED, Review, Store, effective_reviews
from ..store.queue import Cursor
from .agreement import run_agreement
from .plan import (
    Plan,
    annotator_progress,
    assignees,
    own_decision,
    parse_assign,
    record_progress,
    rows_for,
)
from .queue import (
    MAX_PAGE,
    PAGE,
    EditError,
    Entry,
    Filters,
    check_edit,
    decided_records,
    effective_edit,
    entry,
    left_out_of,
    read_queue,
    record_view,
    seen_by,
)
from .view import target_spans

DECISIONS = ("accept", "edit", "reject")
COOKIE = "mmtrans_token"
#: Request bodies larger than this are refused with 413 (an edited record is a few KB).
MAX_BODY = 1 << 20
MAX_PATCHED = 200  # new translations patched entry by entry; more: the page reloads
MAX_COMMENT = 4000  # characters in one comment


@dataclass
class _TeamView:
    """What one request knows of the team's work: each run's plan and each record's
    effective decisions."""

    viewer: str | None
    plans: dict[str, Plan] = field(default_factory=dict)
    reviews: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    #: Every record of the request's runs with a decision: its effective decisions.
    decided: dict[tuple[str, str], list[Any]] = field(default_factory=dict)


def keep_plan(db: Path, run_id: str | None, team: Team) -> None:
    """The plan a server was started with becomes the run's (every run's, with none named):
    what is not given stays as the store has it."""
    assign = parse_assign(team.assign) if team.assign is not None else None
    with Store(db, create=False) as store:
        for rid in [run_id] if run_id else store.run_ids():
            old = Plan.of(store, rid)
            store.set_review_plan(rid, team.overlap if team.overlap is not None else old.overlap,
                                  assign if team.assign is not None else old.assign)


class BadRequest(Exception):
    """A request body the API cannot use: answered 400 with the message, never 500."""


@dataclass
class Team:
    """How a team reviews: reject reasons to pick from, guidelines to show (as HTML), and
    whether this page adjudicates (its decisions settle disagreements)."""

    reasons: list[str] = field(default_factory=list)
    guidelines: str | None = None
    adjudicate: bool = False
    #: Annotators per record (None: the plan the store holds, else 1), and who gets which
    #: records (`--assign`'s text; None: the store's plan, "all": anyone any record). Given,
    #: they become the run's plan in the store, for every server and export.
    overlap: int | None = None
    assign: str | None = None


class Api:
    def __init__(self, db: Path, annotator: str | None, spot_check: float, token: str | None,
                 run_id: str | None = None, team: Team | None = None):
        self.db = db
        self.annotator = annotator
        self.spot_check = spot_check
        self.token = token
        self.run_id = run_id
        self.team = team or Team()
        self._stores = threading.local()
        #: (translation stamp, problem codes, flagged records) of the queue last read.
        self._facts: tuple[int, list[str], int] | None = None

    @contextmanager
    def store(self) -> Iterator[Store]:
        """This worker thread's store, opened at its first request and kept (opening one
        costs more than most requests): in WAL mode each read still sees every commit made
        before it, by any process. A request that fails drops it; the next one reopens."""
        store = getattr(self._stores, "store", None)
        if store is None:
            store = self._stores.store = Store(self.db, create=False)
        try:
            yield store
        except BaseException:
            self._stores.store = None
            with suppress(Exception):
                store.close()
            raise

    def config(self, request: Request, body: dict[str, Any]) -> Response:
        with self.store() as store:
            stamp = store.stamp()
        return JSONResponse({"annotator": self.annotator, "spot_check": self.spot_check,
                             "db": str(self.db), "reasons": self.team.reasons,
                             "guidelines": self.team.guidelines,
                             "adjudicate": self.team.adjudicate, "stamp": stamp,
                             "overlap": self._overlap()})

    def queue(self, request: Request, body: dict[str, Any]) -> Response:
        """One page of the queue, filtered and paged on the server (`after` / `before`: the
        cursor of an entry, `limit`: entries a page holds)."""
        q = request.query_params
        filters = Filters(*(_text_param(q, k) for k in
                            ("code", "dataset", "status", "q", "by")))
        after, before = _cursor_param(q, "after"), _cursor_param(q, "before")
        limit = _int_param(q, "limit", PAGE, 1, MAX_PAGE)
        with self.store() as store:
            stamp = store.stamp()
            # The problem codes and the flagged count change only with new translations:
            # read once per stamp.
            codes, flagged = self._facts[1:] if self._facts and self._facts[0] == stamp[1] \
                else (None, None)
            page, team = self._page(store, filters, limit, after, before, self._viewer(request),
                                    q.get("mine"), codes, flagged)
            made = store.decisions_made(self.run_id)
            entries = [self._team_entry(e, team) for e in page.entries]
            annotators = self._annotators(store, team)
        self._facts = (stamp[1], page.codes, page.flagged)
        page.progress["by_annotator"] = made
        return JSONResponse({**page.to_dict(), "entries": entries, "stamp": stamp,
                             "annotator_progress": annotators})

    def agreement(self, request: Request, body: dict[str, Any]) -> Response:
        with self.store() as store:
            run_ids = [self.run_id] if self.run_id else store.run_ids()
            if not self.team.adjudicate and any(self._plan(store, r).blind for r in run_ids):
                # Blind annotators are not told how far they agree: only the lead is.
                return JSONResponse({"pairs": []})
            pairs = [p.to_dict() | {"run": run_id} for run_id in run_ids
                     for p in run_agreement(store, run_id)]
        return JSONResponse({"pairs": pairs})

    # -- a team's share of the work (overlap, assignment, blind views) ---------------------

    def _plan(self, store: Store, run_id: str) -> Plan:
        return Plan.of(store, run_id)

    def _overlap(self) -> int:
        with self.store() as store:
            run_ids = [self.run_id] if self.run_id else store.run_ids()
            return max([self._plan(store, r).overlap for r in run_ids] or [1])

    def _viewer(self, request: Request | None, body: dict[str, Any] | None = None) -> str | None:
        """Who this page is: the server's annotator, else the name the page sends."""
        given = (body or {}).get("annotator") or \
            (request.query_params.get("annotator") if request else None)
        name = self.annotator or (given if isinstance(given, str) else None)
        return name.strip() if name and name.strip() else None

    def _counted(self, store: Store, run_id: str, viewer: str | None):  # type: ignore[no-untyped-def]
        return rows_for(self._plan(store, run_id), viewer, self.team.adjudicate)

    def _page(self, store: Store, filters: Filters, limit: int, after: Any, before: Any,
              viewer: str | None, mine: str | None, codes: list[str] | None = None,
              flagged: int | None = None
              ) -> tuple[Any, _TeamView]:
        """One page of the queue as this page sees it: blind, its states are the annotator's
        own decisions (the lead's: the adjudications); `mine`: only what is left for the
        annotator to decide ("mine to do")."""
        run_ids = [self.run_id] if self.run_id else store.run_ids()
        team = _TeamView(viewer=viewer, plans={r: self._plan(store, r) for r in run_ids})
        blind = any(plan.blind for plan in team.plans.values())
        counted = None
        if blind:
            def counted(r: Review) -> bool:
                return own_decision(r, viewer, self.team.adjudicate)
        left_out = None
        if mine and viewer:
            names = dataset_names(store)
            datasets = {r: names.run(store.run(r)) for r in run_ids}
            left_out = left_out_of(store, team.plans, viewer, datasets)
        # Every record's decisions, read once: for the page, and for each annotator's progress.
        team.decided = decided_records(store, run_ids)
        page = read_queue(store, filters, limit, after, before, self.spot_check, self.run_id,
                          codes, flagged, counted, left_out, team.decided)
        for e in page.entries:
            team.reviews[(e.run_id, e.id)] = store.reviews(e.run_id, e.id)
        if blind and not self.team.adjudicate:
            for e in page.entries:
                e.disagreement = False  # an annotator never learns whether others agreed
            page.annotators = [viewer] if viewer else []  # nor who else decided
        return page, team

    def _annotators(self, store: Store, team: _TeamView) -> dict[str, dict[str, int]]:
        """Each annotator's records decided and (with an assignment) assigned, over the
        whole queue, not the page: only for a team's plan (blind, or split)."""
        if not any(p.blind or p.assign is not None for p in team.plans.values()):
            return {}
        names = dataset_names(store)
        rows = []
        for run_id, plan in team.plans.items():
            dataset = names.run(store.run(run_id))
            decided = {rid: reviews for (run, rid), reviews in team.decided.items()
                       if run == run_id}
            rows += [(run_id, rid, dataset, reviews) for rid, reviews in decided.items()]
            if plan.assign is not None:
                rows += [(run_id, rid, dataset, []) for rid in store.queue_ids(run_id, FLAGGED)
                         if rid not in decided]
        return annotator_progress(team.plans, rows)

    def _as_seen(self, e: Entry, team: _TeamView) -> Entry:
        if not team.plans[e.run_id].blind:
            return e
        return seen_by(e, team.reviews.get((e.run_id, e.id), []), team.viewer,
                       self.team.adjudicate)

    def _team_entry(self, e: Entry, team: _TeamView) -> dict[str, Any]:
        """An entry with how far its record is (`record`: decided of needed, its state)."""
        plan = team.plans[e.run_id]
        figures = record_progress(plan, team.reviews.get((e.run_id, e.id), []))
        if plan.blind and not self.team.adjudicate:
            # An annotator sees how many decided, never whether they agreed.
            figures = {**figures, "agreement": None,
                       "label": f"{min(figures['decided'], plan.overlap)}/{plan.overlap}"
                       if figures["label"] in ("done", "disputed") else figures["label"]}
        return {**e.to_dict(), "record": figures}

    def _entry(self, store: Store, run_id: str, record_id: str, viewer: str | None
               ) -> dict[str, Any] | None:
        """One record's entry as this page sees it (patched in place after a change)."""
        found = entry(store, run_id, record_id)
        if found is None:
            return None
        team = _TeamView(viewer=viewer, plans={run_id: self._plan(store, run_id)},
                         reviews={(run_id, record_id): store.reviews(run_id, record_id)})
        return self._team_entry(self._as_seen(found, team), team)

    def _view(self, store: Store, run_id: str, record_id: str, viewer: str | None,
              version: int | None = None) -> dict[str, Any]:
        """The record as this page sees it: blind, an annotator's own decisions and
        comments only; the lead, every version beside the adjudication, and every comment.
        `version`: one annotator's version (a review id) as the record to edit."""
        plan = self._plan(store, run_id)
        counted = self._counted(store, run_id, viewer)
        shown = counted
        if version is not None:
            shown = lambda row: row["id"] == version  # noqa: E731
        blind = plan.blind and not self.team.adjudicate
        view = record_view(store, run_id, record_id, shown, with_votes=not blind)
        if version is not None:
            view["seen"] = record_view(store, run_id, record_id, counted, False)["seen"]
        comments = store.comments(run_id, record_id)
        view["comments"] = [c for c in comments if not blind or c["annotator"] == viewer]
        reviews = store.reviews(run_id, record_id)
        figures = record_progress(plan, reviews)
        if blind:
            figures = {**figures, "agreement": None,
                       "label": f"{min(figures['decided'], plan.overlap)}/{plan.overlap}"
                       if figures["label"] in ("done", "disputed") else figures["label"]}
        view["record"] = figures
        view["assigned"] = assignees(plan, run_id, record_id, view["dataset"])
        return view

    def changes(self, request: Request, body: dict[str, Any]) -> Response:
        """What changed since the page's stamp: the entries of records decided or translated
        since (patched in place; an entry the page does not list yet makes it reload its
        queue, as do more than MAX_PATCHED new translations). The page polls this; an
        unchanged store answers in two small queries."""
        since = request.query_params.get("since", "0,0")
        parts = since.split(",")
        if len(parts) != 2 or not all(_row_id(p) for p in parts):
            raise BadRequest("'since' must be two row ids, as the stamp gives")
        reviews, translations = (int(p) for p in parts)
        with self.store() as store:
            stamp = store.stamp()
            decided = [] if stamp[0] == reviews else store.reviews_since(reviews, self.run_id)
            translated = [] if stamp[1] == translations else \
                store.translations_since(translations, self.run_id, MAX_PATCHED + 1)
            reload = len(translated) > MAX_PATCHED
            changed = dict.fromkeys(decided + ([] if reload else translated))
            viewer = self._viewer(request)
            entries = [e for run_id, record_id in changed
                       if (e := self._entry(store, run_id, record_id, viewer)) is not None]
            made = store.decisions_made(self.run_id) if decided else None
        return JSONResponse({"stamp": stamp, "entries": entries,
                             "decided": bool(decided), "by_annotator": made,
                             "reload": reload})

    def _find(self, store: Store, run_id: Any, record_id: Any) -> JSONResponse | None:
        if not isinstance(run_id, str) or not isinstance(record_id, str) or \
                not store.has_record(run_id, record_id):
            return JSONResponse({"error": f"no record {record_id!r} in run {run_id!r}"}, 404)
        return None

    def record(self, request: Request, body: dict[str, Any]) -> Response:
        run_id, record_id = request.query_params.get("run"), request.query_params.get("id")
        version = request.query_params.get("version")
        if version is not None and not version.isdigit():
            raise BadRequest("'version' must be the id of a decision")
        with self.store() as store:
            return self._find(store, run_id, record_id) or JSONResponse(self._view(
                store, run_id, record_id, self._viewer(request),  # type: ignore[arg-type]
                int(version) if version is not None else None))

    def check(self, request: Request, body: dict[str, Any]) -> Response:
        with self.store() as store:
            if missing := self._find(store, body.get("run"), body.get("id")):
                return missing
            try:
                record, problems = check_edit(store, body["run"], body["id"], body.get("record"))
            except EditError as e:
                return JSONResponse({"error": str(e)}, 400)
            return JSONResponse({"record": record.to_dict(),
                                 "problems": [p.to_dict() for p in problems],
                                 "spans": target_spans(record, store.run(body["run"])["tgt"])})

    def decide(self, request: Request, body: dict[str, Any]) -> Response:
        decision, annotator = body.get("decision"), body.get("annotator")
        if decision not in DECISIONS:
            return JSONResponse({"error": f"decision must be one of {DECISIONS}"}, 400)
        if not isinstance(annotator, str) or not annotator.strip():
            return JSONResponse({"error": "an annotator name is required"}, 400)
        with self.store() as store, store.write_lock():
            if missing := self._find(store, body.get("run"), body.get("id")):
                return missing
            run_id, record_id = body["run"], body["id"]
            comment = body.get("comment")
            if comment is not None and (not isinstance(comment, str) or
                                        len(comment) > MAX_COMMENT):
                raise BadRequest(f"'comment' must be a string of at most {MAX_COMMENT} "
                                 "characters")
            counted = self._counted(store, run_id, annotator.strip())
            if conflict := self._conflict(store, run_id, record_id, annotator.strip(), body,
                                          counted):
                return conflict
            edited = None
            problems: list[Any] = []
            if decision == "edit":
                try:
                    edited, found = check_edit(store, run_id, record_id, body.get("record"))
                except EditError as e:
                    return JSONResponse({"error": str(e)}, 400)
                problems = [p.to_dict() for p in found]
            elif decision == "accept":
                problems = record_view(store, run_id, record_id, counted, False)["problems"]
                # Accepting a saved edit keeps that edit (what the page showed), not the
                # model's translation under it (blind: the annotator's own edit only).
                edited = effective_edit(store, run_id, record_id, counted)
            judged = store.latest_translation(run_id, record_id)
            if decision == "accept" and edited is None and (judged is None or
                                                            judged.target is None):
                return JSONResponse({"error": "this record has no usable translation to "
                                              "accept: edit it or reject it"}, 400)
            # A label proposed for confirmation (`mmtrans classify`) is what accepting
            # confirms, not a defect kept.
            classify = store.run(run_id)["strategy"] == "classify"
            problems = [p for p in problems if p.get("code") != PROPOSED and not (
                classify and p.get("where") == "label")]  # the label is what is confirmed
            reason = body.get("override")
            if problems and (not isinstance(reason, str) or not reason.strip()):
                # Keeping a record with open problems is a choice made on purpose, with a
                # reason: never a key pressed by accident.
                return JSONResponse({"error": "needs_reason", "problems": problems}, 422)
            kept_reason = reason.strip() if problems else None
            if decision == "reject" and self.team.reasons:
                # A team's rejections are counted by reason (`mmtrans status`).
                kept_reason = body.get("reason")
                if kept_reason not in self.team.reasons:
                    return JSONResponse({"error": "needs_reject_reason",
                                         "reasons": self.team.reasons}, 422)
            adjudicated = bool(body.get("adjudicate")) and self.team.adjudicate
            plan = self._plan(store, run_id)
            try:
                review_id = store.add_review(
                    run_id, record_id, annotator.strip(), decision, edited,
                    translation_id=judged.id if judged else None, reason=kept_reason,
                    adjudicated=adjudicated, comment=comment.strip() if comment else None,
                    votes_needed=plan.overlap if plan.blind else None)
            except EnoughVotesError as e:
                return JSONResponse({"error": str(e)}, 422)
            return JSONResponse(self._after(store, run_id, record_id, annotator.strip(),
                                            review=review_id))

    def _conflict(self, store: Store, run_id: str, record_id: str, annotator: str,
                  body: dict[str, Any], counted: Any = None) -> JSONResponse | None:
        """409 when the record was decided since the page read it (`seen`), or when the
        decision in effect is another annotator's: overriding someone is asked first, even
        when the page shows it (`force` says the annotator was asked). An adjudicator is not
        asked: that is the job. Blind (`counted`: the annotator's own rows), only the
        annotator's own decisions count: another annotator's is never a conflict."""
        rows = [r for r in store.review_rows(run_id, record_id)
                if counted is None or counted(r)]
        latest = rows[-1]["id"] if rows else 0
        reviews = effective_reviews(rows)
        theirs = bool(reviews) and reviews[-1].annotator != annotator and \
            not self.team.adjudicate
        # `force` answers the question about what the page was shown (`seen`): a decision
        # made after that is asked about again.
        if latest != body.get("seen", 0) or (theirs and not body.get("force")):
            return JSONResponse({"error": "conflict", "seen": latest,
                                 "theirs": reviews[-1].to_dict() if reviews else None}, 409)
        return None

    def _after(self, store: Store, run_id: str, record_id: str, viewer: str | None,
               **extra: Any) -> dict[str, Any]:
        """What the page needs after a change: the record's view, its queue entry (patched
        in place, the queue is not rebuilt) and each annotator's decisions made."""
        return {**extra, "run": run_id, "id": record_id,
                "view": self._view(store, run_id, record_id, viewer),
                "entry": self._entry(store, run_id, record_id, viewer),
                "by_annotator": store.decisions_made(self.run_id)}

    def undo(self, request: Request, body: dict[str, Any]) -> Response:
        if "review" not in body and "id" not in body:
            # No decision named: the annotator's latest one, from the reviews table (a
            # reload loses nothing).
            annotator = body.get("annotator")
            if not isinstance(annotator, str) or not annotator.strip():
                raise BadRequest("an annotator name is required")
            with self.store() as store:
                last = store.last_decision_of(annotator.strip(), self.run_id)
            if last is None:
                return JSONResponse({"error": "nothing of yours to undo"}, 409)
            body = {**body, "run": last["run_id"], "id": last["record_id"],
                    "review": last["id"]}
        with self.store() as store:
            if missing := self._find(store, body.get("run"), body.get("id")):
                return missing
            run_id, record_id = body["run"], body["id"]
            if not isinstance(body.get("review"), int):
                raise BadRequest("'review' must be the id of a decision")
            effective = {r.id: r for r in store.reviews(run_id, record_id)}
            if body["review"] not in effective:
                return JSONResponse({"error": "that decision is not in effect"}, 409)
            if self._plan(store, run_id).blind and not self.team.adjudicate and \
                    effective[body["review"]].annotator != self._viewer(None, body):
                # Blind, each annotator's decision is their own: nobody else takes it back.
                return JSONResponse({"error": "that decision is another annotator's"}, 403)
            store.add_review(run_id, record_id, str(body.get("annotator") or ""), "undo",
                             undoes=body["review"])
            return JSONResponse(self._after(store, run_id, record_id,
                                            self._viewer(None, body)))

    def comment(self, request: Request, body: dict[str, Any]) -> Response:
        """A comment on a record, without a decision (one made with a decision is kept
        with it: `comment` in /api/decision)."""
        annotator, text = body.get("annotator"), body.get("text")
        if not isinstance(annotator, str) or not annotator.strip():
            raise BadRequest("an annotator name is required")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_COMMENT:
            raise BadRequest(f"'text' must be a comment of 1 to {MAX_COMMENT} characters")
        with self.store() as store:
            if missing := self._find(store, body.get("run"), body.get("id")):
                return missing
            store.add_comment(body["run"], body["id"], annotator.strip(), text.strip())
            return JSONResponse(self._after(store, body["run"], body["id"],
                                            annotator.strip()))

    def accept_passing(self, request: Request, body: dict[str, Any]) -> Response:
        """Accept every record in the page's current filter that is still to decide and
        passes every check. Asked without `confirm`, it only counts them (what the page asks
        to confirm); with `confirm` (the [run, id] pairs counted), it accepts those that
        still qualify, in one transaction, and says how many."""
        annotator = self._viewer(None, body)
        if annotator is None:
            raise BadRequest("an annotator name is required")
        given = {k: body[k] if isinstance(body.get(k), str) and body[k] else None
                 for k in ("code", "dataset", "status", "q", "mine")}
        filters = Filters(given["code"], given["dataset"], given["status"], given["q"])
        confirm = body.get("confirm")
        if confirm is not None and (not isinstance(confirm, list) or not all(
                isinstance(x, list) and len(x) == 2 and all(isinstance(y, str) for y in x)
                for x in confirm)):
            raise BadRequest("'confirm' must be the [run, id] pairs counted")
        with self.store() as store:
            if confirm is None:
                passing = []
                after = None
                while True:  # every page of the filter, not only the one the page holds
                    page, _ = self._page(store, filters, MAX_PAGE, after, None, annotator,
                                         given["mine"])
                    passing += [[e.run_id, e.id] for e in page.entries
                                if self._passes(store, e, annotator)]
                    if not page.more_after or not page.entries:
                        break
                    after = page.entries[-1].cursor
                return JSONResponse({"count": len(passing), "records": passing})
            accepted = 0
            with store.write_lock():
                for run_id, record_id in confirm:
                    found = entry(store, run_id, record_id)
                    if found is None:
                        continue
                    team = _TeamView(viewer=annotator,
                                     plans={run_id: self._plan(store, run_id)},
                                     reviews={(run_id, record_id):
                                              store.reviews(run_id, record_id)})
                    if not self._passes(store, self._as_seen(found, team), annotator):
                        continue
                    judged = store.latest_translation(run_id, record_id)
                    plan = team.plans[run_id]
                    try:
                        store.add_review(run_id, record_id, annotator, "accept",
                                         translation_id=judged.id if judged else None,
                                         adjudicated=self.team.adjudicate,
                                         votes_needed=plan.overlap if plan.blind else None)
                    except EnoughVotesError:
                        continue  # the others' votes came first: skipped, as the count says
                    accepted += 1
            return JSONResponse({"accepted": accepted, "skipped": len(confirm) - accepted,
                                 "by_annotator": store.decisions_made(self.run_id)})

    def _passes(self, store: Store, e: Entry, annotator: str) -> bool:
        """Still to decide on this page, with a translation that passes every check."""
        if e.state != "to review" or e.codes or e.status == "failed":
            return False
        t = store.latest_translation(e.run_id, e.id)  # `codes` are its problems
        return t is not None and t.target is not None



#: The largest row id SQLite stores (a larger number can name no row).
MAX_ROW_ID = 2**63 - 1


def _row_id(text: str) -> bool:
    return text.isascii() and text.isdigit() and int(text) <= MAX_ROW_ID


def _text_param(query: Any, key: str) -> str | None:
    value = query.get(key) or None
    if value is not None and len(value) > 1000:
        raise BadRequest(f"'{key}' is over 1,000 characters")
    return value


def _int_param(query: Any, key: str, default: int, low: int, high: int) -> int:
    value = query.get(key)
    if value is None or value == "":
        return default
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise BadRequest(f"'{key}' must be a whole number from {low} to {high}")
    return int(value)


def _cursor_param(query: Any, key: str) -> Cursor | None:
    """A queue cursor as the page sends it: `kind,run,position`."""
    value = query.get(key)
    if not value:
        return None
    kind, _, rest = value.partition(",")
    run_id, _, position = rest.rpartition(",")
    # -1: before the first position (a page that starts at a run's first record).
    if kind not in ("0", "1") or not run_id or not (position == "-1" or _row_id(position)):
        raise BadRequest(f"'{key}' must be a queue cursor: kind,run,position")
    return int(kind), run_id, int(position)


def in_thread(handler: Callable[[Request, dict[str, Any]], Response]
              ) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint whose SQLite work runs in a worker thread, given the request's JSON body
    (POST): a slow query, or a write lock another process holds (a running `translate`, a
    second review server), never stalls the other annotators' requests."""
    async def endpoint(request: Request) -> Response:
        body = await _json(request) if request.method == "POST" else {}
        return await run_in_threadpool(handler, request, body)
    return endpoint


async def _json(request: Request) -> dict[str, Any]:
    """The request's JSON object; BadRequest when it is not one (nested past what the parser
    recurses into included)."""
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadRequest(f"the body is not JSON: {e}") from None
    except RecursionError:
        raise BadRequest("the body is nested too deep") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    for key in ("run", "id", "annotator", "decision"):
        if key in body and not isinstance(body[key], str):
            raise BadRequest(f"'{key}' must be a string")
    return body


async def bad_request(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, 400)


class Guard:
    """What a browser must not be tricked into, and what no client may cost the server: a
    body over MAX_BODY (413), however it is sent (a Content-Length, or chunks: it is read
    here, up to the cap, before the app sees a byte of it); and on a loopback server without
    a token, a request whose Host is not that server (DNS rebinding) or a state-changing one
    from another Origin or not sent as JSON (CSRF): 403."""

    def __init__(self, app: Callable[..., Awaitable[None]], hosts: set[str] | None):
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        refusal = self.refusal(request)
        if refusal is not None:
            return await _refuse(refusal, scope, receive, send)
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            received += len(chunks[-1])
            if received > MAX_BODY:
                return await _refuse(TOO_LARGE, scope, receive, send)
            if not message.get("more_body"):
                break
        whole: dict[str, Any] | None = {"type": "http.request", "body": b"".join(chunks),
                                        "more_body": False}

        async def replay() -> dict[str, Any]:
            nonlocal whole
            if whole is not None:
                message, whole = whole, None
                return message
            return await receive()  # what follows the body: the client leaving

        return await self.app(scope, replay, send)

    def refusal(self, request: Request) -> tuple[int, str] | None:
        length = request.headers.get("content-length", "0")
        if not (length.isascii() and length.isdigit()) or int(length) > MAX_BODY:
            return TOO_LARGE
        if self.hosts is None:
            return None
        if request.headers.get("host", "") not in self.hosts:
            return 403, "this server answers only to its own address"
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return None
        origin = request.headers.get("origin")
        if origin is not None and origin.split("//", 1)[-1] not in self.hosts:
            return 403, "requests from another origin are refused"
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return 403, "state-changing requests must be sent as application/json"
        return None


TOO_LARGE = (413, "the body is over 1 MB")


async def _refuse(refusal: tuple[int, str], scope: dict[str, Any], receive: Any,
                  send: Any) -> None:
    """Answer a refusal and close the connection (a body still on its way is not read)."""
    response = JSONResponse({"error": refusal[1]}, refusal[0],
                            headers={"connection": "close"} if refusal[0] == 413 else None)
    await response(scope, receive, send)


class TokenGate:
    """Every request must carry the token: `Authorization: Bearer` (as it is, or
    percent-encoded: a header cannot hold every character a shell can pass), `?token=`
    (which sets a cookie, so the page's own files load), or that cookie (percent-encoded).
    Otherwise 401."""

    def __init__(self, app: Callable[..., Awaitable[None]], token: str):
        self.app = app
        self.token = token
        self.expected = token.encode("utf-8")

    def _matches(self, given: bytes) -> bool:
        return bool(given) and (secrets.compare_digest(given, self.expected) or
                                secrets.compare_digest(unquote_to_bytes(given), self.expected))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        # The header's bytes as sent (Starlette decodes headers as Latin-1).
        bearer = request.headers.get("authorization", "").encode("latin-1")
        query = request.query_params.get("token", "").encode("utf-8")
        given = [bearer.removeprefix(b"Bearer ").strip(), query,
                 request.cookies.get(COOKIE, "").encode("latin-1")]
        if not any(self._matches(g) for g in given):
            return await JSONResponse({"error": "a valid token is required"}, 401)(
                scope, receive, send)
        if self._matches(query):
            async def send_with_cookie(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    cookie = f"{COOKIE}={quote(self.token, safe='')}; Path=/; HttpOnly; " \
                        "SameSite=Strict"
                    message["headers"] = [*message.get("headers", []),
                                          (b"set-cookie", cookie.encode("ascii"))]
                await send(message)
            return await self.app(scope, receive, send_with_cookie)
        return await self.app(scope, receive, send)


def make_app(db: str | Path, annotator: str | None = None, spot_check: float = 0.0,
             token: str | None = None, run_id: str | None = None,
             hosts: set[str] | None = None, team: Team | None = None) -> Any:
    """The ASGI app for `mmtrans review` over one run (None: every run); with a token,
    every request must carry it; with `hosts` (a loopback server without a token), only
    those Host headers are answered and state changes must come as JSON from them."""
    api = Api(Path(db), annotator, spot_check, token, run_id, team)
    if team is not None and (team.overlap is not None or team.assign is not None):
        keep_plan(Path(db), run_id, team)
    app: Any = Starlette(exception_handlers={BadRequest: bad_request}, routes=[
        Route("/api/config", in_thread(api.config)),
        Route("/api/queue", in_thread(api.queue)),
        Route("/api/changes", in_thread(api.changes)),
        Route("/api/agreement", in_thread(api.agreement)),
        Route("/api/record", in_thread(api.record)),
        Route("/api/check", in_thread(api.check), methods=["POST"]),
        Route("/api/decision", in_thread(api.decide), methods=["POST"]),
        Route("/api/undo", in_thread(api.undo), methods=["POST"]),
        Route("/api/comment", in_thread(api.comment), methods=["POST"]),
        Route("/api/accept-passing", in_thread(api.accept_passing), methods=["POST"]),
        Mount("/", StaticFiles(directory=resource_dir("review_ui"), html=True)),
    ])
    app = Guard(app, hosts)
    return TokenGate(app, token) if token else app
