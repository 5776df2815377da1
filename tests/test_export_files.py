"""Export files as a user meets them: never over the run's input, never over a file without
--force, the umask's mode, through symlinks, and nothing partial left on any failure."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mmtrans
from mmtrans.cli import app
from mmtrans.errors import OutputError
from mmtrans.files import TMP_MARK, atomic_write, write_text, writing
from mmtrans.testing import FakeLLM

runner = CliRunner()


@pytest.fixture
def run_db(tmp_path: Path, sample) -> tuple[Path, Path]:
    """A store with one finished run of 4 stockmark records, and the run's input."""
    path = sample(4)
    db = tmp_path / "run.db"
    with FakeLLM() as llm:
        mmtrans.translate(path, db, mmtrans.Settings(src="ja", tgt="en", labels=["scnm"],
                                                     base_url=llm.base_url, model="m"))
    return db, path


def export(db: Path, out: Path, *extra: str):
    return runner.invoke(app, ["export", "--db", str(db), "--out", str(out), *extra])


def one_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    assert len(lines) == 1, result.output
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TMP_MARK in p.name)


def test_export_refuses_an_existing_file_without_force_and_replaces_it_with(run_db, tmp_path):
    db, _ = run_db
    out = tmp_path / "out.json"
    out.write_text("keep me", encoding="utf-8")
    refused = export(db, out)
    assert one_line(refused) == f"error: {out} exists; pass --force to replace it"
    assert out.read_text(encoding="utf-8") == "keep me"
    forced = export(db, out, "--force")
    assert forced.exit_code == 0, forced.output
    assert out.read_text(encoding="utf-8").startswith("[")


def test_export_never_replaces_the_runs_input_even_with_force(run_db, tmp_path):
    db, source = run_db
    before = source.read_bytes()
    for extra in ((), ("--force",)):
        refused = export(db, source, *extra)
        assert "is the run's input; it is never replaced" in one_line(refused)
    link = tmp_path / "link.json"
    link.symlink_to(source)  # the input named another way is still the input
    assert "is the run's input" in one_line(export(db, link, "--force"))
    assert source.read_bytes() == before


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_an_export_gets_the_mode_the_umask_gives(run_db, tmp_path, umask):
    db, _ = run_db
    old = os.umask(umask)
    try:
        mmtrans.export(db, tmp_path / "out.json")
    finally:
        os.umask(old)
    assert (tmp_path / "out.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_an_export_through_a_symlink_writes_its_target_and_the_link_stays(run_db, tmp_path):
    db, _ = run_db
    real = tmp_path / "real" / "out.json"
    real.parent.mkdir()
    real.write_text("old", encoding="utf-8")
    link = tmp_path / "out.json"
    link.symlink_to(real)
    assert export(db, link, "--force").exit_code == 0
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert real.read_text(encoding="utf-8").startswith("[")
    assert leftovers(tmp_path) == [] and leftovers(real.parent) == []


def test_a_failing_writer_leaves_the_target_as_it_was_and_no_temporary_file(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("before", encoding="utf-8")
    for error in (ValueError("a writer's bug"), KeyboardInterrupt()):
        with pytest.raises(type(error)), atomic_write(target) as f:
            f.write("half")
            raise error
        assert target.read_text(encoding="utf-8") == "before"
        assert leftovers(tmp_path) == []


def test_a_temporary_file_left_by_kill_9_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "out.json"
    # A real process that dies by SIGKILL inside atomic_write, as an export killed mid-way.
    code = ("import sys, time; from mmtrans.files import atomic_write\n"
            f"with atomic_write({str(target)!r}) as f:\n"
            "    f.write('half'); f.flush(); print('writing', flush=True); time.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert child.stdout.readline().strip() == "writing"
    alive = leftovers(tmp_path)
    assert len(alive) == 1 and alive[0].startswith(f".out.json{TMP_MARK}{child.pid}-")
    write_text(target, "other")  # its writer is alive: its file is not touched
    assert leftovers(tmp_path) == alive
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    assert leftovers(tmp_path) == alive  # kill -9 leaves it
    write_text(target, "whole")
    assert leftovers(tmp_path) == [] and target.read_text(encoding="utf-8") == "whole"


def test_out_naming_a_folder_is_one_line_and_exit_2(run_db, tmp_path):
    db, _ = run_db
    folder = tmp_path / "folder"
    folder.mkdir()
    assert one_line(export(db, folder, "--force")) == \
        f"error: {folder} is a folder; name a file to write"
    assert list(folder.iterdir()) == []


def test_a_read_only_folder_is_one_line_and_leaves_nothing(run_db, tmp_path):
    db, _ = run_db
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):  # root ignores mode bits: make it read-only for real
            with read_only_mount(folder):
                line = one_line(export(db, folder / "out.json"))
        else:
            line = one_line(export(db, folder / "out.json"))
    finally:
        folder.chmod(0o755)
    assert line.startswith(f"error: cannot write {folder / 'out.json'}: ")
    assert list(folder.iterdir()) == []


@contextlib.contextmanager
def read_only_mount(folder: Path) -> Iterator[None]:
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)],
                      capture_output=True).returncode:
        pytest.skip("needs root to mount a read-only tmpfs")
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "64k") -> Iterator[Path]:
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                      capture_output=True).returncode:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        yield folder
    finally:
        for _ in range(20):
            if subprocess.run(["umount", str(folder)]).returncode == 0:
                break
            time.sleep(0.1)


def test_a_full_disk_is_one_line_and_leaves_the_old_file_and_nothing_partial(tmp_path):
    with small_disk(tmp_path / "disk") as disk:
        target = disk / "out.json"
        target.write_text("before", encoding="utf-8")
        with pytest.raises(OutputError) as error, writing(force=True):
            write_text(target, "x" * 200_000)
        assert str(error.value) == f"cannot write {target}: No space left on device"
        assert target.read_text(encoding="utf-8") == "before"
        assert leftovers(disk) == []


def test_export_to_a_full_disk_exits_2_with_one_line(run_db, tmp_path):
    db, _ = run_db
    with small_disk(tmp_path / "disk", size="4k") as disk:
        (disk / "filler").write_bytes(b"x" * 4096 * 1)  # the disk holds nothing more
        line = one_line(export(db, disk / "out.json"))
        assert line == f"error: cannot write {disk / 'out.json'}: No space left on device"
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_export_says_why_records_were_not_exported(tmp_path, sample):
    from mmtrans.testing import good_translation

    path = sample(6)
    db = tmp_path / "run.db"
    import json

    from mmtrans.testing import Reply

    def script(payload, request):
        answer = good_translation(payload, "en")
        if payload.get("text", "").startswith(texts[1]):
            answer["entities"] = answer["entities"][1:]  # one mention lost: flagged
        if payload.get("text", "").startswith(texts[2]):
            return Reply(status=400)  # a request that always fails
        return Reply(json.dumps(answer, ensure_ascii=False))

    texts = [item["text"] for item in json.loads(path.read_text(encoding="utf-8"))]
    with FakeLLM(script) as llm:
        mmtrans.translate(path, db, mmtrans.Settings(
            src="ja", tgt="en", labels=["scnm"], base_url=llm.base_url, model="m", repair=0,
            max_attempts=1, limit=5))
    result = export(db, tmp_path / "out.json")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "3 record(s) written" in lines[0] and "3 not exported:" in lines[0]
    assert "1 flagged by the checks (review them, or pass --include-flagged)" in lines[1]
    assert "1 failed (run translate again to retry them)" in lines[2]
    assert "1 pending: not translated yet" in lines[3]


def test_training_exports_refuse_a_folder_that_holds_files(run_db, tmp_path):
    db, _ = run_db
    out = tmp_path / "train"
    first = runner.invoke(app, ["export", "--db", str(db), "--out", str(out), "--as", "oiellm"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["export", "--db", str(db), "--out", str(out), "--as", "oiellm"])
    assert one_line(again) == f"error: {out} exists and is not empty; pass --force to " \
                              "write into it"
    forced = runner.invoke(app, ["export", "--db", str(db), "--out", str(out), "--as",
                                 "oiellm", "--force"])
    assert forced.exit_code == 0, forced.output


def test_split_refuses_existing_outputs_without_force(tmp_path, sample):
    path = sample(6)
    args = ["split", str(path), "--train", "3"]
    assert runner.invoke(app, args).exit_code == 0
    train = path.with_name("ner.train.json")
    train.write_text("mine", encoding="utf-8")
    assert one_line(runner.invoke(app, args)) == \
        f"error: {train} exists; pass --force to replace it"
    assert train.read_text(encoding="utf-8") == "mine"
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0
    assert train.read_text(encoding="utf-8").startswith("[")


def test_stats_plot_and_labels_out_refuse_an_existing_file_without_force(run_db, tmp_path):
    db, source = run_db
    plot = tmp_path / "kept.png"
    plot.write_bytes(b"mine")
    refused = runner.invoke(app, ["stats", "--db", str(db), "--plot", str(plot)])
    assert refused.output.strip().splitlines()[-1] == \
        f"error: {plot} exists; pass --force to replace it" and refused.exit_code == 2
    assert plot.read_bytes() == b"mine"
    forced = runner.invoke(app, ["stats", "--db", str(db), "--plot", str(plot), "--force"])
    assert forced.exit_code == 0, forced.output
    assert plot.read_bytes().startswith(b"\x89PNG")
    labels = ["labels", "missing", str(source), "--src", "ja", "--tgt", "en"]
    assert "is the run's input" in one_line(runner.invoke(
        app, [*labels, "--out", str(source), "--force"]))


def test_training_export_out_naming_a_file_is_one_line(run_db, tmp_path):
    db, _ = run_db
    file = tmp_path / "a-file"
    file.write_text("mine", encoding="utf-8")
    result = runner.invoke(app, ["export", "--db", str(db), "--out", str(file), "--as",
                                 "oiellm", "--force"])
    assert one_line(result) == f"error: {file} is a file; this export writes a folder"
    assert file.read_text(encoding="utf-8") == "mine"


def test_nothing_inside_a_protected_folder_is_replaced(tmp_path):
    folder = tmp_path / "input"
    (folder / "train").mkdir(parents=True)
    with pytest.raises(OutputError, match="is inside the run's input folder"), \
            writing(force=True, protected=[folder]):
        write_text(folder / "train" / "x.json", "[]")
    assert list((folder / "train").iterdir()) == []
