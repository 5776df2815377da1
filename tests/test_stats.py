"""`mmtrans stats`: counts per dataset and language, kept %, problems; Markdown, JSON, PNG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mmtrans
from mmtrans.cli import app
from mmtrans.testing import FakeLLM
from tests.train_data import make_train_db


@pytest.fixture
def db(tmp_path: Path, stockmark_items) -> Path:
    return make_train_db(tmp_path, stockmark_items)


def test_stats_count_each_stage_of_a_run(db: Path) -> None:
    result = mmtrans.stats(db)
    assert len(result.rows) == 1
    row = result.rows[0]
    assert (row.dataset, row.language) == ("scnm.json", "en")
    assert (row.read, row.accepted, row.flagged, row.failed, row.pending) == (10, 8, 2, 0, 0)
    assert row.repaired == 1
    assert (row.review_accepted, row.review_edited, row.review_rejected) == (1, 0, 1)
    assert row.kept == 8 and row.kept_pct == 80.0
    assert row.problems == {"anchored": 1, "format": 1}


def test_stats_markdown_and_json_hold_the_same_figures(db: Path) -> None:
    result = mmtrans.stats(db)
    md = result.markdown()
    assert "| scnm.json | en | 10 | 8 | 2 | 0 | 0 | 1 | 1 | 0 | 1 | 8 | 80.0 |" in md
    assert "| anchored | 1 |" in md
    data = result.to_dict()
    assert data["total"]["kept"] == 8 and data["rows"][0]["problems"]["format"] == 1


def test_stats_plot_is_a_png_written_by_matplotlib(db: Path, tmp_path: Path) -> None:
    png = tmp_path / "plots" / "stats.png"
    mmtrans.stats_plot(mmtrans.stats(db), png)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"Matplotlib" in data[:200]  # the Software text chunk matplotlib writes
    assert len(data) > 10_000


def test_stats_command_prints_markdown_json_and_writes_the_plot(db: Path,
                                                               tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["stats", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"][0]["kept_pct"] == 80.0
    result = runner.invoke(app, ["stats", "--db", str(db), "--markdown"])
    assert result.stdout.startswith("| dataset | language |")
    png = tmp_path / "s.png"
    result = runner.invoke(app, ["stats", "--db", str(db), "--plot", str(png)])
    assert result.exit_code == 0 and png.read_bytes()[:4] == b"\x89PNG"
    assert "80.0" in result.stdout


def test_stats_of_an_unknown_run_or_database_is_one_line_exit_2(db: Path,
                                                                tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["stats", "--db", str(db), "--run", "nope"])
    assert result.exit_code == 2 and "nope" in result.output
    result = runner.invoke(app, ["stats", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 2 and "no such database" in result.output


def test_a_uie_folder_counts_each_sub_folder_as_a_dataset(tmp_path: Path) -> None:
    root = tmp_path / "in"
    for name, n in (("alpha", 2), ("beta", 1)):
        folder = root / name
        folder.mkdir(parents=True)
        items = [{"sentence": f"東京は日本の首都です。{i}",
                  "entities": [{"name": "東京", "type": "地名", "pos": [0, 2]}]}
                 for i in range(n)]
        (folder / "train.json").write_text(json.dumps(items, ensure_ascii=False),
                                           encoding="utf-8")
    table = tmp_path / "demo.ja-en.tsv"
    table.write_text("地名\tLocation\n", encoding="utf-8")
    db = tmp_path / "uie.db"
    with FakeLLM() as llm:
        mmtrans.translate(root, db, mmtrans.Settings(src="ja", tgt="en", labels=[str(table)],
                                                     base_url=llm.base_url))
    rows = {(r.dataset, r.language): (r.read, r.kept) for r in mmtrans.stats(db).rows}
    assert rows == {("alpha", "en"): (2, 2), ("beta", "en"): (1, 1)}
    written = mmtrans.export_oiellm(db, tmp_path / "oiellm")
    assert sorted(Path(w.path).name for w in written) == ["alpha.en.jsonl", "beta.en.jsonl"]
