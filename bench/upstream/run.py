"""Every data file the upstream datasets ship, through a round trip and a translate-export.

For each file given (or found under a folder given; a folder holding `labels.json` is one
InstructUIE/B2NERD dataset): read it, write it back untranslated in its own format and compare
the JSON values with the original (the round trip); then `mmtrans translate` it with
`--base-url` to the scripted server of `mmtrans.testing` on 127.0.0.1 and `mmtrans export` it
in its own format, and read the export back. One line per file:

    format  items  records  rejects  round trip  accepted/flagged/failed  exported  file

followed by what failed: reader rejects (their reasons, counted), the first round-trip
difference (it compares the items that were read, rejects left out), the translate or export
error, key paths the export lost or gained, source script (Han, kana) left in an export. The
data stays where it is given (none of it is in the repository beyond tests/data); e.g. the
upstream repositories' files extracted to /tmp/upstream:

    python bench/upstream/run.py /tmp/upstream
    python bench/upstream/run.py /tmp/upstream/iepile/KG/train.json --src zh --tgt en
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmtrans import formats
from mmtrans.errors import MmtransError
from mmtrans.formats import Reject
from mmtrans.labels import pair_tables, read_table, table_path
from mmtrans.records import Record
from mmtrans.testing import FakeLLM, translating

KANA = re.compile(r"[\u3040-\u30ff]")
HAN = re.compile(r"[\u4e00-\u9fff]")


@dataclass
class Outcome:
    """What became of one file."""

    path: Path
    fmt: str = "-"
    items: int | str = "-"
    records: int | str = "-"
    rejects: int | str = "-"
    round_trip: str = "-"
    translated: str = "-"  # accepted/flagged/failed
    exported: str = "-"
    notes: list[str] = field(default_factory=list)


def dataset_paths(given: list[Path]) -> list[Path]:
    """The files (and InstructUIE dataset folders) under the paths given, sorted."""
    found: list[Path] = []
    for path in given:
        if path.is_file():
            found.append(path)
            continue
        for folder, dirs, files in os.walk(path):
            here = Path(folder)
            if "labels.json" in files:  # an InstructUIE / B2NERD dataset: read as one
                found.append(here)
                dirs.clear()
                continue
            found.extend(here / f for f in files if f.endswith((".json", ".jsonl")))
    return sorted(found)


def json_values(path: Path) -> list[Any]:
    """The file's items: a JSON array's elements, or one value per non-blank line."""
    text = path.read_text(encoding="utf-8")
    try:
        value = json.loads(text)
        return value if isinstance(value, list) else [value]
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.split("\n") if line.strip()]


def is_json_lines(path: Path) -> bool:
    with path.open("rb") as f:
        return not f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"[")


def count_items(path: Path) -> int | str:
    if path.is_dir():
        return sum(len(json_values(f)) for f in path.glob("*.json") if f.name != "labels.json")
    try:
        return len(json_values(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return f"unparsable ({type(e).__name__})"


def first_difference(a: Any, b: Any, where: str = "") -> str | None:
    """Where two JSON values first differ, as a path and both sides (short)."""
    if type(a) is not type(b):
        return f"{where or '/'}: {short(a)} -> {short(b)}"
    if isinstance(a, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key not in b:
                return f"{where}/{key}: dropped ({short(a[key])})"
            if key not in a:
                return f"{where}/{key}: added ({short(b[key])})"
            found = first_difference(a[key], b[key], f"{where}/{key}")
            if found:
                return found
        if list(a) != list(b):
            return f"{where or '/'}: keys reordered {list(a)} -> {list(b)}"
        return None
    if isinstance(a, list):
        for i, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f"{where}[{i}]")
            if found:
                return found
        if len(a) != len(b):
            return f"{where or '/'}: {len(a)} elements -> {len(b)}"
        return None
    return None if a == b else f"{where or '/'}: {short(a)} -> {short(b)}"


def short(value: Any, width: int = 70) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 3] + "..."


def compare_values(original: list[Any], written: list[Any]) -> tuple[str, str | None]:
    """"equal", or how many items differ and the first difference."""
    if len(original) != len(written):
        diff = first_difference(original, written)
        return f"{len(original)} items -> {len(written)}", diff
    differing = [i for i, (a, b) in enumerate(zip(original, written)) if a != b]
    if not differing:
        return "equal", None
    i = differing[0]
    return (f"{len(differing)}/{len(original)} differ",
            f"item {i}: {first_difference(original[i], written[i])}")


def key_paths(value: Any, where: str = "") -> set[str]:
    """Every key path in a JSON value (`/entity[]/entity_type`): its shape, not its text."""
    if isinstance(value, dict):
        return {where + "/" + k for k in value} | {
            p for k, v in value.items() for p in key_paths(v, f"{where}/{k}")}
    if isinstance(value, list):
        return {p for v in value for p in key_paths(v, where + "[]")}
    return set()


def shape_change(original: list[Any], exported: list[Any]) -> str | None:
    """Key paths the export lost or gained against the original file, None if the same."""
    before = {p for v in original for p in key_paths(v)}
    after = {p for v in exported for p in key_paths(v)}
    if before == after:
        return None
    lost, gained = sorted(before - after), sorted(after - before)
    return "; ".join(part for part in (
        f"lost {', '.join(lost[:4])}" if lost else "",
        f"gained {', '.join(gained[:4])}" if gained else "") if part)


def strings_at(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """(key path, string) for every string in a JSON value; JSON held in a string (IEPile's
    instruction and output) is opened."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from strings_at(v, f"{where}/{k}")
    elif isinstance(value, list):
        for v in value:
            yield from strings_at(v, where + "[]")
    elif isinstance(value, str):
        if value[:1] in "{[":
            try:
                yield from strings_at(json.loads(value), where + ":json")
                return
            except json.JSONDecodeError:
                pass
        yield where, value


def source_script_left(exported: list[Any]) -> str | None:
    """Han or kana left in a translation out of Chinese or Japanese: the key paths holding
    it (most items first) and one example, None when there is none."""
    paths: collections.Counter[str] = collections.Counter()
    example = ""
    for item in exported:
        for where, text in strings_at(item):
            if HAN.search(text) or KANA.search(text):
                paths[where] += 1
                example = example or f"{where} = {short(text, 40)}"
    if not paths:
        return None
    return ", ".join(f"{p} ({n}x)" for p, n in paths.most_common(3)) + f"; e.g. {example}"


def label_file(path: Path) -> list[str] | None:
    """The labels of an IEPile label file (`schema.json`: [types], [roles or relations],
    {type: roles}; SPO and KG types are "subject_predicate_object"; `hard_negative/`: {label:
    [labels]}, by task and dataset in hard_dict.json), None for any other file."""
    try:
        lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()
                 if x.strip()]
    except (json.JSONDecodeError, UnicodeDecodeError):
        lines = []
    if path.name == "schema.json" and len(lines) == 3 and isinstance(lines[2], dict):
        labels: list[str] = []
        for x in lines[0]:
            parts = x.split("_") if path.parent.name in ("SPO", "KG") else [x]
            labels += [parts[0], "_".join(parts[1:-1]), parts[-1]] if len(parts) > 2 else parts
        return labels + lines[1] + [y for k, v in lines[2].items() for y in (k, *v)]
    if "hard_negative" in path.parts:
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return None
        found = [s for _, s in strings_at(value) if s] + list(_keys(value))
        return [p for x in found for p in (x.split("_") if x.count("_") >= 2 else [x])]
    return None


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _keys(v)


def uncovered(labels: list[str], src: str, tgt: str) -> list[str]:
    """The labels no shipped table of the pair knows."""
    known: set[str] = set()
    for name in pair_tables(src, tgt):
        known |= read_table(table_path(name, src, tgt)).keys()
    return sorted({x for x in labels if x not in known})


def read_all(path: Path, fmt: str) -> tuple[list[Record], list[Reject]]:
    records: list[Record] = []
    rejects: list[Reject] = []
    for item in formats.read(path, fmt):
        (records if isinstance(item, Record) else rejects).append(item)
    return records, rejects


def reject_reasons(rejects: list[Reject], shown: int = 3) -> list[str]:
    """The rejects' reasons, counted, most common first (line numbers left out)."""
    counted = collections.Counter(r.message for r in rejects)
    return [f"reject x{n}: {reason[:160]}" for reason, n in counted.most_common(shown)]


def languages(records: list[Record]) -> tuple[str, str]:
    """(src, tgt) judged from the texts: kana is Japanese, Han without kana Chinese."""
    sample = "".join(r.text for r in records[:50])
    src = "ja" if KANA.search(sample) else "zh" if HAN.search(sample) else "en"
    return src, "ja" if src == "en" else "en"


def mmtrans_command(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmtrans", *args], capture_output=True,
                          text=True, timeout=timeout,
                          env={**os.environ, "OPENAI_API_KEY": "scripted"})


def last_line(process: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in (process.stdout + process.stderr).splitlines()
             if line.strip()]
    errors = [line for line in lines if line.startswith("error")]
    if "Traceback" in process.stderr:
        return "TRACEBACK: " + (lines[-1] if lines else "")
    return (errors or lines or ["(no output)"])[-1][:200]


def fill_missing_labels(path: Path, src: str, tgt: str, out: Path) -> Path:
    """`mmtrans labels missing`'s TSV with a placeholder translation on every line."""
    listed = mmtrans_command("labels", "missing", str(path), "--src", src, "--tgt", tgt)
    lines = [line.rstrip("\t") for line in listed.stdout.splitlines()
             if line.strip() and not line.startswith("#")]
    out.write_text("".join(f"{label}\tlabel{i}\n" for i, label in enumerate(lines, 1)),
                   encoding="utf-8")
    return out


def translate_export(path: Path, fmt: str, src: str, tgt: str, work: Path,
                     outcome: Outcome) -> None:
    """translate against the scripted server, export in `fmt`, read the export back."""
    db = work / "run.db"
    suffix = ".jsonl" if path.suffix == ".jsonl" else ".json"
    out = work / ("export" if fmt == "uie" else f"export{suffix}")
    command = ["translate", str(path), "--src", src, "--tgt", tgt, "--db", str(db),
               "--model", "scripted", "--repair", "0", "--concurrency", "16", "--format", fmt]
    with FakeLLM(translating(tgt)) as llm:
        run = mmtrans_command(*command, "--base-url", llm.base_url)
        table = re.search(r"Add them to (\S+\.tsv)", run.stdout + run.stderr)
        if run.returncode == 2 and table:
            # No table has these labels: say so, and go on with placeholders, so that the
            # translation and the export are tried all the same.
            outcome.notes.append(f"labels: {last_line(run)[:150]}")
            filled = fill_missing_labels(path, src, tgt, work / "placeholders.tsv")
            run = mmtrans_command(*command, "--base-url", llm.base_url, "--labels",
                                  table.group(1), "--labels", str(filled))
            outcome.notes.append("labels: the missing ones given placeholders (label1, ...)")
        sent = len(llm.requests)
    if run.returncode not in (0, 1):  # 1: some records flagged or failed, still exportable
        outcome.exported = f"translate exit {run.returncode}"
        outcome.notes.append(f"translate: {last_line(run)}")
        return
    said = run.stdout + run.stderr  # the CLI's progress and summary go to stderr
    counts = re.search(r"\((\d+) accepted, (\d+) flagged, (\d+) failed\)", said)
    outcome.translated = "{}/{}/{}".format(*counts.groups()) if counts else "?"
    if not counts:
        outcome.notes.append(f"translate ({sent} requests): {last_line(run)}")
    export = mmtrans_command("export", "--db", str(db), "--out", str(out), "--format", fmt,
                             "--include-flagged")
    if export.returncode != 0:
        outcome.exported = f"export exit {export.returncode}"
        outcome.notes.append(f"export: {last_line(export)}")
        return
    written = re.search(r"(\d+) record\(s\) written", export.stdout + export.stderr)
    try:
        back, back_rejects = read_all(out, fmt)
    except MmtransError as e:
        outcome.exported = f"{written.group(1) if written else '?'}, unreadable"
        outcome.notes.append(f"export read back: {e}")
        return
    outcome.exported = f"{written.group(1) if written else '?'} (reads {len(back)}" + \
        (f", {len(back_rejects)} rejects)" if back_rejects else ")")
    outcome.notes.extend(f"export {r}" for r in reject_reasons(back_rejects, 2))
    if src in ("zh", "ja"):
        left = source_script_left(json_values(out) if out.is_file() else [])
        if left:
            outcome.exported += " src!"
            outcome.notes.append(f"export keeps {src} script: {left}")
    if path.is_file():
        change = shape_change(json_values(path), json_values(out))
        if change:
            outcome.exported += " shape!"
            outcome.notes.append(f"export shape: {change}")


def run_one(path: Path, src: str | None, tgt: str | None, translate: bool) -> Outcome:
    outcome = Outcome(path)
    labels = label_file(path) if path.is_file() else None
    if labels is not None:
        outcome.fmt, outcome.items = "labels", len(set(labels))
        if path.name != "schema.json":
            labels = [x for x in labels if HAN.search(x)]  # hard_dict also holds English sets
        pair = (src or "zh", tgt or "en")
        missing = uncovered(labels, *pair)
        outcome.round_trip = f"{len(missing)} uncovered"
        if missing:
            outcome.notes.append(f"labels no {pair[0]}-{pair[1]} table covers: "
                                 f"{', '.join(missing[:12])}{' ...' if len(missing) > 12 else ''}")
        return outcome
    outcome.items = count_items(path)
    try:
        outcome.fmt = formats.detect(path)
        records, rejects = read_all(path, outcome.fmt)
    except MmtransError as e:
        outcome.fmt = "?"
        outcome.notes.append(f"read: {e}")
        return outcome
    except Exception as e:  # a reader crash is a finding, not the end of the run
        outcome.notes.append(f"read CRASH: {type(e).__name__}: {e}")
        return outcome
    outcome.records, outcome.rejects = len(records), len(rejects)
    outcome.notes.extend(reject_reasons(rejects))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not records:
            outcome.round_trip = "(none read)"
        elif path.is_file():
            back = work / f"back{'.jsonl' if path.suffix == '.jsonl' else '.json'}"
            try:
                formats.write(records, back, outcome.fmt)
                rejected = {r.index for r in rejects}  # compared: the items that were read
                kept = [v for i, v in enumerate(json_values(path)) if i not in rejected]
                outcome.round_trip, diff = compare_values(kept, json_values(back))
                if diff:
                    outcome.notes.append(f"round trip: {diff}")
                if not rejects and outcome.round_trip == "equal" and is_json_lines(path):
                    lines = work / "back.jsonl"
                    formats.write(records, lines, outcome.fmt)
                    original, written = path.read_bytes(), lines.read_bytes()
                    if written in (original, original + b"\n"):
                        outcome.round_trip = "bytes equal"
            except Exception as e:
                outcome.round_trip = "write failed"
                outcome.notes.append(f"round trip: {type(e).__name__}: {e}")
        else:
            outcome.round_trip = "(folder)"
        if translate and records:
            pair = (src, tgt) if src and tgt else languages(records)
            translate_export(path, outcome.fmt, pair[0], pair[1], work, outcome)
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="files or folders of them")
    parser.add_argument("--git", action="append", default=[], metavar="DIR:PATH",
                        help="a git directory and a folder in it, read at HEAD (repeatable)")
    parser.add_argument("--src", help="source language (default: judged from the texts)")
    parser.add_argument("--tgt", help="target language (default: en, or ja for English)")
    parser.add_argument("--no-translate", action="store_true", help="round trips only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        given = list(args.paths) + [checkout(spec, Path(tmp) / str(i))
                                    for i, spec in enumerate(args.git)]
        if not given:
            parser.error("give paths or --git DIR:PATH")
        run_all(dataset_paths(given), args)


def checkout(spec: str, into: Path) -> Path:
    """`DIR:PATH` of a git directory (no work tree needed) extracted at HEAD under `into`,
    named after the repository (`zjunlp+IEPile` -> into/zjunlp+IEPile/PATH)."""
    git_dir, _, folder = spec.partition(":")
    name = Path(git_dir).resolve().parent.name if Path(git_dir).name == "repo" else \
        Path(git_dir).name
    target = into / name
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "--git-dir", git_dir, "archive", "HEAD", "--", folder],
                             capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    head = subprocess.run(["git", "--git-dir", git_dir, "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    print(f"{name} @ {head}: {folder}")
    return target


def run_all(paths: list[Path], args: argparse.Namespace) -> None:
    common = os.path.commonpath([str(p) for p in paths]) if len(paths) > 1 else ""
    started = time.monotonic()
    print(f"{len(paths)} file(s); load {os.getloadavg()[0]:.1f}")
    print(f"{'format':<18} {'items':>6} {'records':>7} {'rejects':>7}  {'round trip':<16} "
          f"{'acc/flag/fail':<13} {'exported':<18} file")
    outcomes = []
    for path in paths:
        outcome = run_one(path, args.src, args.tgt, not args.no_translate)
        outcomes.append(outcome)
        name = str(path)[len(common):].lstrip("/") if common else str(path)
        print(f"{outcome.fmt:<18} {outcome.items!s:>6} {outcome.records!s:>7} "
              f"{outcome.rejects!s:>7}  {outcome.round_trip:<16} {outcome.translated:<13} "
              f"{outcome.exported:<18} {name}",
              flush=True)
        for note in outcome.notes:
            print(f"{'':<18} {note}", flush=True)
    records = [o for o in outcomes if o.fmt != "labels"]
    equal = sum(o.round_trip in ("equal", "bytes equal") for o in records)
    same = sum(o.round_trip == "bytes equal" for o in records)
    print(f"{len(records)} record file(s): {equal} round trips equal ({same} byte for byte); "
          f"{sum(o.fmt == '?' for o in outcomes)} unreadable; "
          f"{sum(isinstance(o.rejects, int) and o.rejects > 0 for o in records)} with rejects; "
          f"{len(outcomes) - len(records)} label file(s); "
          f"{time.monotonic() - started:.0f} s; load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
