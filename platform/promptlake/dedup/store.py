"""Reading and writing dedup state: indexes, members, clusters, signatures.

All of it runs in the project's row-level security context (``Lake._transaction``), so a
dedup run can only ever see and write one project's rows. Bulk writes travel by binary
COPY into a session-local staging table and reach the real table through one
``INSERT ... ON CONFLICT DO UPDATE`` (PostgreSQL refuses ``COPY FROM`` into a table with
row-level security), the same pattern as the ingest writer.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from ..ids import uuid7
from .clusters import Changes, Existing, Items
from .shingles import FIELD_HASH_SQL, FIELD_TEXT_SQL

if TYPE_CHECKING:
    from ..client import Project


def index_key(method: str, field: str, threshold: float, within_origin: bool, params: dict) -> str:
    scope = "origin" if within_origin else "all"
    extra = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return f"{method}/{field}/{threshold:g}/{scope}/{extra}"


def find_index(
    conn: psycopg.Connection,
    project: Project,
    *,
    method: str,
    field: str,
    threshold: float,
    within_origin: bool,
    params: dict[str, Any],
    create: bool,
) -> uuid.UUID | None:
    """The id of the index with these settings; created if missing and ``create``."""
    key = index_key(method, field, threshold, within_origin, params)
    if create:
        conn.execute(
            "INSERT INTO dedup_indexes (project_id, id, key, method, field, threshold,"
            " within_origin, params) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (project_id, key) DO NOTHING",
            (project.id, uuid7(), key, method, field, threshold, within_origin, Jsonb(params)),
        )
    row = conn.execute(
        "SELECT id FROM dedup_indexes WHERE project_id = %s AND key = %s", (project.id, key)
    ).fetchone()
    return row[0] if row else None


def load_existing(conn: psycopg.Connection, project: Project, index_id: uuid.UUID) -> Existing:
    existing = Existing()
    rows = conn.execute(
        "SELECT generation_id, cluster_id, similarity, source_hash FROM dedup_members"
        " WHERE project_id = %s AND index_id = %s",
        (project.id, index_id),
    )
    for gid, cluster, sim, source in rows:
        existing.members[gid] = (cluster, sim, bytes(source))
    rows = conn.execute(
        "SELECT id, size, min_similarity FROM dedup_clusters"
        " WHERE project_id = %s AND index_id = %s",
        (project.id, index_id),
    )
    for cid, size, low in rows:
        existing.clusters[cid] = (size, low)
    return existing


def load_items(conn: psycopg.Connection, project: Project, field: str) -> Items:
    """Every generation of the project, for methods that need no per-row preparation."""
    rows = conn.execute(
        sql.SQL(
            "SELECT g.id, g.created_at, g.origin, {} FROM generations g"
            " WHERE g.project_id = %s ORDER BY g.id"
        ).format(sql.SQL(FIELD_HASH_SQL[field])),
        (project.id,),
    ).fetchall()
    return Items([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                 [bytes(r[3]) for r in rows])  # fmt: skip


def fetch_texts(
    conn: psycopg.Connection, project: Project, field: str, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, bytes]]:
    """id -> (text of ``field``, its ingest hash)."""
    if not ids:
        return {}
    query = sql.SQL(
        "SELECT g.id, {text}, {hash} FROM generations g WHERE g.project_id = %s AND g.id = ANY(%s)"
    ).format(text=sql.SQL(FIELD_TEXT_SQL[field]), hash=sql.SQL(FIELD_HASH_SQL[field]))
    rows = conn.execute(query, (project.id, list(ids))).fetchall()
    return {r[0]: (r[1] or "", bytes(r[2])) for r in rows}


def _stage(
    conn: psycopg.Connection,
    table: str,
    columns: Sequence[str],
    types: Sequence[str],
    rows: Iterable,
) -> str:
    """COPY ``rows`` into a session-local copy of ``table``; returns the staging table name."""
    stage = f"promptlake_stage_{table}"
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS)"
                " ON COMMIT DELETE ROWS"
            ).format(sql.Identifier(stage), sql.Identifier(table))
        )
        cur.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(stage)))
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.Identifier(stage), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        with cur.copy(copy_sql) as copy:
            copy.set_types(list(types))
            for row in rows:
                copy.write_row(row)
    return stage


def upsert(
    conn: psycopg.Connection,
    table: str,
    columns: Sequence[str],
    types: Sequence[str],
    key: Sequence[str],
    rows: list[tuple],
    touch: str | None = None,
) -> int:
    """Insert or update ``rows`` (keyed by ``key``); returns how many rows were written."""
    if not rows:
        return 0
    stage = _stage(conn, table, columns, types, rows)
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    updates = [
        sql.SQL("{} = excluded.{}").format(sql.Identifier(c), sql.Identifier(c))
        for c in columns
        if c not in key
    ]
    if touch:
        updates.append(sql.SQL("{} = now()").format(sql.Identifier(touch)))
    query = sql.SQL(
        "INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage}"
        " ON CONFLICT ({key}) DO UPDATE SET {updates}"
    ).format(
        table=sql.Identifier(table),
        cols=cols,
        stage=sql.Identifier(stage),
        key=sql.SQL(", ").join(map(sql.Identifier, key)),
        updates=sql.SQL(", ").join(updates),
    )
    return conn.execute(query).rowcount


MEMBER_COLUMNS = ("project_id", "generation_id", "index_id", "cluster_id", "similarity",
                  "source_hash")  # fmt: skip
MEMBER_TYPES = ("uuid", "uuid", "uuid", "uuid", "float8", "bytea")
CLUSTER_COLUMNS = ("project_id", "index_id", "id", "size", "min_similarity")
CLUSTER_TYPES = ("uuid", "uuid", "uuid", "int4", "float8")


def write_changes(
    conn: psycopg.Connection,
    project: Project,
    index_id: uuid.UUID,
    changes: Changes,
    *,
    replace_all: bool = False,
) -> dict[str, int]:
    """Apply ``changes`` in the current transaction; counts of rows written."""
    pid = project.id
    if replace_all:
        conn.execute(
            "DELETE FROM dedup_members WHERE project_id = %s AND index_id = %s", (pid, index_id)
        )
        conn.execute(
            "DELETE FROM dedup_clusters WHERE project_id = %s AND index_id = %s", (pid, index_id)
        )
    deleted = 0
    if changes.delete_clusters:
        deleted = conn.execute(
            "DELETE FROM dedup_clusters WHERE project_id = %s AND index_id = %s AND id = ANY(%s)",
            (pid, index_id, changes.delete_clusters),
        ).rowcount
    if changes.delete_members:
        conn.execute(
            "DELETE FROM dedup_members WHERE project_id = %s AND index_id = %s"
            " AND generation_id = ANY(%s)",
            (pid, index_id, changes.delete_members),
        )
    clusters = upsert(
        conn, "dedup_clusters", CLUSTER_COLUMNS, CLUSTER_TYPES, ("project_id", "index_id", "id"),
        [(pid, index_id, cid, size, low) for cid, size, low in changes.clusters],
        touch="updated_at",
    )  # fmt: skip
    members = upsert(
        conn, "dedup_members", MEMBER_COLUMNS, MEMBER_TYPES,
        ("project_id", "generation_id", "index_id"),
        [(pid, gid, index_id, cid, sim, source) for gid, cid, sim, source in changes.members],
        touch="checked_at",
    )  # fmt: skip
    return {
        "members_written": members,
        "members_removed": len(changes.delete_members),
        "clusters_written": clusters,
        "clusters_removed": deleted,
    }


def finish_index(
    conn: psycopg.Connection, project: Project, index_id: uuid.UUID, figures: dict[str, Any]
) -> None:
    conn.execute(
        "UPDATE dedup_indexes SET last_run = %s, updated_at = now()"
        " WHERE project_id = %s AND id = %s",
        (Jsonb(figures), project.id, index_id),
    )


def stored_summary(
    conn: psycopg.Connection, project: Project, index_id: uuid.UUID, examples: int
) -> tuple[int, int, int, list[tuple[uuid.UUID, int, float, uuid.UUID | None]]]:
    """(checked, clusters, duplicates, largest clusters as (id, size, min similarity,
    least similar member)) of a stored index."""
    checked, clusters, duplicates = conn.execute(
        "SELECT count(*), count(DISTINCT cluster_id),"
        " count(*) FILTER (WHERE cluster_id IS NOT NULL AND cluster_id <> generation_id)"
        " FROM dedup_members WHERE project_id = %s AND index_id = %s",
        (project.id, index_id),
    ).fetchone()
    largest = conn.execute(
        "SELECT c.id, c.size, c.min_similarity, (SELECT m.generation_id FROM dedup_members m"
        "  WHERE m.project_id = c.project_id AND m.index_id = c.index_id AND m.cluster_id = c.id"
        "  AND m.generation_id <> c.id ORDER BY m.similarity, m.generation_id LIMIT 1)"
        " FROM dedup_clusters c WHERE c.project_id = %s AND c.index_id = %s"
        " ORDER BY c.size DESC, c.id LIMIT %s",
        (project.id, index_id, examples),
    ).fetchall()
    return checked, clusters, duplicates, [tuple(r) for r in largest]  # type: ignore[misc]


def pending_count(conn: psycopg.Connection, project: Project, index_id: uuid.UUID) -> int:
    """Generations of the project the index has not checked (logged since, for one).
    Members always are generations of the project (foreign key), so two counts suffice."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM generations WHERE project_id = %(p)s)"
        " - (SELECT count(*) FROM dedup_members WHERE project_id = %(p)s AND index_id = %(i)s)",
        {"p": project.id, "i": index_id},
    ).fetchone()
    return max(int(row[0]), 0) if row else 0


def bulk_plans(conn: psycopg.Connection) -> None:
    """Prefer hash joins for this transaction's whole-project joins: right after a bulk
    load the statistics may still describe empty tables, and a nested loop over 100k rows
    then takes minutes instead of a fraction of a second."""
    conn.execute("SET LOCAL enable_nestloop = off")
