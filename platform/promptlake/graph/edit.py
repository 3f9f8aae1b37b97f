"""Correcting the graph by hand (merge, rename, relate) and merging by name similarity.

Entities a person touched become ``source = 'manual'``: pruning keeps them even when no
mention is left, and their aliases keep steering resolution (``resolve.Known``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg

from ..errors import Problem, ValidationError
from ..ids import uuid7
from .resolve import entity_key, namespace, similar_pairs

if TYPE_CHECKING:
    from ..client import Project
    from . import Entities

_ENDS = (
    "CASE WHEN r.subject_id = %(src)s THEN %(dst)s ELSE r.subject_id END",
    "CASE WHEN r.object_id = %(src)s THEN %(dst)s ELSE r.object_id END",
)
# the relation each of src's relations becomes (mentioned_with stays subject < object)
_MOVED = (
    "SELECT r.id AS old_id, r.predicate, r.source,"
    " CASE WHEN r.predicate = 'mentioned_with' THEN least({s}, {o}) ELSE {s} END AS s,"
    " CASE WHEN r.predicate = 'mentioned_with' THEN greatest({s}, {o}) ELSE {o} END AS o"
    " FROM entity_relations r WHERE r.project_id = %(p)s"
    " AND %(src)s IN (r.subject_id, r.object_id)"
).format(s=_ENDS[0], o=_ENDS[1])


def merge(conn: psycopg.Connection, project_id: uuid.UUID, src: uuid.UUID, dst: uuid.UUID) -> None:
    params = {"p": project_id, "src": src, "dst": dst}
    conn.execute(
        f"INSERT INTO entity_relations (project_id, id, subject_id, predicate, object_id, source)"
        f" SELECT DISTINCT ON (m.s, m.predicate, m.o) %(p)s::uuid, md5(%(p)s::text || m.s::text"
        f" || m.predicate || m.o::text)::uuid, m.s, m.predicate, m.o, m.source"
        f" FROM ({_MOVED}) m WHERE m.s <> m.o ON CONFLICT DO NOTHING",
        params,
    )
    conn.execute(
        f"INSERT INTO relation_support (project_id, relation_id, generation_id)"
        f" SELECT %(p)s, nr.id, s.generation_id FROM ({_MOVED}) m"
        " JOIN relation_support s ON s.project_id = %(p)s AND s.relation_id = m.old_id"
        " JOIN entity_relations nr ON nr.project_id = %(p)s AND nr.subject_id = m.s"
        " AND nr.predicate = m.predicate AND nr.object_id = m.o"
        " WHERE m.s <> m.o ON CONFLICT DO NOTHING",
        params,
    )
    conn.execute(
        "DELETE FROM entity_relations WHERE project_id = %(p)s"
        " AND %(src)s IN (subject_id, object_id)",
        params,
    )
    conn.execute(
        "UPDATE entity_mentions SET entity_id = %(dst)s WHERE project_id = %(p)s"
        " AND entity_id = %(src)s",
        params,
    )
    conn.execute(
        "UPDATE entities d SET source = 'manual', updated_at = now(), aliases = ARRAY("
        " SELECT DISTINCT a FROM unnest(d.aliases || s.name || s.aliases) a WHERE a <> d.name"
        " ORDER BY a) FROM entities s WHERE d.project_id = %(p)s AND d.id = %(dst)s"
        " AND s.project_id = %(p)s AND s.id = %(src)s",
        params,
    )
    conn.execute("DELETE FROM entities WHERE project_id = %(p)s AND id = %(src)s", params)


def rename(
    conn: psycopg.Connection, project: Project, eid: uuid.UUID, kind: str, name: str
) -> None:
    key = entity_key(kind, name)
    clash = conn.execute(
        "SELECT name FROM entities WHERE project_id = %s AND kind = %s AND key = %s AND id <> %s",
        (project.id, kind, key, eid),
    ).fetchone()
    if clash:
        raise ValidationError([Problem(
            "name", f"another {kind} entity is already named {clash[0]!r}: merge them"
            " instead (`promptlake entities merge`)",
        )])  # fmt: skip
    conn.execute(
        "UPDATE entities SET aliases = ARRAY(SELECT DISTINCT a FROM unnest(aliases || name) a"
        " WHERE a <> %(name)s ORDER BY a), name = %(name)s, key = %(key)s, source = 'manual',"
        " updated_at = now() WHERE project_id = %(p)s AND id = %(e)s",
        {"p": project.id, "e": eid, "name": name, "key": key},
    )


def relate(
    conn: psycopg.Connection,
    project_id: uuid.UUID,
    subject: uuid.UUID,
    predicate: str,
    obj: uuid.UUID,
    generations: Sequence[uuid.UUID],
) -> uuid.UUID:
    conn.execute(
        "INSERT INTO entity_relations (project_id, id, subject_id, predicate, object_id, source)"
        " VALUES (%s, %s, %s, %s, %s, 'manual') ON CONFLICT DO NOTHING",
        (project_id, uuid7(), subject, predicate, obj),
    )
    row = conn.execute(
        "SELECT id FROM entity_relations WHERE project_id = %s AND subject_id = %s"
        " AND predicate = %s AND object_id = %s",
        (project_id, subject, predicate, obj),
    ).fetchone()
    assert row is not None
    if generations:
        found = conn.execute(
            "SELECT count(*) FROM generations WHERE project_id = %s AND id = ANY(%s)",
            (project_id, list(generations)),
        ).fetchone()
        if found is None or found[0] != len(set(generations)):
            raise ValidationError(
                [Problem("generations", "not all are generations of this project")]
            )
        conn.executemany(
            "INSERT INTO relation_support (project_id, relation_id, generation_id)"
            " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            [(project_id, row[0], g) for g in set(generations)],
        )
    return row[0]


def resolve_by_embedding(
    entities: Entities,
    *,
    embedder: Any,
    threshold: float,
    kinds: tuple[str, ...],
    apply: bool,
    limit: int,
) -> list[tuple[str, str, float]]:
    from ..access import require_member
    from ..search.embedders import get_embedder
    from ..search.query import _default_embedder
    from .query import list_entities

    project = entities.project
    require_member(project, ("admin",) if apply else ("admin", "analyst"))
    with project.lake._transaction(project) as conn:
        if embedder is None:
            embedder = _default_embedder(conn, project)
        known = [e for k in kinds for e in list_entities(conn, project, kind=k, limit=limit)]
    model = get_embedder(embedder)
    merges: list[tuple[str, str, float]] = []
    by_space: dict[str, list] = {}
    for e in known:
        by_space.setdefault(namespace(e.kind), []).append(e)
    for group in by_space.values():
        if len(group) < 2:
            continue
        vectors = np.asarray(model.embed([e.name for e in group]), dtype=np.float32)
        gone: set[uuid.UUID] = set()
        for i, j, sim in similar_pairs([e.name for e in group], vectors, threshold):
            a, b = group[i], group[j]
            if a.id in gone or b.id in gone:
                continue
            keep, drop = (
                (a, b) if (a.generations, len(a.name)) >= (b.generations, len(b.name)) else (b, a)
            )
            merges.append((keep.name, drop.name, round(sim, 4)))
            gone.add(drop.id)
            if apply:
                entities.merge(drop.id, keep.id)
    return merges
