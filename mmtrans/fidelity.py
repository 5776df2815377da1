"""The `fidelity` check: does the translation say what the source says, no more and no less,
even when every annotated string matches?

Three signals, each calibrated per language pair on good translations (bench/fidelity,
`data/fidelity/calibration.toml`):

- length: the translation's length against the source's, as a log ratio, in standard
  deviations from what good translations of the pair give (a dropped clause shortens it, an
  added sentence lengthens it);
- leave one out (as bertalign aligns sentences, with cross-lingual embeddings): a source
  clause whose removal brings the source *closer* to the translation has no counterpart in
  it (dropped); a sentence of the translation whose removal brings it closer to the source
  has none in the source (added);
- the whole: a translation far less similar to its source than good translations of the
  pair are says something else (content swapped, names kept).

Every problem names the part (which sentence, which clause, quoted) and carries its
character range, on the translation or on the source, for the review page to mark.
The checker is a blocking, batched call: `FidelityQueue` runs it in a thread of its own
for the asynchronous pipeline, many records per call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from .checks import Problem
from .embeddings import ENGINE_OF_NAME, Embedder, InProcessEmbedder, default_embedder, say_once
from .errors import EmbeddingsError
from .records import Record
from .resources import resource_dir
from .scripts import is_spaced, language_name
from .segments import Segment, segments, sentences
from .store import content_key

CODE = "fidelity"
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
            "ninth", "tenth")
#: Records per embedding call from the pipeline's queue.
BATCH = 32


@dataclass(frozen=True)
class PairCalibration:
    """What good translations of one language pair look like (bench/fidelity calibrates it:
    `python bench/fidelity/run.py --calibrate`)."""

    #: log(len(translation) / len(source)) in characters: median and spread.
    ratio_median: float
    ratio_sd: float
    #: The best leave-one-out gain of a source clause: median and spread.
    loo_median: float
    loo_sd: float
    #: Dropped: the drop score (shortness and leave-one-out gain, in spreads) above this.
    drop_max: float
    #: Added: a translation longer than this many spreads above the median.
    long_max: float
    #: Different: whole-text similarity below this.
    whole_min: float
    #: Added: removing a sentence of the translation gains more similarity than this.
    add_gain: float = 0.01


@lru_cache(maxsize=1)
def calibrations() -> dict[str, PairCalibration]:
    """The shipped calibration, by "src-tgt"."""
    path = resource_dir("fidelity") / "calibration.toml"
    table = tomllib.loads(path.read_text(encoding="utf-8"))
    return {pair: PairCalibration(**values) for pair, values in table["pairs"].items()}


def calibration_for(src: str, tgt: str) -> PairCalibration:
    """The pair's calibration; a pair not calibrated gets the loosest of the shipped ones
    (it flags less rather than more)."""
    known = calibrations()
    if f"{src}-{tgt}" in known:
        return known[f"{src}-{tgt}"]
    c = list(known.values())
    return PairCalibration(
        ratio_median=0.0, ratio_sd=max(x.ratio_sd for x in c) * 2,
        loo_median=max(x.loo_median for x in c), loo_sd=max(x.loo_sd for x in c),
        drop_max=max(x.drop_max for x in c), long_max=max(x.long_max for x in c),
        whole_min=min(x.whole_min for x in c), add_gain=max(x.add_gain for x in c))


#: The drop score weighs the translation's shortness against the best leave-one-out gain of a
#: source clause (measured in bench/fidelity: 0.7 catches the most drops at the same false
#: flags); the gain counts for at most LOO_CAP spreads, which lets a record whose length
#: alone rules a drop out skip embedding its source clauses.
LENGTH_WEIGHT = 0.7
LOO_CAP = 4.0
#: The drop threshold: this quantile of good translations' drop scores (the highest one
#: is an outlier of its sample; measured held out in bench/fidelity).
DROP_QUANTILE = 1.0


@dataclass
class Plan:
    """One record's texts and parts: its clauses (of the source), its sentences (of the
    translation), and each text without one of them."""

    source: str
    target: str
    src: str
    tgt: str
    clauses: list[Segment]
    source_without: list[str]
    sentences: list[tuple[int, int]]
    target_without: list[str]

    @property
    def ratio(self) -> float:
        return math.log(max(len(self.target), 1) / max(len(self.source), 1))


def _without(text: str, start: int, end: int, lang: str) -> str:
    glue = " " if is_spaced(lang) else ""
    return (text[:start].rstrip() + glue + text[end:].lstrip()).strip()


def plan(expected: Record, target: Record, src: str, tgt: str) -> Plan:
    """What to embed for one record. Annotated strings are never cut into parts."""
    clauses = segments(expected.text, src, [s for _, s in expected.anchored()])
    sents = sentences(target.text, tgt, [s for _, s in target.anchored()])
    return Plan(
        expected.text, target.text, src, tgt, clauses,
        [_without(expected.text, c.start, c.end, src) for c in clauses]
        if len(clauses) > 1 else [],
        sents,
        [_without(target.text, a, b, tgt) for a, b in sents] if len(sents) > 1 else [])


def shortness(p: Plan, cal: PairCalibration) -> float:
    """How much shorter than usual the translation is, in spreads (negative: longer)."""
    return -(p.ratio - cal.ratio_median) / cal.ratio_sd


def needs_clauses(p: Plan, cal: PairCalibration) -> bool:
    """Whether the drop score could pass its threshold at all: only then are the source's
    clauses left out one by one and embedded."""
    return bool(p.source_without) and (
        LENGTH_WEIGHT * shortness(p, cal) + (1 - LENGTH_WEIGHT) * LOO_CAP > cal.drop_max)


@dataclass
class Verdict:
    """The fidelity of one translation: its problems, and how close it keeps to the source
    (whole-text cosine; among several answers for a record the closest is kept)."""

    problems: list[Problem] = field(default_factory=list)
    closeness: float = 0.0
    #: The signals, for the benchmark and for tuning: whole, gains, drop score, length.
    signals: dict[str, float] = field(default_factory=dict)


def _quote(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[:limit - 1] + "…")


def _ordinal(k: int) -> str:
    return ORDINALS[k] if k < len(ORDINALS) else f"{k + 1}th"


def _pair(p: Plan) -> str:
    return f"{language_name(p.src)}→{language_name(p.tgt)}"


def judge(p: Plan, vectors: dict[str, np.ndarray], cal: PairCalibration) -> Verdict:
    """The problems of one planned record, given the embedding of every text it needs (the
    source's clauses only where `needs_clauses`)."""
    S, T = vectors[p.source], vectors[p.target]
    whole = float(S @ T)
    problems: list[Problem] = []
    add_gains = [float(S @ vectors[v]) - whole for v in p.target_without]
    for j, gain in enumerate(add_gains):
        if gain > cal.add_gain:
            a, b = p.sentences[j]
            problems.append(Problem(
                CODE, f"the {_ordinal(j)} sentence of the translation has no counterpart in "
                f"the source: {_quote(p.target[a:b])}", "text",
                span={"side": "target", "start": a, "end": b}))
    short = shortness(p, cal)
    drop_gains = [float(vectors[v] @ T) - whole for v in p.source_without if v in vectors]
    best = max(range(len(drop_gains)), key=lambda i: drop_gains[i], default=None)
    gain_z = (min(LOO_CAP, (drop_gains[best] - cal.loo_median) / cal.loo_sd)
              if best is not None else 0.0)
    drop = LENGTH_WEIGHT * short + (1 - LENGTH_WEIGHT) * gain_z
    usual = math.exp(cal.ratio_median)
    length = (f"{math.exp(p.ratio):.2f} times the source's length, {_pair(p)} translations "
              f"are about {usual:.2f}")
    if drop > cal.drop_max:
        if best is not None and drop_gains[best] > 0:
            c = p.clauses[best]
            where = (f" of the {_ordinal(c.sentence)} sentence"
                     if p.clauses[-1].sentence > 0 else "")
            problems.append(Problem(
                CODE, f"the source's clause{where} {_quote(c.text)} has no counterpart in the "
                f"translation ({length})", "text",
                span={"side": "source", "start": c.start, "end": c.end}))
        else:
            problems.append(Problem(CODE, f"the translation is {length}: content of the "
                                          "source dropped?", "text"))
    elif not problems and -short > cal.long_max:
        problems.append(Problem(CODE, f"the translation is {length}: content added that "
                                      "the source does not have?", "text"))
    if not problems and whole < cal.whole_min:
        problems.append(Problem(
            CODE, f"the translation does not say what the source says (similarity "
                  f"{whole:.2f}; faithful {_pair(p)} translations score {cal.whole_min:.2f} "
                  "or more)", "text", span={"side": "target", "start": 0, "end": len(p.target)}))
    signals = {"whole": whole, "add_gain": max(add_gains, default=-1.0), "drop": drop,
               "drop_gain": max(drop_gains, default=-1.0), "shortness": short}
    return Verdict(problems, whole, signals)


class FidelityChecker:
    """Judges many records with one embedding call (whole texts, sentences, and the clauses of
    the records that need them); a text shared between records, such as a source judged
    against several answers, is embedded once."""

    def __init__(self, embedder: Embedder, src: str, tgt: str,
                 calibration: PairCalibration | None = None) -> None:
        self.embedder = embedder
        self.src, self.tgt = src, tgt
        self.calibration = calibration or calibration_for(src, tgt)
        #: Texts embedded so far (for the benchmark's cost per record).
        self.embedded = 0

    def _embed(self, texts: list[str], vectors: dict[str, np.ndarray]) -> None:
        todo = list(dict.fromkeys(t for t in texts if t not in vectors))
        if todo:
            vectors.update(zip(todo, self.embedder.embed(todo)))
            self.embedded += len(todo)

    def check_many(self, pairs: Sequence[tuple[Record, Record]]) -> list[Verdict]:
        plans = [plan(e, t, self.src, self.tgt) for e, t in pairs]
        vectors: dict[str, np.ndarray] = {}
        # One call: whether a record's clauses are needed depends on lengths only, and the
        # engine packs more texts into fuller, less padded batches.
        self._embed([t for p in plans for t in (p.source, p.target, *p.target_without)] +
                    [t for p in plans if needs_clauses(p, self.calibration)
                     for t in p.source_without], vectors)
        return [judge(p, vectors, self.calibration) for p in plans]

    def check(self, expected: Record, target: Record) -> Verdict:
        return self.check_many([(expected, target)])[0]


class FidelityQueue:
    """The checker for an asynchronous run: records awaiting a verdict are gathered into
    batches and judged in a worker thread, so the event loop (and every request in flight)
    never waits for the model."""

    def __init__(self, checker: FidelityChecker, batch: int = BATCH) -> None:
        self.checker = checker
        self.batch = batch
        self._pending: list[tuple[Record, Record, asyncio.Future[Verdict]]] = []
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fidelity")
        self._worker: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None

    async def check(self, expected: Record, target: Record) -> Verdict:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Verdict] = loop.create_future()
        self._pending.append((expected, target, future))
        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            await asyncio.sleep(0)  # let the records answered at the same moment join
            batch, self._pending = self._pending[:self.batch], self._pending[self.batch:]
            try:
                verdicts = await loop.run_in_executor(
                    self._pool, self.checker.check_many, [(e, t) for e, t, _ in batch])
            except Exception as e:  # every record of the batch learns it
                for *_, f in batch:
                    if not f.done():
                        f.set_exception(e)
                continue
            for (*_, f), v in zip(batch, verdicts):
                if not f.done():
                    f.set_result(v)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)



def calibrate(plans: Sequence[Plan], vectors: dict[str, np.ndarray]) -> PairCalibration:
    """A pair's calibration from good translations (every clause of each embedded): the
    thresholds sit at the edge of what good translations give, so none of them is flagged."""
    ratios = np.array([p.ratio for p in plans])
    ratio_median, ratio_sd = float(np.median(ratios)), max(float(np.std(ratios)), 0.05)
    gains = []
    for p in plans:
        whole = float(vectors[p.source] @ vectors[p.target])
        if p.source_without:
            gains.append(max(float(vectors[v] @ vectors[p.target]) - whole
                             for v in p.source_without))
    loo_median = float(np.median(gains)) if gains else 0.0
    loo_sd = max(float(np.std(gains)) if gains else 0.01, 0.005)
    loose = PairCalibration(ratio_median, ratio_sd, loo_median, loo_sd, drop_max=-1e9,
                            long_max=1e9, whole_min=-1.0)
    signals = [judge(p, vectors, loose).signals for p in plans]
    return PairCalibration(
        ratio_median=round(ratio_median, 4), ratio_sd=round(ratio_sd, 4),
        loo_median=round(loo_median, 4), loo_sd=round(loo_sd, 4),
        drop_max=round(float(np.quantile([s["drop"] for s in signals], DROP_QUANTILE)), 3),
        long_max=round(max(-s["shortness"] for s in signals) + 0.5, 3),
        whole_min=round(min(s["whole"] for s in signals) - 0.01, 3))




#: `MMTRANS_FIDELITY=off` in the environment is --no-fidelity for every command.
OFF_VARIABLE = "MMTRANS_FIDELITY"
NOT_CHECKED = ("fidelity was not checked: no embedding model (pip install 'mmtrans[fidelity]' "
               "for the in-process one, or give --embeddings-url)")


def make_checker(src: str, tgt: str, enabled: bool = True, url: str | None = None,
                 model: str | None = None, api_key: str | None = None,
                 on_notice: Callable[[str], None] | None = None) -> FidelityChecker | None:
    """The run's fidelity checker: the endpoint at `url`, else the in-process model; None
    when turned off, or when no backend is there (then `on_notice` is told so, once)."""
    if not enabled or os.environ.get(OFF_VARIABLE, "").lower() in ("off", "0", "no"):
        return None
    embedder = default_embedder(url, model, api_key)
    if embedder is None:
        if on_notice:
            on_notice(NOT_CHECKED)
        return None
    return FidelityChecker(embedder, src, tgt)


_checkers: dict[tuple[str, str, str], FidelityChecker] = {}
#: After an endpoint failed, how long edits are not checked against it (asked again after).
DOWN_SECONDS = 60.0
_down_until: dict[str, float] = {}


def _checker_for(src: str, tgt: str, embedder_name: str) -> FidelityChecker | None:
    """The checker a run's fidelity identity names: its endpoint ("model at url"), else the
    in-process engine that made its verdicts (the default for a name not known); None when
    neither is there now (not kept: it may be there later)."""
    key = (src, tgt, embedder_name)
    if key in _checkers:
        return _checkers[key]
    model, sep, url = embedder_name.rpartition(" at ")
    endpoint = bool(sep) and "://" in url
    engine = None if endpoint else ENGINE_OF_NAME.get(embedder_name)
    try:
        embedder = InProcessEmbedder(engine=engine) if engine else \
            default_embedder(url if endpoint else None, model if endpoint else None)
    except Exception:  # an endpoint gone since the run: the edit is checked without it
        return None
    if embedder is None:
        return None
    return _checkers.setdefault(key, FidelityChecker(embedder, src, tgt))


def recheck(config: dict[str, Any], expected: Record, edited: Record) -> list[Problem] | None:
    """The fidelity problems of an annotator's edit, for a run that checked fidelity (its
    identity holds "fidelity") when a model is there; [] for a run that did not; None when
    it cannot be checked now (no model, or its endpoint failed: said once on stderr, not
    asked again for DOWN_SECONDS): an embeddings server that is down must not keep an
    annotator from opening or saving a record. A blocking
    call: the review server's handlers run in its thread pool."""
    run_fidelity = config.get("fidelity")
    if not run_fidelity or os.environ.get(OFF_VARIABLE, "").lower() in ("off", "0", "no"):
        return []
    name = run_fidelity.get("embedder", "")
    if time.monotonic() < _down_until.get(name, 0.0):
        return None
    checker = _checker_for(config["src"], config["tgt"], name)
    if checker is None:
        return None
    try:
        return checker.check(expected, edited).problems
    except EmbeddingsError as e:
        # Each failure took the client's retries; the page asks as the annotator types.
        _down_until[name] = time.monotonic() + DOWN_SECONDS
        say_once(f"mmtrans review: the fidelity of edits is not checked: {e}")
        return None


def identity(checker: FidelityChecker) -> dict[str, Any]:
    """What a run's fidelity verdicts depend on, for the run's identity."""
    return {"embedder": checker.embedder.name,
            "calibration": content_key(vars(checker.calibration))}


__all__ = ["CODE", "NOT_CHECKED", "FidelityChecker", "FidelityQueue", "PairCalibration", "Plan",
           "Verdict", "calibrate", "calibration_for", "identity", "judge", "make_checker", "plan",
           "recheck"]
