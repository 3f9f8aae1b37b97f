"""Near-duplicates: MinHash LSH over word shingles, every candidate verified, incremental.

A run (1) computes the MinHash signature of every generation that has none yet, or whose
text changed since (its ingest hash differs), and stores it, in batches that each commit,
so an interrupted run keeps its work; (2) loads the project's signatures and rebuilds the
LSH buckets from them (cheap, see ``minhash.py``); (3) verifies each candidate pair that
touches a generation not checked before by exact Jaccard similarity of the shingle sets,
accepting it at ``threshold`` or above; (4) merges the accepted pairs into the stored
clusters (``clusters.py``) and writes only what changed.

Generations with identical shingle sets (copies, and copies differing only in case,
punctuation or whitespace) are joined without comparison through their stored set hash,
and only one of them enters the LSH buckets, so a text repeated ten thousand times costs
no more than one occurrence.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from psycopg import sql

from .clusters import Existing, Items, assemble, changes, fill_similarities, plan
from .minhash import Signer, band_keys, candidate_pairs, from_bytes, lsh_params, to_bytes
from .report import DedupReport, examples_from, largest_clusters
from .shingles import FIELD_HASH_SQL, SHINGLE_VERSION, Shingler, check_field, jaccard
from .store import (
    bulk_plans,
    fetch_texts,
    find_index,
    finish_index,
    load_existing,
    pending_count,
    stored_summary,
    upsert,
    write_changes,
)

if TYPE_CHECKING:
    from ..client import Project

DEFAULT_THRESHOLD = 0.8
Progress = Callable[[int, int], None]

SIGNATURE_COLUMNS = ("project_id", "generation_id", "scheme", "source_hash", "set_hash",
                     "shingles", "signature")  # fmt: skip
SIGNATURE_TYPES = ("uuid", "uuid", "text", "bytea", "int8", "int4", "bytea")


@dataclass
class _Signed:
    items: Items
    signatures: np.ndarray  # (n, num_perm) uint32
    set_hashes: np.ndarray  # int64
    sizes: np.ndarray  # distinct shingles per item


class _Texts:
    """Shingle sets by generation id, fetched from the database when not at hand."""

    def __init__(self, project: Project, field: str, shingler: Shingler) -> None:
        self.project = project
        self.field = field
        self.shingler = shingler
        self.sets: dict[uuid.UUID, np.ndarray] = {}

    def ensure(self, ids: Iterable[uuid.UUID]) -> None:
        missing = [gid for gid in dict.fromkeys(ids) if gid not in self.sets]
        for start in range(0, len(missing), 5000):
            chunk = missing[start : start + 5000]
            with self.project.lake._transaction(self.project) as conn:
                texts = fetch_texts(conn, self.project, self.field, chunk)
            found = [gid for gid in chunk if gid in texts]
            sets = self.shingler.shingle([texts[gid][0] for gid in found])
            for i, gid in enumerate(found):
                self.sets[gid] = sets.get(i)
            for gid in set(chunk) - set(found):
                self.sets[gid] = np.empty(0, dtype=np.uint32)  # deleted meanwhile

    def jaccard(self, a: uuid.UUID, b: uuid.UUID) -> float:
        return jaccard(self.sets[a], self.sets[b])


def _sign_batch(
    project: Project, field: str, ids: list[uuid.UUID], shingler: Shingler, signer: Signer,
    texts: _Texts,
) -> tuple[list[uuid.UUID], list[bytes], np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    with project.lake._transaction(project) as conn:
        fetched = fetch_texts(conn, project, field, ids)
    found = [gid for gid in ids if gid in fetched]
    sets = shingler.shingle([fetched[gid][0] for gid in found])
    for i, gid in enumerate(found):
        texts.sets[gid] = sets.get(i)
    return found, [fetched[g][1] for g in found], signer.sign(sets), sets.set_hashes, sets.sizes()


def _store_signatures(
    project: Project, field: str, scheme: str, shingler: Shingler, signer: Signer,
    texts: _Texts, progress: Progress, batch_size: int,
) -> int:  # fmt: skip
    """Compute and store the signatures that are missing or stale; returns how many."""
    with project.lake._transaction(project) as conn:
        bulk_plans(conn)
        pending = [
            r[0]
            for r in conn.execute(
                sql.SQL(
                    "SELECT g.id FROM generations g LEFT JOIN dedup_signatures s"
                    " ON s.project_id = g.project_id AND s.generation_id = g.id AND s.scheme = %s"
                    " WHERE g.project_id = %s AND (s.generation_id IS NULL OR s.source_hash <> {})"
                    " ORDER BY g.id"
                ).format(sql.SQL(FIELD_HASH_SQL[field])),
                (scheme, project.id),
            )
        ]
    for start in range(0, len(pending), batch_size):
        ids = pending[start : start + batch_size]
        found, hashes, sigs, set_hashes, sizes = _sign_batch(
            project, field, ids, shingler, signer, texts
        )
        rows = [
            (project.id, gid, scheme, h, int(sh), int(size), blob)
            for gid, h, sh, size, blob in zip(
                found, hashes, set_hashes, sizes, to_bytes(sigs), strict=True
            )
        ]
        with project.lake._transaction(project) as conn:
            upsert(conn, "dedup_signatures", SIGNATURE_COLUMNS, SIGNATURE_TYPES,
                   ("project_id", "generation_id", "scheme"), rows, touch="created_at")  # fmt: skip
        progress(start + len(ids), len(pending))
    return len(pending)


def _load_signed(project: Project, field: str, scheme: str) -> _Signed:
    with project.lake._transaction(project) as conn:
        bulk_plans(conn)
        rows = conn.execute(
            sql.SQL(
                "SELECT s.generation_id, g.created_at, g.origin, s.source_hash, s.set_hash,"
                " s.shingles, s.signature FROM dedup_signatures s JOIN generations g"
                " ON g.project_id = s.project_id AND g.id = s.generation_id"
                " WHERE s.project_id = %s AND s.scheme = %s AND s.source_hash = {}"
                " ORDER BY s.generation_id"
            ).format(sql.SQL(FIELD_HASH_SQL[field])),
            (project.id, scheme),
        ).fetchall()
    items = Items([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                  [bytes(r[3]) for r in rows])  # fmt: skip
    return _Signed(
        items,
        from_bytes([bytes(r[6]) for r in rows], len(bytes(rows[0][6])) // 4 if rows else 128),
        np.array([r[4] for r in rows], dtype=np.int64),
        np.array([r[5] for r in rows], dtype=np.int64),
    )


def _sign_in_memory(
    project: Project, field: str, shingler: Shingler, signer: Signer, texts: _Texts,
    progress: Progress, batch_size: int,
) -> _Signed:  # fmt: skip
    """Every generation signed without storing anything (for a read-only report)."""
    from .store import load_items

    with project.lake._transaction(project) as conn:
        items = load_items(conn, project, field)
    sigs, set_hashes, sizes = [], [], []
    for start in range(0, len(items), batch_size):
        ids = items.ids[start : start + batch_size]
        found, _, s, sh, sz = _sign_batch(project, field, ids, shingler, signer, texts)
        if len(found) != len(ids):
            raise RuntimeError("generations were deleted during the run; run it again")
        sigs.append(s)
        set_hashes.append(sh)
        sizes.append(sz)
        progress(start + len(ids), len(items))
    empty = np.empty((0, signer.num_perm), dtype=np.uint32)
    return _Signed(
        items,
        np.concatenate(sigs) if sigs else empty,
        np.concatenate(set_hashes) if set_hashes else np.empty(0, dtype=np.int64),
        np.concatenate(sizes) if sizes else np.empty(0, dtype=np.int64),
    )


def find_links(
    signed: _Signed,
    active: np.ndarray,
    texts: _Texts,
    *,
    threshold: float,
    within_origin: bool,
    bands: int,
    rows: int,
) -> tuple[np.ndarray, dict[str, int]]:
    """Accepted pairs (positions) touching an active item: identical shingle sets, then
    LSH candidates verified by exact Jaccard >= ``threshold``."""
    items = signed.items
    n = len(items)
    eligible = signed.sizes > 0
    group_key = signed.set_hashes.copy()
    if within_origin:
        origin_code = np.array([hash_origin(o) for o in items.origins], dtype=np.int64)
        with np.errstate(over="ignore"):
            group_key = group_key ^ origin_code
    order = np.lexsort((np.arange(n), group_key))
    order = order[eligible[order]]
    sorted_keys = group_key[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]) if n else []
    canonical = np.zeros(n, dtype=bool)
    group_active = np.zeros(n, dtype=bool)
    identical: list[tuple[int, int]] = []
    bounds = np.r_[starts, len(order)] if len(order) else np.array([0])
    for g in range(len(bounds) - 1):
        members = order[bounds[g] : bounds[g + 1]]
        first = int(members[0])
        canonical[first] = True
        if active[members].any():
            group_active[first] = True
            identical.extend((first, int(m)) for m in members[1:])
    keys = band_keys(signed.signatures, bands, rows)
    pairs, thinned = candidate_pairs(keys, canonical, group_active)
    if within_origin and len(pairs):
        origins = np.array(items.origins, dtype=object)
        pairs = pairs[origins[pairs[:, 0]] == origins[pairs[:, 1]]]
    ids = items.ids
    texts.ensure(ids[int(i)] for i in np.unique(pairs))
    sims = np.array([texts.jaccard(ids[int(a)], ids[int(b)]) for a, b in pairs], dtype=np.float64)
    accepted = pairs[sims >= threshold] if len(pairs) else pairs
    links = np.concatenate([np.array(identical, dtype=np.int64).reshape(-1, 2), accepted])
    return links, {
        "candidates": len(pairs),
        "accepted": len(accepted),
        "identical": len(identical),
        "thinned_buckets": thinned,
    }


def hash_origin(origin: str) -> int:
    return {"real": 0x2545F4914F6CDD1D, "synthetic": 0x1B873593CC9E2D51}.get(origin, 0x0BADC0DE)


def run_minhash(
    project: Project,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    field: str = "content",
    within_origin: bool = False,
    store: bool = True,
    rebuild: bool = False,
    progress: Progress | None = None,
    batch_size: int = 5000,
    examples: int = 5,
) -> DedupReport:
    started = time.perf_counter()
    check_field(field)
    progress = progress or (lambda done, total: None)
    shingler, signer = Shingler(), Signer()
    scheme = f"minhash/v{SHINGLE_VERSION}/{field}/w{shingler.size}/{signer.scheme}"
    bands, rows = lsh_params(threshold, signer.num_perm)
    params = {"scheme": scheme}
    texts = _Texts(project, field, shingler)
    existing = Existing()
    index_id = None
    computed = 0
    if store:
        with project.lake._transaction(project) as conn:
            index_id = find_index(conn, project, method="minhash", field=field,
                                  threshold=threshold, within_origin=within_origin,
                                  params=params, create=True)  # fmt: skip
        assert index_id is not None
        computed = _store_signatures(
            project, field, scheme, shingler, signer, texts, progress, batch_size
        )
        signed = _load_signed(project, field, scheme)
        if not rebuild:
            with project.lake._transaction(project) as conn:
                existing = load_existing(conn, project, index_id)
    else:
        signed = _sign_in_memory(project, field, shingler, signer, texts, progress, batch_size)
        computed = len(signed.items)
    items = signed.items
    state = plan(items, existing)
    links, details = find_links(signed, state.active, texts, threshold=threshold,
                                within_origin=within_origin, bands=bands, rows=rows)  # fmt: skip
    result = assemble(items, state, links)
    texts.ensure(items.ids[int(i)] for c in result.clusters for i in c.members)
    fill_similarities(
        result,
        lambda rep, members: [texts.jaccard(items.ids[rep], items.ids[int(m)]) for m in members],
    )
    delta = changes(items, existing, state, result)
    details.update(bands=bands, rows=rows, signatures_computed=computed)
    report = DedupReport(
        project=project.name, method="minhash", field=field, threshold=threshold,
        within_origin=within_origin, checked=len(items), newly_checked=int(state.active.sum()),
        clusters=len(result.clusters),
        duplicates=sum(len(c.members) - 1 for c in result.clusters),
        stored=store, seconds=0.0, details=details,
    )  # fmt: skip
    if store and index_id is not None:
        with project.lake._transaction(project) as conn:
            report.changes = write_changes(conn, project, index_id, delta, replace_all=rebuild)
            finish_index(conn, project, index_id, {**details, **report.changes})
            checked, clusters, duplicates, largest = stored_summary(
                conn, project, index_id, examples
            )
            report.checked, report.clusters, report.duplicates = checked, clusters, duplicates
            report.pending = pending_count(conn, project, index_id)
    else:
        largest = largest_clusters(result, items, examples)
    wanted = [x for cid, _, _, member in largest for x in (cid, member) if x is not None]
    with project.lake._transaction(project) as conn:
        found = fetch_texts(conn, project, field, wanted)
    report.examples = examples_from(largest, {k: v[0] for k, v in found.items()})
    report.seconds = round(time.perf_counter() - started, 3)
    return report
