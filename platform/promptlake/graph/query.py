"""Reading the entity graph: entities, mentions, neighbours and paths, in recursive SQL.

Edges are ``entity_relations`` rows read in both directions (``mentioned_with`` is
symmetric and stored once). Walks are ``WITH RECURSIVE`` queries with PostgreSQL's
``SEARCH BREADTH FIRST`` and ``CYCLE`` clauses; each step looks edges up through the
indexes on ``(project_id, subject_id, ...)`` and ``(project_id, object_id)`` in a
``LATERAL`` subquery, so a walk touches only the nodes it reaches.

A path is searched by iterative deepening, one query per length (1, 2, ... up to
``max_depth``), and each query meets in the middle: it walks half the length from each
end and joins the two frontiers, the longer half from the end with fewer edges. The first
length that joins is the shortest path.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg

from ..db.models import ENTITY_KINDS
from ..errors import NotFoundError, Problem, ValidationError
from .resolve import entity_key

if TYPE_CHECKING:
    from ..client import Project


@dataclass(frozen=True)
class EntityInfo:
    id: uuid.UUID
    kind: str
    name: str
    aliases: list[str]
    source: str
    mentions: int
    generations: int

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "id": str(self.id)}


@dataclass(frozen=True)
class Neighbor:
    id: uuid.UUID
    kind: str
    name: str
    predicate: str
    support: int  # generations supporting the edge (depth 1), or the hop count's first edge
    depth: int


@dataclass(frozen=True)
class MentionInfo:
    generation_id: uuid.UUID
    field: str
    start: int
    end: int
    surface: str
    confidence: float
    extractor: str
    created_at: dt.datetime


EDGES = (
    "SELECT r.object_id AS other, r.predicate FROM entity_relations r"
    " WHERE r.project_id = %(p)s AND r.subject_id = {node}"
    " UNION ALL SELECT r.subject_id, r.predicate FROM entity_relations r"
    " WHERE r.project_id = %(p)s AND r.object_id = {node}"
)


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in ENTITY_KINDS:
        raise ValidationError([Problem("kind", f"must be one of {', '.join(ENTITY_KINDS)}")])


def find_entity(
    conn: psycopg.Connection,
    project: Project,
    ref: Any,
    kind: str | None = None,
    what: str = "entity",
) -> tuple[uuid.UUID, str, str]:
    """(id, kind, name) of the entity ``ref`` names: its id, its name or one of its
    aliases (compared as resolution does); an error if none or several match."""
    _check_kind(kind)
    if isinstance(ref, EntityInfo | Neighbor):
        ref = ref.id
    if isinstance(ref, uuid.UUID):
        rows = conn.execute(
            "SELECT id, kind, name FROM entities WHERE project_id = %s AND id = %s",
            (project.id, ref),
        ).fetchall()
    else:
        if not isinstance(ref, str) or not ref.strip() or "\x00" in ref:
            raise ValidationError([Problem(what, "must be an entity id or a name")])
        try:
            rows = conn.execute(
                "SELECT id, kind, name FROM entities WHERE project_id = %s AND id = %s",
                (project.id, uuid.UUID(ref)),
            ).fetchall()
        except ValueError:
            rows = []
        if not rows:
            keys = sorted({entity_key(k, ref) for k in ENTITY_KINDS})
            rows = conn.execute(
                "SELECT id, kind, name FROM entities WHERE project_id = %s"
                " AND (key = ANY(%s) OR EXISTS (SELECT 1 FROM unnest(aliases) a"
                "  WHERE lower(a) = lower(%s)))"
                " AND (%s::text IS NULL OR kind = %s) ORDER BY kind, id",
                (project.id, keys, ref, kind, kind),
            ).fetchall()
    if kind is not None:
        rows = [r for r in rows if r[1] == kind]
    if not rows:
        raise NotFoundError(
            f"no entity {ref!r} in project {project.name} (`promptlake entities list` shows them)"
        )
    if len(rows) > 1:
        kinds = ", ".join(f"{r[1]} {r[2]!r}" for r in rows)
        raise ValidationError(
            [Problem(what, f"{ref!r} names several entities ({kinds}): pass kind=")]
        )
    return rows[0][0], rows[0][1], rows[0][2]


def list_entities(
    conn: psycopg.Connection,
    project: Project,
    *,
    kind: str | None = None,
    match: str | None = None,
    limit: int = 50,
) -> list[EntityInfo]:
    """Entities by how many generations mention them, most first."""
    _check_kind(kind)
    if not 1 <= limit <= 100_000:
        raise ValidationError([Problem("limit", "must be between 1 and 100000")])
    rows = conn.execute(
        "SELECT e.id, e.kind, e.name, e.aliases, e.source, coalesce(c.mentions, 0),"
        " coalesce(c.generations, 0) FROM entities e"
        " LEFT JOIN (SELECT entity_id, count(*) AS mentions,"
        "  count(DISTINCT generation_id) AS generations FROM entity_mentions"
        "  WHERE project_id = %(p)s GROUP BY entity_id) c ON c.entity_id = e.id"
        " WHERE e.project_id = %(p)s AND (%(kind)s::text IS NULL OR e.kind = %(kind)s)"
        " AND (%(match)s::text IS NULL OR strpos(lower(e.name), lower(%(match)s)) > 0)"
        " ORDER BY 7 DESC, e.name, e.id LIMIT %(limit)s",
        {"p": project.id, "kind": kind, "match": match, "limit": limit},
    )
    return [EntityInfo(r[0], r[1], r[2], list(r[3]), r[4], r[5], r[6]) for r in rows]


def entity_info(conn: psycopg.Connection, project: Project, eid: uuid.UUID) -> EntityInfo:
    r = conn.execute(
        "SELECT e.id, e.kind, e.name, e.aliases, e.source,"
        " (SELECT count(*) FROM entity_mentions m WHERE m.project_id = e.project_id"
        "  AND m.entity_id = e.id),"
        " (SELECT count(DISTINCT generation_id) FROM entity_mentions m"
        "  WHERE m.project_id = e.project_id AND m.entity_id = e.id)"
        " FROM entities e WHERE e.project_id = %s AND e.id = %s",
        (project.id, eid),
    ).fetchone()
    assert r is not None
    return EntityInfo(r[0], r[1], r[2], list(r[3]), r[4], r[5], r[6])


def mentions(
    conn: psycopg.Connection, project: Project, eid: uuid.UUID, limit: int = 20
) -> list[MentionInfo]:
    rows = conn.execute(
        "SELECT generation_id, field, start_offset, end_offset, surface, confidence, extractor,"
        " created_at FROM entity_mentions WHERE project_id = %s AND entity_id = %s"
        " ORDER BY created_at DESC, generation_id, start_offset LIMIT %s",
        (project.id, eid, limit),
    )
    return [MentionInfo(*r) for r in rows]


def neighbors(
    conn: psycopg.Connection,
    project: Project,
    eid: uuid.UUID,
    *,
    depth: int = 1,
    predicate: str | None = None,
    limit: int = 50,
) -> list[Neighbor]:
    """Entities within ``depth`` edges of ``eid``; at depth 1 with the number of
    generations supporting each edge, most supported first."""
    if not 1 <= depth <= 4:
        raise ValidationError([Problem("depth", "must be between 1 and 4")])
    if not 1 <= limit <= 10_000:
        raise ValidationError([Problem("limit", "must be between 1 and 10000")])
    params = {"p": project.id, "e": eid, "pred": predicate, "d": depth, "limit": limit}
    if depth == 1:
        # MATERIALIZED: the edges of one node first, whatever the statistics say
        rows = conn.execute(
            "WITH n AS MATERIALIZED ("
            " SELECT r.object_id AS other, r.predicate, r.id AS rid FROM entity_relations r"
            "  WHERE r.project_id = %(p)s AND r.subject_id = %(e)s"
            "  AND (%(pred)s::text IS NULL OR r.predicate = %(pred)s)"
            " UNION ALL SELECT r.subject_id, r.predicate, r.id FROM entity_relations r"
            "  WHERE r.project_id = %(p)s AND r.object_id = %(e)s"
            "  AND (%(pred)s::text IS NULL OR r.predicate = %(pred)s)),"
            " c AS MATERIALIZED (SELECT n.other, n.predicate, (SELECT count(*)"
            "  FROM relation_support s WHERE s.project_id = %(p)s AND s.relation_id = n.rid)"
            "  AS support FROM n)"
            " SELECT e.id, e.kind, e.name, c.predicate, c.support, 1 FROM c"
            " JOIN entities e ON e.project_id = %(p)s AND e.id = c.other"
            " ORDER BY c.support DESC, e.name, e.id LIMIT %(limit)s",
            params,
        ).fetchall()
        return [Neighbor(*r) for r in rows]
    edges = EDGES.format(node="w.id")
    rows = conn.execute(
        "WITH RECURSIVE walk(id, depth, predicate) AS ("
        " SELECT %(e)s::uuid, 0, NULL::text"
        " UNION ALL SELECT x.other, w.depth + 1, coalesce(w.predicate, x.predicate)"
        f"  FROM walk w CROSS JOIN LATERAL ({edges}) x"
        "  WHERE w.depth < %(d)s AND (%(pred)s::text IS NULL OR x.predicate = %(pred)s)"
        ") SEARCH BREADTH FIRST BY id SET ord CYCLE id SET is_cycle USING path,"
        " reached AS (SELECT id, min(depth) AS depth, min(predicate) AS predicate FROM walk"
        "  WHERE NOT is_cycle AND id <> %(e)s GROUP BY id)"
        " SELECT e.id, e.kind, e.name, r.predicate, 0, r.depth FROM reached r"
        " JOIN entities e ON e.project_id = %(p)s AND e.id = r.id"
        " ORDER BY r.depth, e.name, e.id LIMIT %(limit)s",
        params,
    ).fetchall()
    return [Neighbor(*r) for r in rows]


def _degree(conn: psycopg.Connection, project: Project, eid: uuid.UUID) -> int:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM entity_relations WHERE project_id = %(p)s"
        " AND subject_id = %(e)s) + (SELECT count(*) FROM entity_relations"
        " WHERE project_id = %(p)s AND object_id = %(e)s)",
        {"p": project.id, "e": eid},
    ).fetchone()
    return int(row[0]) if row else 0


def _walk_sql(name: str, start: str, half: str) -> str:
    edges = EDGES.format(node="w.id")
    return (
        f"{name}(id, depth, nodes, predicates) AS ("
        f" SELECT {start}::uuid, 0, ARRAY[{start}::uuid], ARRAY[]::text[]"
        " UNION ALL SELECT x.other, w.depth + 1, w.nodes || x.other, w.predicates || x.predicate"
        f"  FROM {name} w CROSS JOIN LATERAL ({edges}) x WHERE w.depth < {half}"
        ") SEARCH BREADTH FIRST BY id SET ord CYCLE id SET is_cycle USING visited"
    )


def path(
    conn: psycopg.Connection,
    project: Project,
    source: uuid.UUID,
    target: uuid.UUID,
    *,
    max_depth: int = 4,
) -> list[tuple[uuid.UUID, str, str, str | None]] | None:
    """The shortest path from ``source`` to ``target`` as ``(id, kind, name, predicate of
    the edge into it)`` per node, or None when none is at most ``max_depth`` edges long."""
    if not 1 <= max_depth <= 6:
        raise ValidationError([Problem("max_depth", "must be between 1 and 6")])
    if source == target:
        nodes, predicates = [source], []
    else:
        small, large = (source, target)
        if _degree(conn, project, target) < _degree(conn, project, source):
            small, large = target, source
        found = None
        for length in range(1, max_depth + 1):
            near, far = (length + 1) // 2, length // 2  # the longer half from the smaller end
            row = conn.execute(
                "WITH RECURSIVE "
                + _walk_sql("a", "%(a)s", "%(ha)s")
                + ", "
                + _walk_sql("b", "%(b)s", "%(hb)s")
                + " SELECT a.nodes, a.predicates, b.nodes, b.predicates FROM a JOIN b"
                " ON a.id = b.id AND a.depth = %(ha)s AND b.depth = %(hb)s"
                " WHERE NOT a.is_cycle AND NOT b.is_cycle"
                " AND NOT (a.nodes[1:%(ha)s] && b.nodes[1:%(hb)s]) LIMIT 1",
                {"p": project.id, "a": small, "b": large, "ha": near, "hb": far},
            ).fetchone()
            if row is not None:
                found = row
                break
        if found is None:
            return None
        a_nodes, a_preds, b_nodes, b_preds = found
        nodes = list(a_nodes) + list(reversed(b_nodes[:-1]))
        predicates = list(a_preds) + list(reversed(b_preds))
        if nodes[0] != source:
            nodes.reverse()
            predicates.reverse()
    names = {
        r[0]: (r[1], r[2])
        for r in conn.execute(
            "SELECT id, kind, name FROM entities WHERE project_id = %s AND id = ANY(%s)",
            (project.id, nodes),
        )
    }
    return [
        (n, *names[n], predicates[i - 1] if i else None)  # type: ignore[misc]
        for i, n in enumerate(nodes)
    ]
