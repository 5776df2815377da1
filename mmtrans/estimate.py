"""Pricing a run before paying: render every request a run would send, count its tokens,
and price them from `data/prices/*.toml` (or the prices given)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .payload import payload_json
from .records import Record
from .resources import resource_dir
from .tokens import count_messages, counter

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

if TYPE_CHECKING:
    from .pipeline import Run

#: Answers of the run so far that make the output estimate an average of real answers.
ANSWERS_FOR_AVERAGE = 20


@dataclass
class Price:
    """US dollars per million tokens."""

    input: float
    output: float
    batch_input: float | None = None
    batch_output: float | None = None


def price_of(model: str, price_in: float | None = None,
             price_out: float | None = None) -> Price | None:
    """The model's price from the shipped tables, with `price_in`/`price_out` overriding."""
    found: dict[str, Any] = {}
    for path in sorted(resource_dir("prices").glob("*.toml")):
        found.update(tomllib.loads(path.read_text(encoding="utf-8")).get("models", {}))
    listed = found.get(model)
    if listed is None and (price_in is None or price_out is None):
        return None
    listed = listed or {}
    return Price(price_in if price_in is not None else listed["input"],
                 price_out if price_out is not None else listed["output"],
                 listed.get("batch_input"), listed.get("batch_output"))


@dataclass
class Estimate:
    model: str
    requests: int = 0
    cached: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    method: str = ""
    output_method: str = ""
    repair: int = 0
    price: Price | None = None

    def cost(self, batch: bool = False) -> float | None:
        p = self.price
        if p is None:
            return None
        rate_in, rate_out = (p.batch_input, p.batch_output) if batch else (p.input, p.output)
        if rate_in is None or rate_out is None:
            return None
        return (self.tokens_in * rate_in + self.tokens_out * rate_out) / 1e6

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "requests": self.requests, "cached": self.cached,
                "tokens_in": self.tokens_in, "tokens_out": self.tokens_out,
                "method": self.method, "output_method": self.output_method,
                "cost": self.cost(), "batch_cost": self.cost(batch=True),
                "repair_turns_not_counted": self.repair}


def dry_run(run: Run, records: Iterable[Record], price_in: float | None = None,
            price_out: float | None = None) -> Estimate:
    """What the run's first requests would cost: every pending record's request rendered,
    the ones already cached (or repeated) not counted. Repair turns, sent only for flagged
    answers, are not in it."""
    model = run.backend.model
    encode, method = counter(model)
    average = run.store.average_tokens_out(run.run_id, ANSWERS_FOR_AVERAGE)
    estimate = Estimate(model, method=method, repair=run.settings.repair,
                        price=price_of(model, price_in, price_out),
                        output_method=(f"the average of this run's {ANSWERS_FOR_AVERAGE}+ "
                                       "answers so far" if average is not None else
                                       "the size of each record's input (a translation "
                                       "is about as long as its source)"))
    seen: set[str] = set()
    for record in records:
        expected = run.table.translate(record)
        messages, _, _ = run.first_turn(expected)
        key = run.request_key(messages)
        if key in seen or run.store.cached_response(key) is not None:
            estimate.cached += 1
            continue
        seen.add(key)
        estimate.requests += 1
        estimate.tokens_in += count_messages(messages, encode)
        estimate.tokens_out += round(average) if average is not None \
            else encode(payload_json(expected))
    return estimate


def spent(model: str, tokens_in: int, tokens_out: int) -> float | None:
    """What the tokens a run used cost at the model's listed online price (None: unlisted)."""
    price = price_of(model)
    if price is None:
        return None
    return (tokens_in * price.input + tokens_out * price.output) / 1e6
