"""Fixtures: real data from ../shared/data, a scripted OpenAI-compatible server, fresh stores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mmtrans import formats
from mmtrans.records import Record
from mmtrans.testing import FakeLLM

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
STOCKMARK = SHARED / "stockmark-ner-wikipedia" / "ner.json"


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
        items = [stockmark_items[i] for i in (indexes if indexes is not None else range(n))]
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
