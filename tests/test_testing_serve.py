"""`python -m mmtrans.testing serve`: the scripted server a new user starts to try every
command with no model, run as a real process and stopped with a real Ctrl-C (SIGINT)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmtrans.cli import app

REPO = Path(__file__).parents[1]
runner = CliRunner()


@contextlib.contextmanager
def served(*options: str) -> Iterator[tuple[str, subprocess.Popen]]:
    server = subprocess.Popen(
        [sys.executable, "-m", "mmtrans.testing", "serve", "--port", "0", *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1"), \
            url + server.stderr.read()
        yield url, server
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)


def translate(url: str, path: Path, db: Path):
    return runner.invoke(app, ["translate", str(path), "--src", "ja", "--tgt", "en", "--db",
                               str(db), "--base-url", url, "--model", "mmtrans-scripted"])


def test_serve_prints_its_url_answers_translations_and_models_and_stops_on_ctrl_c(
        tmp_path, sample):
    with served() as (url, server):
        with urllib.request.urlopen(f"{url}/models", timeout=10) as answer:
            models = json.load(answer)
        assert [m["id"] for m in models["data"]] == ["mmtrans-scripted"]
        result = translate(url, sample(5), tmp_path / "run.db")
        assert result.exit_code == 0, result.output
        assert "5 translated (5 accepted, 0 flagged, 0 failed)" in result.output
        server.send_signal(signal.SIGINT)
        assert server.wait(10) == 0
        assert "Traceback" not in server.stderr.read()


def test_sigterm_stops_the_server_even_when_started_in_the_background_of_a_script():
    # `cmd &` in a script starts cmd with SIGINT ignored: only SIGTERM can stop it.
    script = (f"PYTHONPATH={REPO} {sys.executable} -m mmtrans.testing serve --port 0 & "
              "echo $!; wait $!; echo exit=$?")
    shell = subprocess.Popen(["bash", "-c", script], stdout=subprocess.PIPE, text=True)
    pid = int(shell.stdout.readline())
    assert shell.stdout.readline().startswith("http://127.0.0.1:")
    os.kill(pid, signal.SIGTERM)
    assert shell.stdout.readline().strip() == "exit=0"
    shell.wait(10)


def test_the_flag_fault_keeps_the_same_records_flagged_through_every_repair(tmp_path, sample):
    with served("--faults", "flag=1") as (url, _):
        result = translate(url, sample(4), tmp_path / "run.db")
    assert result.exit_code == 0, result.output
    assert "4 translated (0 accepted, 4 flagged, 0 failed)" in result.output


def test_rate_limits_and_server_errors_are_retried_to_good_answers(tmp_path, sample):
    with served("--faults", "429=0.3,500=0.3", "--seed", "3") as (url, _):
        result = runner.invoke(app, ["translate", str(sample(6)), "--src", "ja", "--tgt", "en",
                                     "--db", str(tmp_path / "run.db"), "--base-url", url,
                                     "--max-attempts", "20"])
    assert result.exit_code == 0, result.output
    assert "6 translated (6 accepted" in result.output
    sent = int(result.output.split(" requests sent")[0].rsplit(" ", 1)[-1])
    assert sent == 6  # a retry is the same request sent again, not another


@pytest.mark.parametrize("faults, message", [
    ("teapot=0.1", "'teapot': known faults are 429, 500, slow, flag"),
    ("429=2", "'429=2': a share is between 0 and 1"),
])
def test_an_unknown_fault_is_one_line_and_exit_2(faults, message):
    done = subprocess.run([sys.executable, "-m", "mmtrans.testing", "serve", "--faults", faults],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_a_port_in_use_is_one_line_and_exit_2():
    with served() as (url, _):
        port = url.split(":")[-1].split("/")[0]
        done = subprocess.run([sys.executable, "-m", "mmtrans.testing", "serve", "--port", port],
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: cannot listen on 127.0.0.1:{port}: Address already " \
                                  "in use"


@pytest.mark.parametrize("task", ["RE", "EE"])
def test_the_flag_fault_leaves_out_a_relation_or_an_event_as_it_does_a_mention(
        tmp_path, task):
    """Entities, relations and events are equals: the flag fault makes review work for
    relation and event records too (it used to touch only records with mentions)."""
    upstream = Path(__file__).parent / "data/upstream/iepile/data" / task / "train.json"
    lines = [line for line in upstream.read_text(encoding="utf-8").splitlines()
             if any(json.loads(json.loads(line)["output"]).values())][:3]  # not all empty
    source = tmp_path / f"{task}.json"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with served("--faults", "flag=1") as (url, _):
        result = runner.invoke(app, ["translate", str(source), "--src", "zh", "--tgt", "en",
                                     "--db", str(tmp_path / "run.db"), "--base-url", url,
                                     "--model", "mmtrans-scripted", "--repair", "0"])
    assert result.exit_code == 0, result.output
    assert "3 translated (0 accepted, 3 flagged, 0 failed)" in result.output
