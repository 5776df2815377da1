"""A Hugging Face dataset directory: Parquet splits per dataset and language, and a dataset
card that `datasets.load_dataset(DIR)` reads.

    DIR/README.md                               card: YAML configs, languages, sizes,
                                                statistics, model and prompt, licenses
    DIR/data/<dataset>_<lang>/train.parquet     (and test.parquet when a train size is given;
                                                `NER/train.json` in English: NER_train_en)
    DIR/licenses/<dataset>/<LICENSE file>       carried from beside the input (or the nearest
                                                folder above it, up to the inputs' common one)

The default config holds every dataset and language; each also has a config of its own.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import MmtransError
from .files import atomic_write, write_text
from .groups import Group, OutputPaths, dataset_names, kept_groups, open_store
from .oiellm import Written
from .oiellm import to_item as oiellm_item
from .records import Record, locate_mentions
from .split import size_for, split_records
from .stats import stats
from .unplaced import unplaced

#: `unplaced`: flagged records (--include-flagged) with a mention that has no place in the
#: text, kept out of train and test; their `mentions` hold only the placed ones.
SPLITS = ("train", "test", "unplaced")


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise MmtransError("the hf export needs pyarrow: pip install 'mmtrans[train]'") from None
    return pyarrow


def schema() -> Any:
    pa = _pyarrow()
    mention = pa.struct([("label", pa.string()), ("text", pa.string()),
                         ("start", pa.int64()), ("end", pa.int64())])
    relation = pa.struct([("head", pa.string()), ("relation", pa.string()),
                          ("tail", pa.string())])
    argument = pa.struct([("role", pa.string()), ("text", pa.string())])
    missing = pa.struct([("where", pa.string()), ("label", pa.string()), ("text", pa.string())])
    event = pa.struct([("type", pa.string()), ("trigger", pa.string()),
                       ("arguments", pa.list_(argument))])
    return pa.schema([
        ("id", pa.string()), ("dataset", pa.string()), ("language", pa.string()),
        ("task", pa.string()), ("text", pa.string()), ("label", pa.string()),
        ("mentions", pa.list_(mention)), ("relations", pa.list_(relation)),
        ("events", pa.list_(event)), ("input", pa.string()), ("output", pa.string()),
        ("unplaced", pa.list_(missing)),
    ])


def row(record: Record, group: Group) -> dict[str, Any]:
    """One dataset row: every offset an integer (a mention with no place in the text is
    listed in `unplaced` instead)."""
    item = oiellm_item(record)
    return {
        "id": record.id, "dataset": group.dataset, "language": group.language,
        "task": record.task, "text": record.text, "label": record.label,
        "mentions": [asdict(m) for m in locate_mentions(record).mentions
                     if m.start is not None],
        "relations": [{"head": r.head, "relation": r.relation, "tail": r.tail}
                      for r in record.relations],
        "events": [{"type": e.type, "trigger": e.trigger,
                    "arguments": [asdict(a) for a in e.arguments]} for e in record.events],
        "input": item["input"], "output": item["output"],
        "unplaced": [{"label": None, **u} for u in unplaced(record)],
    }


def config_name(group: Group) -> str:
    """`NER_train_en` for `NER/train.json` in English: the dataset's path without its suffix,
    and the language (a config name is one word)."""
    return group.name.replace("/", "_").replace(".", "_")


def _license_files(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.glob("*")) if p.is_file()
            and p.name.upper().startswith(("LICENSE", "LICENCE", "COPYING"))]


def license_folder(input_path: Path, root: str | None) -> Path:
    """The folder nearest the input, from the input's own up to the inputs' common folder,
    that holds a license (IEPile keeps one LICENSE above `NER/`, `RE/` and `EE/`)."""
    folder = input_path if input_path.is_dir() else input_path.parent
    top = Path(root) if root is not None else folder
    candidate = folder
    while not _license_files(candidate) and candidate != top and top in candidate.parents:
        candidate = candidate.parent
    return candidate if _license_files(candidate) else folder


def licenses(group: Group, out_dir: Path, root: str | None = None) -> list[str]:
    """Copy the LICENSE-like files of the run's input (see `license_folder`) into the card's
    folder, under the dataset's own path."""
    folder = license_folder(Path(group.run["input_path"]), root)
    copied = []
    below = str(PurePosixPath(group.dataset).with_suffix(""))
    for path in _license_files(folder):
        target = out_dir / "licenses" / below / path.name
        with path.open("rb") as source_file, atomic_write(target, binary=True) as f:
            shutil.copyfileobj(source_file, f)
        copied.append(str(target.relative_to(out_dir)))
    return copied


def card(groups: list[tuple[Group, dict[str, int]]], stats_table: str,
         license_files: dict[str, list[str]]) -> str:
    languages = sorted({g.language for g, _ in groups})
    configs = [{"config_name": "default", "default": True, "data_files": [
        {"split": s, "path": f"data/*/{s}.parquet"} for s in SPLITS
        if any(sizes.get(s) is not None for _, sizes in groups)]}]
    for g, sizes in groups:
        configs.append({"config_name": config_name(g), "data_files": [
            {"split": s, "path": f"data/{config_name(g)}/{s}.parquet"} for s in SPLITS
            if sizes.get(s) is not None]})
    header = {"language": languages, "license": "other", "configs": configs,
              "pretty_name": "mmtrans translated IE datasets"}
    lines = ["---", *_yaml(header), "---", "",
             "# Translated information-extraction datasets", "",
             "Made with mmtrans: labels translated by rule tables, text and annotated strings by "
             "the model below, every annotated string checked to occur in the translated text.",
             "", "## Datasets and sizes", "", "| config | dataset | language | train | test |",
             "|---|---|---|---|---|"]
    for g, sizes in groups:
        lines.append(f"| {config_name(g)} | {g.dataset} | {g.language} | "
                     f"{sizes.get('train', 0)} | {sizes.get('test') or 0} |")
    aside = [(g, sizes["unplaced"]) for g, sizes in groups if sizes.get("unplaced")]
    if aside:
        lines += ["", "Kept out of train and test, in the split `unplaced`: flagged records with "
                  "a mention that does not occur in the translated text (listed in the column "
                  "`unplaced`, with no offsets): " + ", ".join(
                      f"{g.dataset} ({g.language}) {n}" for g, n in aside) + "."]
    lines += ["", "## Model and prompt", "", "| dataset | language | model | endpoint | prompt | "
              "strategy | parameters |", "|---|---|---|---|---|---|---|"]
    for g, _ in groups:
        run = g.run
        lines.append(f"| {g.dataset} | {g.language} | {run['model']} | {run['base_url'] or ''} |"
                     f" {run['prompt_name']} v{run['prompt_version']} | {run['strategy']} | "
                     f"`{run['params']}` |")
    lines += ["", "## Statistics", "", stats_table.rstrip(), "", "## Licenses", ""]
    for g, _ in groups:
        files = license_files.get(g.dataset) or []
        listed = ", ".join(f"[{Path(f).name}]({f})" for f in files) or \
            "none found beside the input: check the source dataset's terms"
        lines.append(f"- {g.dataset}: {listed}")
    return "\n".join(lines) + "\n"


def _yaml(value: Any, indent: int = 0) -> list[str]:
    """The little YAML a card header needs (JSON scalars are valid YAML)."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{k}:")
                lines += _yaml(v, indent + 2)
            else:
                lines.append(f"{pad}{k}: {json.dumps(v, ensure_ascii=False)}")
    else:
        for v in value:
            if isinstance(v, dict):
                inner = _yaml(v, indent + 2)
                lines.append(f"{pad}- {inner[0].lstrip()}")
                lines += inner[1:]
            else:
                lines.append(f"{pad}- {json.dumps(v, ensure_ascii=False)}")
    return lines


def export_hf(db_path: str | Path, out_dir: str | Path, run_id: str | None = None,
              include_flagged: bool = False,
              sizes: tuple[int | None, dict[str, int]] = (None, {}),
              seed: int = 0) -> list[Written]:
    """Write the kept records as a Hugging Face dataset directory. With a train size (N for
    every dataset, or per dataset name) each dataset is split as `mmtrans split` does;
    without one, everything is the train split."""
    pa = _pyarrow()
    out = Path(out_dir)
    written: list[Written] = []
    groups: list[tuple[Group, dict[str, int]]] = []
    license_files: dict[str, list[str]] = {}
    default, named = sizes
    paths = OutputPaths()
    with open_store(db_path) as store:
        root = dataset_names(store).root
        for group in kept_groups(store, run_id, include_flagged):
            placed = [r for r in group.records if not unplaced(r)]
            aside = [r for r in group.records if unplaced(r)]
            if default is None and not named:
                parts: dict[str, list[Record]] = {"train": placed}
            else:
                train, test = split_records(placed, size_for(group.dataset, default, named),
                                            seed)
                parts = {"train": train, "test": test}
            if aside:
                parts["unplaced"] = aside
            folder = paths.claim(out / "data" / config_name(group), group.dataset)
            for name, records in parts.items():
                table = pa.Table.from_pylist([row(r, group) for r in records], schema=schema())
                with atomic_write(folder / f"{name}.parquet", binary=True) as f:
                    pa.parquet.write_table(table, f)
                written.append(Written(group.dataset, group.language,
                                       str(folder / f"{name}.parquet"), len(records)))
            groups.append((group, {k: len(v) for k, v in parts.items()}))
            license_files[group.dataset] = licenses(group, out, root)
    if not groups:
        raise MmtransError(f"{db_path}: nothing to export")
    table = stats(db_path, run_id).markdown()
    write_text(out / "README.md", card(groups, table, license_files))
    return written
