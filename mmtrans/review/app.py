"""The review web app: a JSON API over the store, and the static page from `review_ui/`.

Every decision is a new row in `reviews`; nothing the model said or an annotator decided is
overwritten. Each request opens the SQLite file anew (WAL), so review goes on while a
`translate` run is still writing to it.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..classify import CODE as PROPOSED
from ..resources import resource_dir
from ..store import Store, effective_reviews
from .agreement import run_agreement
from .plan import Plan, annotator_progress, assignees, parse_assign, record_progress, rows_for
from .queue import (
    EditError,
    Entry,
    check_edit,
    effective_edit,
    entry,
    progress,
    queue,
    record_view,
    seen_by,
    to_do,
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
    """What one request knows of the team's work: each run's plan, each record's effective
    decisions, and (for per-annotator progress) each queued record's (run, id, dataset,
    decisions)."""

    viewer: str | None
    plans: dict[str, Plan] = field(default_factory=dict)
    reviews: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    rows: list[tuple[str, str, str, list[Any]]] = field(default_factory=list)


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

    def store(self) -> Store:
        return Store(self.db, create=False)

    def config(self, request: Request, body: dict[str, Any]) -> Response:
        with self.store() as store:
            stamp = store.stamp()
        return JSONResponse({"annotator": self.annotator, "spot_check": self.spot_check,
                             "db": str(self.db), "reasons": self.team.reasons,
                             "guidelines": self.team.guidelines,
                             "adjudicate": self.team.adjudicate, "stamp": stamp,
                             "overlap": self._overlap()})

    def queue(self, request: Request, body: dict[str, Any]) -> Response:
        with self.store() as store:
            stamp = store.stamp()
            everything, entries, team = self._filtered(store, dict(request.query_params))
            made = store.decisions_made(self.run_id)
        return JSONResponse({
            "entries": [self._team_entry(e, team) for e in entries],
            "progress": {**progress(everything), "by_annotator": made},
            "annotators": annotator_progress(team.plans, team.rows),
            "codes": sorted({c for e in everything for c in e.codes}),
            "datasets": sorted({e.dataset for e in everything}),
            "stamp": stamp,
        })

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

    def _filtered(self, store: Store, q: dict[str, str]
                  ) -> tuple[list[Entry], list[Entry], _TeamView]:
        """The queue (every entry, as this page sees it) and the entries the filters keep:
        problem code, dataset, state, and "mine to do" (`mine`)."""
        code, dataset, status = (q.get(k) or None for k in ("code", "dataset", "status"))
        viewer = self.annotator or (q.get("annotator") or "").strip() or None
        everything = queue(store, spot_check=self.spot_check, run_id=self.run_id)
        team = _TeamView(viewer=viewer)
        for run_id in {e.run_id for e in everything}:
            team.plans[run_id] = self._plan(store, run_id)
            for record_id, reviews in store.all_reviews(run_id).items():
                team.reviews[(run_id, record_id)] = reviews
        everything = [self._as_seen(e, team) for e in everything]
        team.rows = [(e.run_id, e.id, e.dataset, team.reviews.get((e.run_id, e.id), []))
                     for e in everything]
        entries = [e for e in everything
                   if e.shown(code, status) and (not dataset or e.dataset == dataset)]
        if q.get("mine") and viewer:
            entries = to_do(entries, team.reviews, team.plans, viewer)
        return everything, entries, team

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
        try:
            reviews, translations = (int(x) for x in
                                     request.query_params.get("since", "0,0").split(","))
        except ValueError:
            raise BadRequest("'since' must be two integers, as the stamp gives") from None
        with self.store() as store:
            stamp = store.stamp()
            decided = [] if stamp[0] == reviews else store.reviews_since(reviews, self.run_id)
            translated = [] if stamp[1] == translations else \
                store.translations_since(translations, self.run_id)
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
            review_id = store.add_review(run_id, record_id, annotator.strip(), decision, edited,
                                         translation_id=judged.id if judged else None,
                                         reason=kept_reason,
                                         adjudicated=adjudicated,
                                         comment=comment.strip() if comment else None)
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
        filters = {k: body[k] for k in ("code", "dataset", "status", "mine")
                   if isinstance(body.get(k), str)}
        confirm = body.get("confirm")
        if confirm is not None and (not isinstance(confirm, list) or not all(
                isinstance(x, list) and len(x) == 2 and all(isinstance(y, str) for y in x)
                for x in confirm)):
            raise BadRequest("'confirm' must be the [run, id] pairs counted")
        with self.store() as store:
            if confirm is None:
                _, entries, _ = self._filtered(store, {**filters, "annotator": annotator})
                passing = [[e.run_id, e.id] for e in entries if self._passes(store, e, annotator)]
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
                    store.add_review(run_id, record_id, annotator, "accept",
                                     translation_id=judged.id if judged else None,
                                     adjudicated=self.team.adjudicate)
                    accepted += 1
            return JSONResponse({"accepted": accepted, "skipped": len(confirm) - accepted,
                                 "by_annotator": store.decisions_made(self.run_id)})

    def _passes(self, store: Store, e: Entry, annotator: str) -> bool:
        """Still to decide on this page, with a translation that passes every check."""
        if e.state != "to review" or e.codes or e.status == "failed":
            return False
        t = store.latest_translation(e.run_id, e.id)  # `codes` are its problems
        return t is not None and t.target is not None



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
    """The request's JSON object; BadRequest when it is not one."""
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadRequest(f"the body is not JSON: {e}") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    for key in ("run", "id", "annotator", "decision"):
        if key in body and not isinstance(body[key], str):
            raise BadRequest(f"'{key}' must be a string")
    return body


async def bad_request(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, 400)


class Guard:
    """What a browser must not be tricked into: a body over MAX_BODY (413); and on a
    loopback server without a token, a request whose Host is not that server (DNS
    rebinding) or a state-changing one from another Origin or not sent as JSON (CSRF): 403."""

    def __init__(self, app: Callable[..., Awaitable[None]], hosts: set[str] | None):
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        refusal = self.refusal(request)
        if refusal is not None:
            return await JSONResponse({"error": refusal[1]}, refusal[0])(scope, receive, send)
        received = 0

        async def limited() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_BODY:
                raise BodyTooLarge
            return message

        try:
            return await self.app(scope, limited, send)
        except BodyTooLarge:
            return await JSONResponse({"error": "the body is over 1 MB"}, 413)(
                scope, receive, send)

    def refusal(self, request: Request) -> tuple[int, str] | None:
        length = request.headers.get("content-length", "0")
        if not length.isdigit() or int(length) > MAX_BODY:
            return 413, "the body is over 1 MB"
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


class BodyTooLarge(Exception):
    """A streamed body went over MAX_BODY."""


class TokenGate:
    """Every request must carry the token: `Authorization: Bearer`, `?token=` (which sets a
    cookie, so the page's own files load), or that cookie. Otherwise 401."""

    def __init__(self, app: Callable[..., Awaitable[None]], token: str):
        self.app = app
        self.token = token

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        given = [request.headers.get("authorization", "").removeprefix("Bearer ").strip(),
                 request.query_params.get("token", ""), request.cookies.get(COOKIE, "")]
        token = self.token.encode("utf-8")
        if not any(g and secrets.compare_digest(g.encode("utf-8"), token) for g in given):
            return await JSONResponse({"error": "a valid token is required"}, 401)(
                scope, receive, send)
        if request.query_params.get("token", "").encode("utf-8") == token:
            async def send_with_cookie(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                    message["headers"] = [*message.get("headers", []),
                                          (b"set-cookie", cookie.encode())]
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
