"""Deduplication within a project: exact, near-duplicate (MinHash) and semantic.

Repeated prompts and outputs bias evaluations and training sets; this package finds them
and records them as clusters of a *dedup index* (one per method, field, threshold and
scope), never across projects (every query runs under the project's row-level security
context), optionally only within the same ``origin`` (real or synthetic):

``exact``      same normalized text, from the hashes computed at ingest (``exact.py``)
``minhash``    word 5-gram Jaccard >= threshold, MinHash LSH + exact verification, with
               stored signatures so new rows are checked incrementally (``near.py``)
``semantic``   cosine >= threshold between stored embeddings (``semantic.py``)

:func:`dedup` runs one of them (``Project.dedup`` and ``promptlake dedup`` call it);
:func:`contamination` reports rows of one selection that near-duplicate another's.
Exports keep a generation when its ``dedup_members.cluster_id`` is NULL or is itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import PermissionDeniedError, Problem, ValidationError
from .contamination import ContaminationReport, Match, Selection, contamination
from .report import ClusterExample, DedupReport

if TYPE_CHECKING:
    from ..client import Project

METHODS = ("exact", "minhash", "semantic")


def dedup(
    project: Project,
    method: str = "minhash",
    threshold: float | None = None,
    *,
    field: str = "content",
    within_origin: bool = False,
    embedder: str | None = None,
    store: bool = True,
    rebuild: bool = False,
    progress: Callable[[int, int], None] | None = None,
    examples: int = 5,
) -> DedupReport:
    """Find the project's duplicates with ``method`` and (with ``store``) record them.

    ``threshold``: Jaccard similarity of word 5-gram sets for ``minhash`` (default 0.8),
    cosine similarity for ``semantic`` (default 0.95); ``exact`` takes none. ``field``:
    compare the ``input``, the ``output`` or both (``content``). ``store=False`` computes
    the report without writing (what analysts may do); storing needs an admin.
    ``rebuild`` discards the index's stored clusters and recomputes them from scratch.
    """
    from ..access import require_member

    if method not in METHODS:
        raise ValidationError(
            [Problem("method", f"must be one of {', '.join(METHODS)}; got {method!r}")]
        )
    if threshold is not None and not (isinstance(threshold, int | float) and 0 < threshold <= 1):
        raise ValidationError([Problem("threshold", f"must be in (0, 1], got {threshold!r}")])
    if method == "exact" and threshold not in (None, 1, 1.0):
        raise ValidationError([Problem("threshold", "exact dedup has none (it is 1)")])
    try:
        require_member(project, ("admin",) if store else ("admin", "analyst"))
    except PermissionDeniedError as exc:
        hint = " (analysts may compute a report without storing it: store=False, --dry-run)"
        raise PermissionDeniedError(f"dedup: {exc}{hint if store else ''}") from None
    if method == "exact":
        from .exact import run_exact

        return run_exact(project, field=field, within_origin=within_origin, store=store,
                         rebuild=rebuild, examples=examples)  # fmt: skip
    if method == "minhash":
        from .near import DEFAULT_THRESHOLD, run_minhash

        return run_minhash(
            project, threshold=float(threshold or DEFAULT_THRESHOLD), field=field,
            within_origin=within_origin, store=store, rebuild=rebuild, progress=progress,
            examples=examples,
        )  # fmt: skip
    from .semantic import DEFAULT_THRESHOLD as COSINE
    from .semantic import run_semantic

    if field != "content":
        raise ValidationError([Problem("field", "semantic dedup compares whole embeddings")])
    return run_semantic(
        project, threshold=float(threshold or COSINE), embedder=embedder,
        within_origin=within_origin, store=store, rebuild=rebuild, progress=progress,
        examples=examples,
    )  # fmt: skip


__all__ = [
    "METHODS",
    "ClusterExample",
    "ContaminationReport",
    "DedupReport",
    "Match",
    "Selection",
    "contamination",
    "dedup",
]
