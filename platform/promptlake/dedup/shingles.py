"""What near-duplicate detection compares: the text of a generation as word shingles.

Near-duplicates are judged on sets of word 5-grams (Lee et al. 2021; datatrove; NeMo
Curator). The normalisation (:data:`SHINGLE_VERSION` 1) is: Unicode case folding, words
are runs of Unicode word characters (punctuation and whitespace only separate words),
shingles are ``size`` consecutive words; a text of fewer words is one shingle of all of
them; a text without words has no shingles and is never a near-duplicate (exact
duplicates of it are still found by the exact method).

Shingles are represented by 32-bit hashes (a word's hash is stable across processes and
machines: BLAKE2b of its UTF-8 bytes), so a document is a sorted array of distinct
``uint32`` values. Jaccard similarity over those arrays is the exact Jaccard similarity of
the shingle sets up to hash collisions (about 130² / 2³² ≈ 4·10⁻⁶ per pair of 800-character
texts). The same values feed datasketch's MinHash (see ``minhash.py``).

Which text is compared is a *field*: ``input`` (the prompt text, or the content of each
chat message), ``output``, or ``content`` (both). The text is assembled in SQL so that a
batch of generations costs one query.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import Problem, ValidationError

SHINGLE_VERSION = 1
SHINGLE_SIZE = 5
FIELDS = ("content", "input", "output")
_WORD = re.compile(r"\w+")
_U64 = np.uint64
_MIX = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
     0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x27D4EB2F165667C5, 0x94D049BB133111EB],
    dtype=np.uint64,
)  # fmt: skip

# SQL expressions over ``generations g``: the text of each field, and the ingest-time hash
# that changes whenever that text changes (so a stored result can be recognised as stale)
_INPUT_SQL = (
    "concat_ws(E'\\n', g.input_text, (SELECT string_agg(CASE jsonb_typeof(m->'content')"
    " WHEN 'string' THEN m->>'content' WHEN 'null' THEN NULL ELSE (m->'content')::text END,"
    " E'\\n' ORDER BY n) FROM jsonb_array_elements(g.input_messages) WITH ORDINALITY"
    " AS x(m, n)))"
)
FIELD_TEXT_SQL = {
    "input": _INPUT_SQL,
    "output": "coalesce(g.output, '')",
    "content": f"concat_ws(E'\\n', {_INPUT_SQL}, g.output)",
}
FIELD_HASH_SQL = {"input": "g.input_hash", "output": "g.output_hash", "content": "g.content_hash"}


def check_field(field: str) -> str:
    if field not in FIELDS:
        raise ValidationError(
            [Problem("field", f"must be one of {', '.join(FIELDS)}; got {field!r}")]
        )
    return field


class _WordHashes(dict[str, int]):
    """word -> stable 64-bit hash, computed once per distinct word."""

    def __missing__(self, word: str) -> int:
        value = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        self[word] = value
        return value


def _fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> _U64(33))
    h = h * _U64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> _U64(33))
    h = h * _U64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> _U64(33))


@dataclass
class ShingleSets:
    """Distinct shingle hashes of many documents: ``values[offsets[i]:offsets[i + 1]]``
    is document ``i``'s sorted set; ``set_hashes[i]`` is equal for equal sets."""

    values: np.ndarray  # uint32
    offsets: np.ndarray  # int64, len(documents) + 1
    set_hashes: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def get(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def sizes(self) -> np.ndarray:
        return np.diff(self.offsets)


class Shingler:
    """Turns texts into :class:`ShingleSets`, many at a time (vectorised with numpy)."""

    def __init__(self, size: int = SHINGLE_SIZE) -> None:
        if not 1 <= size <= len(_MIX):
            raise ValueError(f"shingle size must be between 1 and {len(_MIX)}")
        self.size = size
        self._words = _WordHashes()

    def shingle(self, texts: Sequence[str]) -> ShingleSets:
        if len(self._words) > 2_000_000:
            self._words.clear()  # bounded memory on very large runs
        get = self._words.__getitem__
        flat: list[int] = []
        lengths = np.empty(len(texts), dtype=np.int64)
        for i, text in enumerate(texts):
            words = _WORD.findall(text.casefold()) if text else []
            flat.extend(map(get, words))
            lengths[i] = len(words)
        words_arr = np.fromiter(flat, dtype=np.uint64, count=len(flat))
        return self._from_words(words_arr, lengths)

    def _from_words(self, words: np.ndarray, lengths: np.ndarray) -> ShingleSets:
        k = self.size
        n_docs = len(lengths)
        n = len(words)
        doc = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
        starts = np.zeros(n_docs + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        position = np.arange(n, dtype=np.int64) - starts[doc]
        # a shingle starts at every position with k words left in its document, and at the
        # first word of a document shorter than k
        keep = (position <= lengths[doc] - k) | ((position == 0) & (lengths[doc] < k))
        padded_words = np.concatenate([words, np.zeros(k, dtype=np.uint64)])
        padded_doc = np.concatenate([doc, np.full(k, -1, dtype=np.int64)])
        acc = np.zeros(n, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(k):
                same = padded_doc[j : j + n] == doc  # words past the document count as none
                acc += padded_words[j : j + n] * _MIX[j] * same.astype(np.uint64)
                acc = (acc << _U64(17)) | (acc >> _U64(47))
            acc = _fmix64(acc)
        shingles = (acc[keep] >> _U64(32)).astype(np.uint64)
        owner = doc[keep].astype(np.uint64)
        keys = (owner << _U64(32)) | shingles
        keys.sort()  # by document, then value; then drop repeats
        keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys
        key_doc = (keys >> _U64(32)).astype(np.int64)
        values = (keys & _U64(0xFFFFFFFF)).astype(np.uint32)
        counts = np.bincount(key_doc, minlength=n_docs)
        offsets = np.zeros(n_docs + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        with np.errstate(over="ignore"):
            mixed = _fmix64(values.astype(np.uint64) ^ _U64(0x5851F42D4C957F2D))
            sums = np.zeros(n_docs, dtype=np.uint64)
            np.add.at(sums, key_doc, mixed)
            set_hashes = _fmix64(sums ^ counts.astype(np.uint64)).view(np.int64)
        return ShingleSets(values, offsets, set_hashes)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two sorted arrays of distinct shingle hashes."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    common = len(np.intersect1d(a, b, assume_unique=True))
    return common / (len(a) + len(b) - common)
