"""The `mmtrans` command as a user types it."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mmtrans.cli import app

runner = CliRunner()

SOURCE = [
    ("安丹駅は、山形県鶴岡市安丹にあった、庄内交通湯野浜線の駅である。", "社会",
     [("施設名", "安丹駅"), ("地名", "山形県鶴岡市安丹"), ("法人名", "庄内交通"),
      ("施設名", "湯野浜線")]),
    ("松友美佐紀は、日本のバドミントン選手。", "社会", [("人名", "松友美佐紀"), ("地名", "日本")]),
    ("1964年4月、IBMはSystem/360を発表した。", "技術",
     [("法人名", "IBM"), ("製品名", "System/360")]),
]
GOOD = [
    ("Antan Station was a station of the Shonai Kotsu Yunohama Line in Antan, Tsuruoka, "
     "Yamagata Prefecture.", "Society",
     [("Facility Name", "Antan Station"), ("Location", "Antan, Tsuruoka, Yamagata Prefecture"),
      ("Corporation Name", "Shonai Kotsu"), ("Facility Name", "Yunohama Line")]),
    ("Misaki Matsutomo is a badminton player from Japan.", "Society",
     [("Person", "Misaki Matsutomo"), ("Location", "Japan")]),
    ("In April 1964, IBM announced the System/360.", "Technology",
     [("Corporation Name", "IBM"), ("Product Name", "System/360")]),
]


def mre_lines(rows) -> str:
    return "\n".join(json.dumps({
        "input": f"{text}/NER",
        "output": f"{label}/NER/" + "".join(f":{lab};{s}" for lab, s in pairs),
    }, ensure_ascii=False) for text, label, pairs in rows) + "\n"


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def check(*args: str):
    return runner.invoke(app, ["check", *args, "--src", "ja", "--tgt", "en", "--labels", "scnm",
                               "--json"])


def test_check_passes_good_hand_translations(tmp_path):
    source = write(tmp_path, "src.jsonl", mre_lines(SOURCE))
    target = write(tmp_path, "tgt.jsonl", mre_lines(GOOD))
    result = check(str(source), str(target))
    assert result.exit_code == 0, result.output
    verdicts = [json.loads(x) for x in result.stdout.splitlines()]
    assert [(v["line"], v["ok"]) for v in verdicts] == [(1, True), (2, True), (3, True)]


def test_check_names_each_defect_by_its_code(tmp_path):
    bad = [list(r) for r in GOOD]
    bad[0][0] = bad[0][0].replace("Antan Station", "安丹 Station")
    bad[0][2] = [("Facility Name", "安丹 Station")] + bad[0][2][1:]
    bad[1][2] = [("Person", "Misaki Matsutomo"), ("Location", "Nippon")]
    bad[2][1] = "Tech"
    source = write(tmp_path, "src.jsonl", mre_lines(SOURCE))
    target = write(tmp_path, "tgt.jsonl", mre_lines(bad) + "{oops\n")
    result = check(str(source), str(target))
    assert result.exit_code == 1
    verdicts = [json.loads(x) for x in result.stdout.splitlines()]
    codes = [[p["code"] for p in v["problems"]] for v in verdicts]
    assert codes == [["residual_source"], ["anchored"], ["label_changed"], ["format"]]
    assert verdicts[3]["line"] == 4 and verdicts[1]["id"] == "src.jsonl:1"


def test_check_without_json_prints_file_line_and_code(tmp_path):
    source = write(tmp_path, "src.jsonl", mre_lines(SOURCE))
    target = write(tmp_path, "tgt.jsonl", mre_lines(GOOD[:2]))
    result = runner.invoke(app, ["check", str(source), str(target), "--src", "ja", "--tgt", "en",
                                 "--labels", "scnm"])
    assert result.exit_code == 1
    assert "[format] no translated record" in result.stdout


def test_bad_input_exits_2_with_one_line(tmp_path):
    result = check(str(tmp_path / "missing.jsonl"), str(tmp_path / "x.jsonl"))
    assert result.exit_code == 2
    assert "missing.jsonl: no such file" in result.output
    assert "Traceback" not in result.output


def test_translate_without_key_or_base_url_exits_2_and_writes_nothing(tmp_path, sample):
    db = tmp_path / "run.db"
    result = runner.invoke(app, ["translate", str(sample(3)), "--src", "ja", "--tgt", "en",
                                 "--labels", "scnm", "--db", str(db)])
    assert result.exit_code == 2
    assert "OPENAI_API_KEY" in result.output and "--base-url" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not db.exists()


def test_the_progress_bar_is_updated_ten_times_a_second_at_most_and_at_the_last_record(
        tmp_path, sample, llm, monkeypatch):
    """It is drawn ten times a second: an update for every record was 1.5% of a packed
    run's CPU. The last record's update is never skipped: the bar ends at its total."""
    from rich.progress import Progress

    updates: list[int] = []
    update = Progress.update

    def counted(self, task_id, **fields):
        if "completed" in fields:
            updates.append(fields["completed"])
        return update(self, task_id, **fields)

    monkeypatch.setattr(Progress, "update", counted)
    result = runner.invoke(app, ["translate", str(sample(30)), "--src", "ja", "--tgt", "en",
                                 "--labels", "scnm", "--db", str(tmp_path / "run.db"),
                                 "--base-url", llm.base_url, "--concurrency", "1"])
    assert result.exit_code == 0, result.output
    assert updates[-1] == 30
    assert len(updates) < 15  # 30 records in well under 1.5 s


def test_translate_status_export_from_the_command_line(tmp_path, sample, llm):
    db, out = tmp_path / "run.db", tmp_path / "scnm.en.json"
    result = runner.invoke(app, ["translate", str(sample(4)), "--src", "ja", "--tgt", "en",
                                 "--labels", "scnm", "--db", str(db), "--base-url", llm.base_url,
                                 "--limit", "3"])
    assert result.exit_code == 0, result.output
    assert "3 translated (3 accepted, 0 flagged, 0 failed)" in result.output
    status = runner.invoke(app, ["status", "--db", str(db), "--json"])
    summary = json.loads(status.stdout)
    assert {k: summary[k] for k in ("records", "accepted", "flagged", "failed", "pending",
                                    "requests", "tokens_in", "tokens_out")} == {
        "records": 4, "accepted": 3, "flagged": 0, "failed": 0, "pending": 1, "requests": 3,
        "tokens_in": 300, "tokens_out": 60}
    assert runner.invoke(app, ["status", "--db", str(db)]).exit_code == 0
    exported = runner.invoke(app, ["export", "--db", str(db), "--out", str(out),
                                   "--format", "mre"])
    assert exported.exit_code == 0 and "3 record(s) written" in exported.output
    assert len(json.loads(out.read_text())) == 3


def test_translate_names_each_unreadable_line(tmp_path, llm):
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps({"input": "日本の首都。/NER", "output": "社会/NER/:地名;日本"},
                               ensure_ascii=False) + "\n{broken\n", encoding="utf-8")
    result = runner.invoke(app, ["translate", str(path), "--src", "ja", "--tgt", "en",
                                 "--db", str(tmp_path / "run.db"), "--base-url", llm.base_url])
    assert result.exit_code == 0, result.output
    assert f"unreadable: {path}:2: item 1: not JSON" in " ".join(result.output.split())


def test_the_cli_module_runs_as_a_program_like_the_package():
    """`python -m mmtrans.cli` is what a reader of cli.py tries first; it must not be silent."""
    import subprocess
    import sys

    for module in ("mmtrans", "mmtrans.cli"):
        shown = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                               text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        assert "translate" in shown.stdout, module


def test_brackets_in_a_path_or_a_note_are_printed_as_they_are(tmp_path, monkeypatch):
    """Rich read `[en]` as markup: `train[en].jsonl` was printed `train.jsonl`, and the note that
    fidelity was not checked told users to `pip install 'mmtrans'` (the extra's name gone)."""
    result = check(str(tmp_path / "train[en].jsonl"), str(tmp_path / "x.jsonl"))
    assert result.exit_code == 2
    assert "train[en].jsonl: no such file" in result.output

    from mmtrans import fidelity

    monkeypatch.setenv("MMTRANS_FIDELITY", "on")
    monkeypatch.setattr(fidelity, "default_embedder", lambda *a, **k: None)  # no extra
    source = write(tmp_path, "src.jsonl", mre_lines(SOURCE))
    target = write(tmp_path, "en.jsonl", mre_lines(GOOD))
    noted = check(str(source), str(target))
    assert "pip install 'mmtrans[fidelity]'" in " ".join(noted.output.split())
