"""Entity resolution: which mentions are the same entity.

Two surface forms name the same entity when their *keys* are equal (:func:`entity_key`:
case folded, punctuation and spacing ignored for names, hosts lower-cased, ``www.``
dropped, ``_`` and ``-`` equal in package names), when the project dictionary lists one
as an alias of the other, or when a person merged them by hand (the merged entity's name
and aliases become aliases of the one kept, so later extractions resolve to it).
Name-like kinds share one namespace: the built-in extractor's ``name`` and the NER extra's
``person``/``org``/``place`` with the same key are one entity, of the more specific kind.

:func:`similar_pairs` proposes further merges from embedding similarity of the names with
the project's embedder; :meth:`promptlake.graph.Entities.resolve` applies them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

NAMEISH = ("name", "person", "org", "place")
_NOT_ALNUM = re.compile(r"[\W_]+")
_SPACES = re.compile(r"\s+")


def entity_key(kind: str, name: str) -> str:
    """The normalized form resolution compares (see the module docstring)."""
    folded = _SPACES.sub(" ", name.strip()).casefold()
    if kind == "url":
        return folded.rstrip("/")
    if kind in ("domain", "email"):
        return folded.removeprefix("www.")
    if kind == "package":
        return folded.replace("_", "-")
    if kind == "code":
        return name.strip()  # identifiers are case-sensitive
    return _NOT_ALNUM.sub("", folded) or folded


def namespace(kind: str) -> str:
    """Kinds whose entities resolve against each other."""
    return "name" if kind in NAMEISH else kind


@dataclass
class Known:
    """One project's entities as resolution sees them: (namespace, key) -> entity."""

    ids: dict[tuple[str, str], uuid.UUID]
    kinds: dict[uuid.UUID, str]

    @classmethod
    def load(cls, rows: Iterable[tuple[uuid.UUID, str, str, str, Sequence[str]]]) -> Known:
        """From ``(id, kind, name, key, aliases)`` rows."""
        known = cls({}, {})
        for eid, kind, name, key, aliases in rows:
            known.kinds[eid] = kind
            space = namespace(kind)
            known.ids.setdefault((space, key), eid)
            for form in (name, *aliases):
                known.ids.setdefault((space, entity_key(kind, form)), eid)
        return known

    def find(self, kind: str, key: str) -> uuid.UUID | None:
        return self.ids.get((namespace(kind), key))

    def add(self, eid: uuid.UUID, kind: str, key: str) -> None:
        self.ids[(namespace(kind), key)] = eid
        self.kinds[eid] = kind


def similar_pairs(
    names: Sequence[str], vectors: np.ndarray, threshold: float
) -> list[tuple[int, int, float]]:
    """Index pairs ``(i, j)``, ``i < j``, whose vectors' cosine is at least ``threshold``,
    most similar first; computed in blocks so that memory stays bounded."""
    if len(names) < 2:
        return []
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    v = v / np.where(norms == 0, 1, norms)
    out: list[tuple[int, int, float]] = []
    block = 2048
    for lo in range(0, len(v), block):
        sims = v[lo : lo + block] @ v.T
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            i = lo + r
            if i < c:
                out.append((i, c, float(sims[r, c])))
    out.sort(key=lambda p: (-p[2], p[0], p[1]))
    return out
