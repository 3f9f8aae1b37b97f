"""Semantic duplicates: pairs of generations whose stored embeddings are close (cosine).

Embeddings live in ``generation_embeddings`` (migration 0003): one float4 ``vector`` per
(project, generation, embedder), any dimension, written by whatever embeds generations
(the search layer's embedders, or :func:`store_embeddings`). A run loads the embedder's
vectors of the project, and compares every generation not checked before against all of
them, exactly: blocked float64 matrix products in numpy, which at these sizes is faster
than asking pgvector for each row's neighbours (no HNSW is needed, and the pair set is
exact, so incremental runs equal full runs just as for MinHash, see ``clusters.py``).
The cost is (new rows) × (all rows) × dimension: the pair search of a full run over 10k
384-d vectors takes about 2.5 s here, over 100k about four minutes (100 times as much);
an incremental run of 1k new rows against 100k, about 2.5 s. Beyond that, a per-embedder
HNSW index (search issue) is the way, approximately: not done here.

A member's stored source hash is a hash of its vector, so a re-embedded generation is
checked again on the next run.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import NotFoundError, Problem, ValidationError
from .clusters import Existing, Items, assemble, changes, fill_similarities, plan
from .report import DedupReport, examples_from, largest_clusters
from .store import (
    bulk_plans,
    fetch_texts,
    find_index,
    finish_index,
    load_existing,
    stored_summary,
    write_changes,
)

if TYPE_CHECKING:
    from ..client import Project

DEFAULT_THRESHOLD = 0.95
BLOCK = 2048
BLOCK_CELLS = 16_000_000  # similarities computed at once: 128 MB of float64


def store_embeddings(
    project: Project,
    embedder: str,
    vectors: Mapping[uuid.UUID, Sequence[float]] | Iterable[tuple[uuid.UUID, Sequence[float]]],
    *,
    replace: bool = False,
) -> int:
    """Store embeddings of generations of ``project`` made by ``embedder``; returns how
    many were new (or replaced, with ``replace``, which needs an admin)."""
    from pgvector.psycopg import register_vector

    pairs = list(vectors.items() if isinstance(vectors, Mapping) else vectors)
    rows = []
    for gid, vector in pairs:
        array = np.asarray(vector, dtype=np.float32)
        if array.ndim != 1 or not len(array) or not np.isfinite(array).all():
            raise ValidationError([Problem("vector", f"of {gid} must be finite numbers")])
        rows.append((project.id, gid, embedder, len(array), array))
    # without a conflict target, DO NOTHING needs no SELECT policy: writers may use it
    conflict = (
        "ON CONFLICT (project_id, generation_id, embedder) DO UPDATE SET vector ="
        " excluded.vector, dimension = excluded.dimension, created_at = now()"
        if replace
        else "ON CONFLICT DO NOTHING"
    )
    with project.lake._transaction(project) as conn:
        register_vector(conn)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO generation_embeddings (project_id, generation_id, embedder,"
                " dimension, vector) VALUES (%s, %s, %s, %s, %s)"
                f" {conflict}",
                rows,
            )
            return cur.rowcount


def _embedder(project: Project, embedder: str | None) -> str:
    with project.lake._transaction(project) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT embedder FROM generation_embeddings WHERE project_id = %s"
                " ORDER BY 1",
                (project.id,),
            )
        ]
    if embedder is not None and embedder in names:
        return embedder
    if not names:
        raise NotFoundError(
            f"project {project.name!r} has no stored embeddings: semantic dedup compares"
            " vectors in generation_embeddings (store them with"
            " promptlake.dedup.semantic.store_embeddings or a search embedder), or use"
            " method='minhash'"
        )
    if embedder is None and len(names) == 1:
        return names[0]
    raise ValidationError(
        [Problem("embedder", f"name one of the project's embedders: {', '.join(names)}")]
    )


def _load(project: Project, embedder: str) -> tuple[Items, np.ndarray]:
    from pgvector.psycopg import register_vector

    with project.lake._transaction(project) as conn:
        register_vector(conn)
        bulk_plans(conn)
        rows = conn.execute(
            "SELECT e.generation_id, g.created_at, g.origin, e.vector"
            " FROM generation_embeddings e JOIN generations g"
            " ON g.project_id = e.project_id AND g.id = e.generation_id"
            " WHERE e.project_id = %s AND e.embedder = %s ORDER BY e.generation_id",
            (project.id, embedder),
        ).fetchall()
    vectors = [np.asarray(getattr(r[3], "to_numpy", lambda v=r[3]: v)(), np.float32) for r in rows]
    dims = {len(v) for v in vectors}
    if len(dims) > 1:
        raise ValidationError(
            [Problem("embedder", f"{embedder!r} has vectors of several dimensions: {dims}")]
        )
    hashes = [hashlib.sha256(v.tobytes()).digest() for v in vectors]
    items = Items([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], hashes)
    matrix = np.array(vectors, dtype=np.float64).reshape(len(rows), -1)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return items, matrix / np.where(norms == 0, 1.0, norms)


def _pairs(
    matrix: np.ndarray, active: np.ndarray, threshold: float, origins: list[str] | None
) -> np.ndarray:
    """Pairs (i < j) with cosine >= threshold where i or j is active, computed exactly."""
    found = []
    queries = np.flatnonzero(active)
    block = max(1, min(BLOCK, BLOCK_CELLS // max(len(matrix), 1)))  # bounded memory
    for start in range(0, len(queries), block):
        rows = queries[start : start + block]
        sims = np.round(matrix[rows] @ matrix.T, 9)
        r, c = np.nonzero(sims >= threshold)
        a, b = rows[r], c
        keep = a != b
        found.append(np.stack([np.minimum(a, b)[keep], np.maximum(a, b)[keep]], axis=1))
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.unique(np.concatenate(found), axis=0)
    if origins is not None and len(pairs):
        o = np.array(origins, dtype=object)
        pairs = pairs[o[pairs[:, 0]] == o[pairs[:, 1]]]
    return pairs


def run_semantic(
    project: Project,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    embedder: str | None = None,
    within_origin: bool = False,
    store: bool = True,
    rebuild: bool = False,
    progress: Callable[[int, int], None] | None = None,
    examples: int = 5,
) -> DedupReport:
    started = time.perf_counter()
    name = _embedder(project, embedder)
    items, matrix = _load(project, name)
    existing = Existing()
    index_id = None
    if store:
        with project.lake._transaction(project) as conn:
            index_id = find_index(conn, project, method="semantic", field="content",
                                  threshold=threshold, within_origin=within_origin,
                                  params={"embedder": name}, create=True)  # fmt: skip
            if index_id is not None and not rebuild:
                existing = load_existing(conn, project, index_id)
    state = plan(items, existing)
    links = _pairs(matrix, state.active, threshold, items.origins if within_origin else None)
    if progress:
        progress(len(items), len(items))
    result = assemble(items, state, links)
    fill_similarities(result, lambda rep, members: np.round(matrix[members] @ matrix[rep], 9))
    delta = changes(items, existing, state, result)
    report = DedupReport(
        project=project.name, method="semantic", field="content", threshold=threshold,
        within_origin=within_origin, checked=len(items), newly_checked=int(state.active.sum()),
        clusters=len(result.clusters),
        duplicates=sum(len(c.members) - 1 for c in result.clusters), stored=store,
        seconds=0.0, details={"embedder": name, "pairs": len(links)},
    )  # fmt: skip
    with project.lake._transaction(project) as conn:
        if store and index_id is not None:
            report.changes = write_changes(conn, project, index_id, delta, replace_all=rebuild)
            finish_index(conn, project, index_id, {**report.details, **report.changes})
            checked, clusters, duplicates, largest = stored_summary(
                conn, project, index_id, examples
            )
            report.checked, report.clusters, report.duplicates = checked, clusters, duplicates
        else:
            largest = largest_clusters(result, items, examples)
        wanted = [x for cid, _, _, member in largest for x in (cid, member) if x is not None]
        texts = fetch_texts(conn, project, "content", wanted)
    report.examples = examples_from(largest, {k: v[0] for k, v in texts.items()})
    report.seconds = round(time.perf_counter() - started, 3)
    return report
