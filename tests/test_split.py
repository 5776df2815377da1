"""`mmtrans split`: train/test files of the asked size, reproducible by seed, texts kept whole."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import mmtrans
from mmtrans.cli import app
from tests.conftest import DATA


def test_split_is_reproducible_by_seed_and_loses_nothing(sample, tmp_path: Path) -> None:
    path = sample(20)
    first = mmtrans.split(path, train=12, seed=0, out_dir=tmp_path / "a")
    again = mmtrans.split(path, train=12, seed=0, out_dir=tmp_path / "b")
    other = mmtrans.split(path, train=12, seed=1, out_dir=tmp_path / "c")
    assert (first.train, first.test) == (12, 8)
    train = json.loads(Path(first.train_path).read_text(encoding="utf-8"))
    test = json.loads(Path(first.test_path).read_text(encoding="utf-8"))
    assert Path(first.train_path).name == "ner.train.json"
    assert train == json.loads(Path(again.train_path).read_text(encoding="utf-8"))
    assert train != json.loads(Path(other.train_path).read_text(encoding="utf-8"))
    source = json.loads(path.read_text(encoding="utf-8"))
    key = lambda item: json.dumps(item, ensure_ascii=False, sort_keys=True)  # noqa: E731
    assert sorted(map(key, train + test)) == sorted(map(key, source))  # same items, as read


def test_split_keeps_every_schema_batch_of_a_text_on_one_side(tmp_path: Path) -> None:
    path = DATA / "iepile" / "RE" / "train.json"  # 72 lines: 6 texts x 12 schema batches
    result = mmtrans.split(path, train=20, seed=3, out_dir=tmp_path)
    assert (result.train, result.test) == (24, 48)  # whole texts: 2 x 12, then the rest

    def texts(p: str) -> set[str]:
        return {json.loads(json.loads(line)["instruction"])["input"]
                for line in Path(p).read_text(encoding="utf-8").splitlines()}

    assert len(texts(result.train_path)) == 2 and len(texts(result.test_path)) == 4
    assert not texts(result.train_path) & texts(result.test_path)
    lines = [line for p in (result.train_path, result.test_path)
             for line in Path(p).read_text(encoding="utf-8").splitlines()]
    source = path.read_text(encoding="utf-8").splitlines()
    assert sorted(map(json.loads, lines), key=str) == sorted(map(json.loads, source), key=str)


def test_split_command_takes_sizes_per_dataset(sample, tmp_path: Path,
                                               stockmark_items) -> None:
    a = sample(12)
    b = tmp_path / "other.json"
    b.write_text(json.dumps([stockmark_items[i] for i in range(12, 20)], ensure_ascii=False),
                 encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["split", str(a), str(b), "--train", "10", "--train",
                                 "other.json=5", "--seed", "7", "--out-dir", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert len(json.loads((tmp_path / "o" / "ner.train.json").read_text())) == 10
    assert len(json.loads((tmp_path / "o" / "other.train.json").read_text())) == 5
    assert len(json.loads((tmp_path / "o" / "other.test.json").read_text())) == 3
    result = runner.invoke(app, ["split", str(a), str(b), "--train", "other=5"])
    assert result.exit_code == 2 and "no train size" in result.output
    result = runner.invoke(app, ["split", str(a), "--train", "ten"])
    assert result.exit_code == 2 and "expected N or NAME=N" in result.output
