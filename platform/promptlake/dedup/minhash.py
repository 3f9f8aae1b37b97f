"""MinHash signatures and LSH banding, for many documents at once.

Signatures are datasketch MinHash values: scheme ``affine32`` (datasketch >= 2.0), the
permutations of ``MinHash(num_perm, seed)``, fed the 32-bit shingle hashes of
``shingles.py`` as their own hash (``hashfunc=lambda x: x``). A test pins that
:meth:`Signer.sign` equals datasketch's ``update_batch`` bit for bit; computing them here
in one numpy pass per batch of documents instead of one ``MinHash`` object per text is
what makes 100,000 documents a matter of seconds (datasketch's own loop: ≈ 2.4k texts/s).
Signatures of datasketch < 2.0 are not comparable, so the scheme name is stored with
every signature and a different scheme is simply recomputed.

Candidate pairs come from LSH banding over the signature matrix (``bands`` × ``rows``,
the same buckets as datasketch's ``MinHashLSH(params=(bands, rows))``), done with a sort
per band instead of a Python dict, so rebuilding the buckets of a whole project from
stored signatures on every incremental run costs well under a second per 100k rows.
Banding is tuned for recall (a pair at the threshold becomes a candidate with probability
>= 0.995); precision comes from verifying every candidate by exact Jaccard afterwards.
"""

from __future__ import annotations

import numpy as np

from .shingles import ShingleSets

NUM_PERM = 128
SEED = 1
SCHEME = "affine32"
MAX_HASH = np.uint32(0xFFFFFFFF)
MAX_BUCKET = 2000  # larger buckets pair each member with their first MAX_BUCKET members only
_U64 = np.uint64


def lsh_params(
    threshold: float, num_perm: int = NUM_PERM, recall: float = 0.995
) -> tuple[int, int]:
    """(bands, rows): the most selective banding under which a pair of Jaccard similarity
    ``threshold`` still becomes a candidate with probability >= ``recall``."""
    best = (num_perm, 1)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if 1 - (1 - threshold**rows) ** bands >= recall:
            best = (bands, rows)
    return best


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    return 1 - (1 - similarity**rows) ** bands


class Signer:
    """MinHash signatures of :class:`ShingleSets` (see the module docstring)."""

    def __init__(self, num_perm: int = NUM_PERM, seed: int = SEED) -> None:
        from datasketch import MinHash

        template = MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME)
        a, b = template.permutations
        self.a = np.asarray(a, dtype=np.uint32)
        self.b = np.asarray(b, dtype=np.uint32)
        self.num_perm = num_perm
        self.seed = seed

    @property
    def scheme(self) -> str:
        return f"{SCHEME}/p{self.num_perm}/s{self.seed}"

    def sign(self, sets: ShingleSets, chunk: int = 32_768) -> np.ndarray:
        """(documents, num_perm) uint32; a document without shingles gets all MAX_HASH."""
        n = len(sets)
        out = np.full((n, self.num_perm), MAX_HASH, dtype=np.uint32)
        sizes = sets.sizes()
        hv = _fmix32(sets.values)
        buf = np.empty((self.num_perm, min(chunk, max(len(hv), 1))), dtype=np.uint32)
        doc = 0
        while doc < n:
            # documents whose shingles fit in one chunk (at least one document)
            lo = sets.offsets[doc]
            end = int(np.searchsorted(sets.offsets, lo + chunk, side="right")) - 1
            end = min(max(end, doc + 1), n)
            hi = sets.offsets[end]
            if hi - lo > buf.shape[1]:
                buf = np.empty((self.num_perm, hi - lo), dtype=np.uint32)
            work = buf[:, : hi - lo]
            with np.errstate(over="ignore"):
                np.multiply(self.a[:, None], hv[None, lo:hi], out=work)
                work += self.b[:, None]
            nonempty = np.flatnonzero(sizes[doc:end]) + doc
            if len(nonempty):
                starts = sets.offsets[nonempty] - lo
                out[nonempty] = np.minimum.reduceat(work, starts, axis=1).T
            doc = end
        return out


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, which datasketch's affine schemes apply first."""
    h = h.astype(np.uint32, copy=True)
    with np.errstate(over="ignore"):
        h ^= h >> np.uint32(16)
        h *= np.uint32(0x85EBCA6B)
        h ^= h >> np.uint32(13)
        h *= np.uint32(0xC2B2AE35)
        h ^= h >> np.uint32(16)
    return h


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(bands, documents) uint64: one bucket key per band (64-bit hash of its rows)."""
    n = signatures.shape[0]
    keys = np.empty((bands, n), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for band in range(bands):
            cols = signatures[:, band * rows : (band + 1) * rows].astype(np.uint64)
            key = np.full(n, _U64(band) * _U64(0x9E3779B97F4A7C15), dtype=np.uint64)
            for c in range(rows):
                key = (key ^ cols[:, c]) * _U64(0x100000001B3)
                key ^= key >> _U64(29)
            keys[band] = key
    return keys


def candidate_pairs(
    keys: np.ndarray, eligible: np.ndarray, active: np.ndarray
) -> tuple[np.ndarray, int]:
    """Pairs (i < j) of eligible documents sharing a bucket in any band, with at least one
    of them active; and how many oversized buckets were thinned (see :data:`MAX_BUCKET`)."""
    n = keys.shape[1]
    index = np.flatnonzero(eligible)
    found: list[np.ndarray] = []
    thinned = 0
    for band in range(keys.shape[0]):
        k = keys[band, index]
        order = np.argsort(k, kind="stable")
        sorted_keys = k[order]
        members = index[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        sizes = np.diff(np.r_[starts, len(sorted_keys)])
        pairs_starts = starts[sizes == 2]
        if len(pairs_starts):
            left, right = members[pairs_starts], members[pairs_starts + 1]
            keep = active[left] | active[right]
            left, right = left[keep], right[keep]
            found.append(np.stack([np.minimum(left, right), np.maximum(left, right)], axis=1))
        for start, size in zip(starts[sizes > 2], sizes[sizes > 2], strict=True):
            bucket = np.sort(members[start : start + size])
            if not active[bucket].any():
                continue
            if size > MAX_BUCKET:
                thinned += 1
                anchors = bucket[:MAX_BUCKET]
                left = np.repeat(anchors, len(bucket))
                right = np.tile(bucket, len(anchors))
                keep = left < right
                found.append(np.stack([left[keep], right[keep]], axis=1))
            else:
                i, j = np.triu_indices(size, 1)
                found.append(np.stack([bucket[i], bucket[j]], axis=1))
    if not found:
        return np.empty((0, 2), dtype=np.int64), thinned
    pairs = np.concatenate(found).astype(np.int64)
    pairs = pairs[active[pairs[:, 0]] | active[pairs[:, 1]]]
    codes = np.unique(pairs[:, 0] * n + pairs[:, 1])
    return np.stack([codes // n, codes % n], axis=1), thinned


def to_bytes(signatures: np.ndarray) -> list[bytes]:
    little = signatures.astype("<u4", copy=False)
    return [row.tobytes() for row in little]


def from_bytes(blobs: list[bytes], num_perm: int = NUM_PERM) -> np.ndarray:
    if not blobs:
        return np.empty((0, num_perm), dtype=np.uint32)
    return (
        np.frombuffer(b"".join(blobs), dtype="<u4").reshape(len(blobs), num_perm).astype(np.uint32)
    )
