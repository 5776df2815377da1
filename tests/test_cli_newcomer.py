"""What a new user meets: readable help at 80 columns, `runs` and `status` that fit, exit
codes that say what happened, a dry run that writes nothing, and `status` as a library call."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import mmtrans
from mmtrans.cli import app
from mmtrans.testing import FakeLLM, Reply

runner = CliRunner()


def commands(group, prefix: tuple[str, ...] = ()):
    """Every (argv, command) of the CLI, groups included."""
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if hasattr(command, "commands"):
            yield from commands(command, (*prefix, name))


CLI = typer.main.get_command(app)
ALL = [(" ".join(argv), argv) for argv, _ in commands(CLI)]


@pytest.mark.parametrize("argv", [[]] + [list(a) for _, a in ALL],
                         ids=["mmtrans"] + [name for name, _ in ALL])
def test_every_help_fits_80_columns_and_shows_flags_as_plain_flags(argv):
    result = runner.invoke(app, [*argv, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    text = result.output
    assert "<bool>" not in text
    # a flag is one switch (`--no-fidelity` alone is one), not a pair (`--x / --no-x`)
    assert not re.search(r"--[\w-]+\s*/\s*--no-", text)
    assert "…" not in text and not any(line.rstrip().endswith("...") for line in
                                       text.splitlines() if not line.startswith("Usage"))
    assert max(len(line) for line in text.splitlines()) <= 80


def test_every_option_has_help_text():
    missing = [f"{' '.join(argv)} {param.opts[0]}" for argv, command in commands(CLI)
               for param in command.params
               if param.param_type_name == "option" and not param.help]
    assert missing == []


@pytest.fixture
def finished(tmp_path: Path, sample) -> Path:
    db = tmp_path / "run.db"
    with FakeLLM() as llm:
        result = runner.invoke(app, ["translate", str(sample(3)), "--src", "ja", "--tgt", "en",
                                     "--db", str(db), "--base-url", llm.base_url,
                                     "--model", "a-model-with-a-long-name/Qwen2.5-7B-Instruct"])
    assert result.exit_code == 0, result.output
    return db


def test_runs_shows_every_value_whole_at_80_columns(finished: Path):
    result = runner.invoke(app, ["runs", "--db", str(finished)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    (run,) = json.loads(runner.invoke(app, ["runs", "--db", str(finished), "--json"]).stdout)
    text = result.output
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80
    for value in (run["id"], "a-model-with-a-long-name/Qwen2.5-7B-Instruct", "ja -> en",
                  "3: 3 accepted, 0 flagged, 0 failed, 0 pending"):
        assert value in text, value


def test_status_is_one_library_call_the_cli_prints(finished: Path):
    summary = mmtrans.status(finished)
    assert summary["records"] == 3 and summary["accepted"] == 3
    assert summary["model"] == "a-model-with-a-long-name/Qwen2.5-7B-Instruct"
    assert {"cost_usd", "agreement", "disagreements", "files"} <= summary.keys()
    printed = json.loads(runner.invoke(app, ["status", "--db", str(finished), "--json"]).stdout)
    assert printed == summary
    text = runner.invoke(app, ["status", "--db", str(finished)], env={"COLUMNS": "80"}).output
    assert "3: 3 accepted, 0 flagged, 0 failed, 0 pending" in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_dry_run_writes_no_store_and_leaves_an_existing_one_as_it_was(tmp_path, sample):
    path = sample(4)
    db = tmp_path / "run.db"
    with FakeLLM() as llm:
        args = ["translate", str(path), "--src", "ja", "--tgt", "en", "--db", str(db),
                "--base-url", llm.base_url, "--model", "gpt-4o-mini"]
        dry = runner.invoke(app, [*args, "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert "nothing written to the store" in dry.output
        assert sorted(p.name for p in tmp_path.iterdir()) == ["ner.json"]
        assert runner.invoke(app, [*args, "--limit", "2"]).exit_code == 0
        before = {p.name: digest(p) for p in tmp_path.iterdir() if p.is_file()}
        dry = runner.invoke(app, [*args, "--dry-run", "--repair", "0"])  # another run's config
        assert dry.exit_code == 0, dry.output
        assert "requests to send   2 (2 already" in dry.output  # it read the store's answers
        assert {p.name: digest(p) for p in tmp_path.iterdir() if p.is_file()} == before
        assert llm.requests and len(llm.requests) == 2


def test_classify_exits_1_and_says_how_many_failed(tmp_path, sample):
    def every_other_fails(payload, request):
        fails = sum(map(ord, payload["text"])) % 2
        return Reply("two\nlines" if fails else '{"label": "News"}')

    path = sample(6)
    with FakeLLM(every_other_fails) as llm:
        result = runner.invoke(app, ["classify", str(path), "--src", "ja", "--db",
                                     str(tmp_path / "c.db"), "--base-url", llm.base_url])
        texts = [json.loads(r["messages"][-1]["content"])["text"] for r in llm.requests]
    failed = sum(sum(map(ord, t)) % 2 for t in texts)
    assert 0 < failed < 6
    assert result.exit_code == 1, result.output
    assert f"{failed} record(s) failed" in result.output


def test_sampling_options_reach_the_request(tmp_path, sample):
    with FakeLLM() as llm:
        result = runner.invoke(app, [
            "translate", str(sample(1)), "--src", "ja", "--tgt", "en", "--db",
            str(tmp_path / "run.db"), "--base-url", llm.base_url, "--temperature", "0.5",
            "--seed", "7", "--max-tokens", "900"])
        assert result.exit_code == 0, result.output
        (request,) = llm.requests
    assert (request["temperature"], request["seed"], request["max_tokens"]) == (0.5, 7, 900)
