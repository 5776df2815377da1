"""Rule tables that translate labels (text labels, entity types, relations, events, roles).

A table is `data/labels/<name>.<src>-<tgt>.tsv`: `source<TAB>target` a line, `#` comments.
Labels never go through the LLM: a label no table knows stops the run before any call.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError, LabelError
from .records import Record
from .resources import resource_dir


@dataclass
class LabelTable:
    path: Path
    mapping: dict[str, str]

    def translate(self, record: Record) -> Record:
        return record.map_labels(self.mapping)

    def missing(self, records: Iterable[Record]) -> Counter[str]:
        """Every label of `records` the table does not know, with how often it occurs."""
        return Counter(
            label for r in records for _, label in r.labels() if label not in self.mapping
        )

    def require(self, records: Iterable[Record]) -> None:
        missing = self.missing(records)
        if missing:
            raise LabelError(dict(missing), str(self.path))


def read_table(path: str | Path) -> dict[str, str]:
    path = Path(path)
    mapping: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(path, None, f"cannot read label table: {e}") from e
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise InputError(path, n, "expected 'source<TAB>target'")
        source, target = parts[0].strip(), parts[1].strip()
        if source in mapping and mapping[source] != target:
            raise InputError(path, n, f"{source!r} is already mapped to {mapping[source]!r}")
        mapping[source] = target
    return mapping


def table_path(name: str, src: str, tgt: str) -> Path:
    """A table by name for a language pair, or `name` itself when it is a file."""
    if name.endswith(".tsv") or Path(name).is_file():
        return Path(name)
    return resource_dir("labels") / f"{name}.{src}-{tgt}.tsv"


def load_tables(names: Iterable[str], src: str, tgt: str) -> LabelTable:
    """Merge the named tables (later ones win) into one."""
    names = list(names)
    if not names:
        raise LabelError({}, "a table named with --labels")
    mapping: dict[str, str] = {}
    path = Path()
    for name in names:
        path = table_path(name, src, tgt)
        if not path.is_file():
            raise InputError(path, None, f"no label table {name!r} for {src}->{tgt}")
        mapping.update(read_table(path))
    return LabelTable(path, mapping)


def pair_tables(src: str, tgt: str) -> list[str]:
    """The names of the shipped tables for a language pair."""
    suffix = f".{src}-{tgt}.tsv"
    return sorted(p.name[: -len(suffix)] for p in resource_dir("labels").glob(f"*{suffix}"))


def find_tables(records: Iterable[Record], src: str, tgt: str) -> list[str]:
    """Tables for a run that names none: the first shipped table of the pair that covers
    every label of `records`, else all of the pair's tables together (the run then stops
    on what none of them covers)."""
    names = pair_tables(src, tgt)
    if not names:
        hint = str(resource_dir("labels") / f"<name>.{src}-{tgt}.tsv")
        missing = Counter(label for r in records for _, label in r.labels())
        raise LabelError(dict(missing), hint)
    labels = {label for r in records for _, label in r.labels()}
    for name in names:
        if labels <= read_table(table_path(name, src, tgt)).keys():
            return [name]
    return names


def known_labels() -> set[str]:
    """Every label on either side of every shipped table: what readers split MRE output on."""
    labels: set[str] = set()
    for path in sorted(resource_dir("labels").glob("*.tsv")):
        for source, target in read_table(path).items():
            labels.update((source, target))
    return labels
