"""Clusters from accepted pairs, computed so that incremental runs equal a full run.

A cluster is a connected component of the graph whose edges are verified pairs (similarity
>= threshold); its representative is its earliest generation (``created_at``, then id), and
its id *is* that representative's id, so a full run and an incremental run produce the
same rows, not merely the same partition. Each member records its similarity to the
representative.

Incremental runs rest on one observation: an edge between two generations that were both
checked before, and whose texts have not changed, was already found then, so only pairs
touching an *active* generation need to be looked for. Active are the generations never
checked, those whose text changed since (their stored hash differs: anonymization
rewrites text), and every member of a cluster that is no longer intact (a member or the
representative was deleted, e.g. by an erasure, which can split a cluster). All other
clusters seed a union-find; new edges merge into it; only components containing an
active generation are written back, and only rows that actually change are written, so
running twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Items:
    """The generations in scope of one index, sorted by id."""

    ids: list[uuid.UUID]
    created: list[dt.datetime]
    origins: list[str]
    source_hashes: list[bytes]

    def __len__(self) -> int:
        return len(self.ids)

    def position(self) -> dict[uuid.UUID, int]:
        return {gid: i for i, gid in enumerate(self.ids)}


@dataclass
class Existing:
    """What an index stored before: members (generation -> cluster, similarity, hash) and
    clusters (id -> size, min_similarity)."""

    members: dict[uuid.UUID, tuple[uuid.UUID | None, float | None, bytes]] = field(
        default_factory=dict
    )
    clusters: dict[uuid.UUID, tuple[int, float]] = field(default_factory=dict)


@dataclass
class State:
    active: np.ndarray  # bool per item
    seeds: list[np.ndarray]  # member positions of intact clusters
    dirty_clusters: set[uuid.UUID]
    out_of_scope: list[uuid.UUID]  # member rows whose generation left the scope


def plan(items: Items, existing: Existing) -> State:
    """Which items must be (re)checked, and which stored clusters are still intact."""
    where = items.position()
    active = np.ones(len(items), dtype=bool)
    by_cluster: dict[uuid.UUID, list[int]] = {}
    dirty: set[uuid.UUID] = set()
    out_of_scope = []
    for gid, (cluster, _sim, source) in existing.members.items():
        i = where.get(gid)
        if i is None:
            out_of_scope.append(gid)
            if cluster is not None:
                dirty.add(cluster)
            continue
        if source != items.source_hashes[i]:
            if cluster is not None:
                dirty.add(cluster)
            continue
        active[i] = False
        if cluster is not None:
            by_cluster.setdefault(cluster, []).append(i)
    for cluster, positions in by_cluster.items():
        stored = existing.clusters.get(cluster)
        rep = where.get(cluster)
        if stored is None or stored[0] != len(positions) or rep is None or rep not in positions:
            dirty.add(cluster)
    dirty |= set(existing.clusters) - set(by_cluster)
    seeds = []
    for cluster, positions in by_cluster.items():
        if cluster in dirty:
            active[positions] = True
        else:
            seeds.append(np.array(positions, dtype=np.int64))
    return State(active, seeds, dirty, out_of_scope)


class UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass
class Cluster:
    representative: int
    members: np.ndarray  # positions, representative included
    similarities: np.ndarray  # to the representative, aligned with members


@dataclass
class Result:
    clusters: list[Cluster]  # components touched by this run (size >= 2)
    singletons: np.ndarray  # active positions without any duplicate


def assemble(items: Items, state: State, links: np.ndarray) -> Result:
    """Components of (intact clusters + ``links``) that contain an active item; their
    similarities are filled in afterwards by :func:`fill_similarities`."""
    uf = UnionFind(len(items))
    for seed in state.seeds:
        first = int(seed[0])
        for other in seed[1:]:
            uf.union(first, int(other))
    for a, b in links:
        uf.union(int(a), int(b))
    roots = np.fromiter((uf.find(i) for i in range(len(items))), dtype=np.int64, count=len(items))
    touched = np.unique(roots[state.active])
    groups: dict[int, list[int]] = {int(r): [] for r in touched}
    for i in np.flatnonzero(np.isin(roots, touched)):
        groups[int(roots[i])].append(int(i))
    clusters = []
    singles = []
    for positions in groups.values():
        if len(positions) == 1:
            singles.append(positions[0])
            continue
        rep = min(positions, key=lambda i: (items.created[i], items.ids[i]))
        members = np.array(sorted(positions), dtype=np.int64)
        clusters.append(Cluster(rep, members, np.ones(len(members))))
    return Result(clusters, np.array(sorted(singles), dtype=np.int64))


def fill_similarities(
    result: Result, similarity_to: Callable[[int, np.ndarray], np.ndarray]
) -> None:
    """Each member's similarity to its representative (1 for the representative)."""
    for c in result.clusters:
        sims = np.asarray(similarity_to(c.representative, c.members), dtype=np.float64)
        sims[c.members == c.representative] = 1.0
        c.similarities = sims


@dataclass
class Changes:
    """Rows to write so the stored index equals the result."""

    members: list[tuple[uuid.UUID, uuid.UUID | None, float | None, bytes]]
    clusters: list[tuple[uuid.UUID, int, float]]
    delete_clusters: list[uuid.UUID]
    delete_members: list[uuid.UUID]


def changes(items: Items, existing: Existing, state: State, result: Result) -> Changes:
    members: list[tuple[uuid.UUID, uuid.UUID | None, float | None, bytes]] = []
    clusters: list[tuple[uuid.UUID, int, float]] = []
    old_clusters: set[uuid.UUID] = set(state.dirty_clusters)
    new_ids: set[uuid.UUID] = set()

    def member(i: int, cluster: uuid.UUID | None, sim: float | None) -> None:
        gid = items.ids[i]
        row = (cluster, sim, items.source_hashes[i])
        before = existing.members.get(gid)
        if before is not None and before[0] is not None:
            old_clusters.add(before[0])
        if before != row:
            members.append((gid, *row))

    for c in result.clusters:
        cid = items.ids[c.representative]
        new_ids.add(cid)
        for i, sim in zip(c.members, c.similarities, strict=True):
            member(int(i), cid, float(sim))
        row = (len(c.members), float(c.similarities.min()))
        if existing.clusters.get(cid) != row:
            clusters.append((cid, *row))
    for i in result.singletons:
        member(int(i), None, None)
    delete = sorted((old_clusters - new_ids) & set(existing.clusters))
    return Changes(members, clusters, delete, sorted(state.out_of_scope))
