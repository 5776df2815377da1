"""Fixtures: the real data in tests/data, a scripted OpenAI-compatible server, fresh stores.

The real data (stockmark, IEPile, UniversalNER; see tests/data/README.md for where each comes
from and its license) lives in the repository, so a clone runs every test with nothing beside it."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from mmtrans import formats
from mmtrans.records import Record
from mmtrans.testing import FakeLLM, serving

REPO = Path(__file__).resolve().parent.parent
#: The real datasets, each with its license beside it.
DATA = REPO / "tests" / "data"
STOCKMARK = DATA / "stockmark-ner-wikipedia" / "ner.json"


# The fidelity check (an embedding model per record) is off unless a test turns it on
# (tests/test_fidelity.py): the scripted server's made-up sentences are unfaithful by design,
# and every other test pins what it pins without it. Set when pytest loads this file, before
# any test module is imported, so module fixtures and the environment that tests copy for
# their subprocesses have it too.
os.environ["MMTRANS_FIDELITY"] = "off"


@pytest.fixture(scope="session")
def stockmark_items() -> list[dict[str, Any]]:
    return json.loads(STOCKMARK.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def stockmark_records() -> list[Record]:
    return [r for r in formats.read(STOCKMARK) if isinstance(r, Record)]


@pytest.fixture
def sample(tmp_path: Path, stockmark_items: list[dict[str, Any]]):
    """Write the first n stockmark items (or the given indexes) to a JSON file."""
    def make(n: int = 10, indexes: list[int] | None = None) -> Path:
        wanted = indexes if indexes is not None else range(n)
        items = [stockmark_items[i] for i in wanted]
        path = tmp_path / "ner.json"
        path.write_text(json.dumps(items, ensure_ascii=False, indent=1), encoding="utf-8")
        return path
    return make


@pytest.fixture
def llm():
    with FakeLLM() as server:
        yield server


@pytest.fixture(autouse=True)
def no_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach a real host: no key or base URL leaks in from the environment."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture
def serve():
    """serve(db, **options) serves the review app over a store on 127.0.0.1 and gives its URL;
    every app served stops after the test."""
    from mmtrans.review import make_app

    with contextlib.ExitStack() as servers:
        yield lambda db, **options: servers.enter_context(serving(make_app(db, **options)))


def language_answers(detect: Any, texts: list[str]) -> list[object]:
    """What `detect` (langdetect's `detect_langs`, or mmtrans's) gives for each text: its
    guesses and their probabilities, or its error."""
    from langdetect import LangDetectException

    out: list[object] = []
    for text in texts:
        try:
            out.append([(g.lang, g.prob) for g in detect(text)])
        except LangDetectException as e:
            out.append(str(e))
    return out
