"""Datasets are named by their paths below the inputs' common folder: IEPile's NER/train.json,
RE/train.json and EE/train.json, translated into one store through the scripted server, stay
three datasets in every export, in `stats`, `runs` and the review server."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mmtrans
from mmtrans.cli import app
from mmtrans.datasets import DatasetNames, output_stem
from mmtrans.errors import MmtransError
from mmtrans.groups import OutputPaths
from mmtrans.testing import FakeLLM
from tests.conftest import DATA

IEPILE = DATA / "iepile"
#: Lines of each IEPile train file (its item count).
TRAIN_LINES = {"NER/train.json": 6, "RE/train.json": 72, "EE/train.json": 96}


@pytest.fixture(scope="module")
def iepile_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """NER, RE and EE train files of IEPile, translated zh -> en into one store."""
    db = tmp_path_factory.mktemp("iepile") / "iepile.db"
    with FakeLLM() as llm:
        for name in TRAIN_LINES:
            result = mmtrans.translate(IEPILE / name, db, mmtrans.Settings(
                src="zh", tgt="en", base_url=llm.base_url, concurrency=4))
            assert result["accepted"] == TRAIN_LINES[name]
    return db


def export_cli(db: Path, kind: str, out: Path, *more: str) -> str:
    result = CliRunner().invoke(app, ["export", "--db", str(db), "--as", kind,
                                      "--out", str(out), *more])
    assert result.exit_code == 0, result.output
    return result.output


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_oiellm_export_of_same_named_files_keeps_every_line_in_its_own_file(
        iepile_db: Path, tmp_path: Path) -> None:
    output = export_cli(iepile_db, "oiellm", tmp_path / "oiellm")
    written = {str(p.relative_to(tmp_path / "oiellm")): len(lines(p))
               for p in (tmp_path / "oiellm").rglob("*.jsonl")}
    assert written == {"NER/train.en.jsonl": 6, "RE/train.en.jsonl": 72,
                       "EE/train.en.jsonl": 96}
    assert "RE/train.json (en): 72 line(s) in" in output
    tasks = {name: {item["input"].rsplit("/", 1)[1] for item in
                    lines(tmp_path / "oiellm" / name)} for name in written}
    assert tasks == {"NER/train.en.jsonl": {"NER"}, "RE/train.en.jsonl": {"Relation Extraction"},
                     "EE/train.en.jsonl": {"Event Extraction"}}


def test_iepile_instruction_export_writes_each_task_file_under_its_own_folder(
        iepile_db: Path, tmp_path: Path) -> None:
    export_cli(iepile_db, "iepile-instruction", tmp_path / "ie")
    found = {str(p.relative_to(tmp_path / "ie")): {item["task"] for item in lines(p)}
             for p in (tmp_path / "ie").rglob("*.jsonl")}
    assert found == {"NER/train.en.jsonl": {"NER"}, "RE/train.en.jsonl": {"RE"},
                     "EE/train.en.jsonl": {"EE"}}
    # every record of a file is asked about at least once
    for name, n in TRAIN_LINES.items():
        assert len(lines(tmp_path / "ie" / f"{output_stem(name, 'en')}.jsonl")) >= n


def test_hf_export_has_a_config_per_dataset_and_a_card_naming_each(iepile_db: Path,
                                                                   tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    export_cli(iepile_db, "hf", tmp_path / "hf")
    rows = {}
    for path in (tmp_path / "hf" / "data").glob("*/train.parquet"):
        table = pq.read_table(path)
        rows[path.parent.name] = (table.num_rows, set(table.column("dataset").to_pylist()))
    assert rows == {"NER_train_en": (6, {"NER/train.json"}), "RE_train_en": (72, {"RE/train.json"}),
                    "EE_train_en": (96, {"EE/train.json"})}
    card = (tmp_path / "hf" / "README.md").read_text(encoding="utf-8")
    for config, name in (("NER_train_en", "NER/train.json"), ("RE_train_en", "RE/train.json"),
                         ("EE_train_en", "EE/train.json")):
        assert f"| {config} | {name} | en | {TRAIN_LINES[name]} | 0 |" in card
    # IEPile's one LICENSE sits above NER/, RE/ and EE/: each dataset carries it
    assert (tmp_path / "hf" / "licenses" / "RE" / "train" / "LICENSE").read_bytes() == \
        (IEPILE / "LICENSE").read_bytes()


def test_stats_and_runs_name_each_dataset_by_its_path(iepile_db: Path) -> None:
    rows = {(r.dataset, r.language): (r.read, r.kept) for r in mmtrans.stats(iepile_db).rows}
    assert rows == {(name, "en"): (n, n) for name, n in TRAIN_LINES.items()}
    result = CliRunner().invoke(app, ["runs", "--db", str(iepile_db), "--json"])
    assert result.exit_code == 0, result.output
    assert sorted(r["dataset"] for r in json.loads(result.output)) == sorted(TRAIN_LINES)
    shown = CliRunner().invoke(app, ["runs", "--db", str(iepile_db)]).output
    assert [line.split()[1] for line in shown.splitlines() if line.startswith("dataset")] == \
        ["EE/train.json", "RE/train.json", "NER/train.json"]  # last used first


def test_review_server_gives_the_page_each_records_dataset(iepile_db: Path, serve) -> None:
    url = serve(iepile_db, spot_check=1.0)

    def get(path: str) -> dict:
        with urllib.request.urlopen(url + path, timeout=10) as response:
            return json.load(response)

    queue = get("/api/queue")
    assert sorted(queue["datasets"]) == sorted(TRAIN_LINES)
    entries = get("/api/queue?dataset=RE/train.json")["entries"]
    assert len(entries) == 72 and {e["dataset"] for e in entries} == {"RE/train.json"}
    first = entries[0]
    view = get(f"/api/record?run={first['run_id']}&id={first['id']}")
    assert view["dataset"] == "RE/train.json"


def test_one_input_is_named_by_its_file_name_and_a_uie_folder_by_its_sub_folders() -> None:
    one = DatasetNames.of([{"input_path": "/d/iepile/NER/train.json", "format": "iepile"}])
    assert one.run({"input_path": "/d/iepile/NER/train.json", "format": "iepile"}) == \
        "train.json"
    uie = {"input_path": "/d/uie", "format": "uie"}
    alone = DatasetNames.of([uie])
    assert alone.record(uie, "alpha/train.json:3") == "alpha"
    assert alone.reject(uie, "/d/uie/beta/dev.json") == "beta"
    beside = {"input_path": "/d/iepile/NER/train.json", "format": "iepile"}
    both = DatasetNames.of([uie, beside])
    assert both.record(uie, "alpha/train.json:3") == "uie/alpha"
    assert both.record(beside, "train.json:0") == "iepile/NER/train.json"
    assert output_stem("iepile/NER/train.json", "ja") == "iepile/NER/train.ja"


def test_two_datasets_never_share_an_output_file(tmp_path: Path) -> None:
    paths = OutputPaths()
    paths.claim(tmp_path / "a_b_en", "a/b.json")
    assert paths.claim(tmp_path / "a_b_en", "a/b.json") == tmp_path / "a_b_en"
    with pytest.raises(MmtransError, match="a/b.json and a_b.json would both be written"):
        paths.claim(tmp_path / "a_b_en", "a_b.json")


def test_the_issues_commands_keep_6_72_and_96_lines_with_the_scripted_server_process(
        tmp_path: Path) -> None:
    """The case as a user meets it: IEPile's three train files copied as IEPile lays them
    out, translated by the `mmtrans.testing serve` process (half the NER records flagged),
    exported by the `mmtrans` command in a process of its own."""
    import os
    import shutil
    import subprocess
    import sys

    data = tmp_path / "IEPile"
    for name in TRAIN_LINES:
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(IEPILE / name, data / name)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    server = subprocess.Popen([sys.executable, "-m", "mmtrans.testing", "serve", "--port", "0",
                               "--faults", "flag=0.5"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    db = tmp_path / "run.db"
    try:
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), server.stderr.read()
        for name in TRAIN_LINES:
            result = CliRunner().invoke(app, ["translate", str(data / name), "--src", "zh",
                                              "--tgt", "en", "--db", str(db), "--base-url", url,
                                              "--repair", "0"])
            assert result.exit_code == 0, result.output
    finally:
        server.kill()
        server.wait(10)
    out = tmp_path / "oiellm"
    done = subprocess.run([sys.executable, "-m", "mmtrans", "export", "--db", str(db),
                           "--as", "oiellm", "--out", str(out), "--include-flagged"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    written = {str(p.relative_to(out)): len(lines(p)) for p in out.rglob("*.jsonl")}
    assert written == {"NER/train.en.jsonl": 6, "RE/train.en.jsonl": 72, "EE/train.en.jsonl": 96}
    flagged = sum(r.flagged for r in mmtrans.stats(db).rows)
    assert flagged > 0  # the flagged ones are in the files too
