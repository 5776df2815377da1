"""Prompt files -> chat messages.

`prompts/<src>-<tgt>.toml` (or `default.toml` for any pair) holds a system instruction with
the constraints, a one-shot example and the user template. Its `version` and the rendered
messages are part of the cache key, so editing a prompt never reuses stale answers.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .resources import resource_dir
from .scripts import language_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Message = dict[str, str]


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    system: str
    user: str
    example_input: str
    example_output: str
    repair: str

    def _fill(self, template: str, src: str, tgt: str, **values: str) -> str:
        values = {"source": language_name(src), "target": language_name(tgt), **values}
        for key, value in values.items():
            template = template.replace("{" + key + "}", value)
        return template

    def messages(self, payload: str, src: str, tgt: str) -> list[Message]:
        return [
            {"role": "system", "content": self._fill(self.system, src, tgt)},
            {"role": "user", "content": self._fill(self.user, src, tgt,
                                                   payload=self.example_input.strip())},
            {"role": "assistant", "content": self.example_output.strip()},
            {"role": "user", "content": self._fill(self.user, src, tgt, payload=payload)},
        ]

    def repair_message(self, problems: str, src: str, tgt: str) -> Message:
        return {"role": "user", "content": self._fill(self.repair, src, tgt, problems=problems)}


def prompt_path(src: str, tgt: str, name: str | None = None) -> Path:
    if name:
        return Path(name) if name.endswith(".toml") else resource_dir("prompts") / f"{name}.toml"
    pair = resource_dir("prompts") / f"{src}-{tgt}.toml"
    return pair if pair.is_file() else resource_dir("prompts") / "default.toml"


STRATEGIES = ("default", "tagged")


def load_prompt(src: str, tgt: str, name: str | None = None, strategy: str = "default") -> Prompt:
    """The prompt for a language pair; `strategy="tagged"` takes the file's `[tagged]` table
    (its system text, user template and example) over the defaults."""
    if strategy not in STRATEGIES:
        raise InputError(strategy, None, f"unknown strategy; known: {', '.join(STRATEGIES)}")
    path = prompt_path(src, tgt, name)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise InputError(path, None, "no such prompt file") from e
    except tomllib.TOMLDecodeError as e:
        raise InputError(path, None, f"not TOML: {e}") from e
    if strategy != "default":
        if strategy not in data:
            raise InputError(path, None, f"no [{strategy}] table for --strategy {strategy}")
        data = {**data, **data[strategy]}
    try:
        return Prompt(
            name=path.stem,
            version=str(data["version"]),
            system=data["system"],
            user=data["user"],
            example_input=data["example"]["input"],
            example_output=data["example"]["output"],
            repair=data["repair"],
        )
    except (KeyError, TypeError) as e:
        raise InputError(path, None, f"missing key {e}") from e
