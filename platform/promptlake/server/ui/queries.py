"""The SQL behind the UI's pages, each under the signed-in principal's row-level security.

Every function takes a :class:`~promptlake.client.Project` whose lake acts as the
principal (``State.project_for``) and reads through ``lake._transaction(project)``, the
same per-transaction context every library read uses: rows another project owns, or that
the principal's role may not read, simply are not there (a guessed id gives a 404, never
another tenant's row). Queries are shaped for the page, not the table: one page of
sessions is chosen before its turns are counted, a generation's side rows come in one
round trip per kind, keyset order for the review queue.
"""

from __future__ import annotations

import datetime as dt
import difflib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from psycopg.rows import dict_row

if TYPE_CHECKING:
    from ...client import Project

SESSION_SORTS = {"started": "started_at", "user": "end_user_id", "name": "name"}
READ_ROLES = ("admin", "analyst")
QUEUE_COUNT_CAP = 10_000  # the queue's size is counted up to this ("10000+")


def rows(project: Project, query: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict]:
    with project.lake._transaction(project) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return list(cur.fetchall())


def one(project: Project, query: str, params: Sequence[Any] | dict[str, Any] = ()) -> dict | None:
    found = rows(project, query, params)
    return found[0] if found else None


# -- project --------------------------------------------------------------------------


def counts(project: Project) -> dict[str, int]:
    row = one(
        project,
        "SELECT (SELECT count(*) FROM sessions WHERE project_id = %(p)s) AS sessions,"
        " (SELECT count(*) FROM generations WHERE project_id = %(p)s) AS generations,"
        " (SELECT count(*) FROM scores WHERE project_id = %(p)s) AS scores,"
        " (SELECT count(*) FROM runs WHERE project_id = %(p)s) AS runs,"
        " (SELECT count(*) FROM dataset_versions WHERE project_id = %(p)s) AS dataset_versions",
        {"p": project.id},
    )
    return dict(row or {})


def score_names(project: Project, limit: int = 50) -> list[str]:
    """The names of the project's scores (for the trends chart's picker)."""
    found = rows(
        project,
        "SELECT DISTINCT name FROM scores WHERE project_id = %s ORDER BY name LIMIT %s",
        (project.id, limit),
    )
    return [r["name"] for r in found]


def usage(project: Project, role: str, since: dt.date) -> list[dict]:
    """Per day and model since ``since``: calls, tokens, cost, errors, p95 latency
    (``usage_daily``); viewers get ``project_usage`` (no percentiles there: its average)."""
    if role in READ_ROLES:
        return rows(
            project,
            "SELECT day, model, calls, errors, total_tokens AS tokens, cost_usd,"
            " latency_p95_ms FROM usage_daily WHERE project_id = %s AND day >= %s"
            " ORDER BY day, model",
            (project.id, since),
        )
    return rows(
        project,
        "SELECT day, model, calls, errors,"
        " coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0) AS tokens,"
        " coalesce(cost_usd, 0) AS cost_usd, NULL::float8 AS latency_p95_ms,"
        " avg_latency_ms FROM project_usage WHERE day >= %s ORDER BY day, model",
        (since,),
    )


# -- sessions -------------------------------------------------------------------------


def sessions_page(
    project: Project,
    *,
    sort: str,
    descending: bool,
    offset: int,
    limit: int,
    end_user: str | None = None,
) -> tuple[list[dict], int]:
    column = SESSION_SORTS[sort]
    direction = "DESC" if descending else "ASC"
    nulls = "NULLS LAST"
    where = "project_id = %(p)s" + (" AND end_user_id = %(u)s" if end_user else "")
    params = {"p": project.id, "u": end_user, "o": offset, "n": limit}
    found = rows(
        project,
        f"SELECT s.id, s.name, s.end_user_id, s.started_at, s.ended_at, s.tags, t.*"
        f" FROM (SELECT * FROM sessions WHERE {where}"
        f"        ORDER BY {column} {direction} {nulls}, id {direction}"
        f"        OFFSET %(o)s LIMIT %(n)s) s"
        " LEFT JOIN LATERAL (SELECT count(*) AS turns,"
        "  count(*) FILTER (WHERE g.status = 'error') AS errors,"
        "  coalesce(sum(g.total_tokens), 0) AS tokens, coalesce(sum(g.cost_usd), 0) AS cost_usd,"
        "  max(g.created_at) AS last_at FROM generations g"
        "  WHERE g.project_id = s.project_id AND g.session_id = s.id) t ON true"
        f" ORDER BY s.{column} {direction} {nulls}, s.id {direction}",
        params,
    )
    total = one(project, f"SELECT count(*) AS n FROM sessions WHERE {where}", params)
    return found, int(total["n"]) if total else 0


def session(project: Project, sid: uuid.UUID) -> dict | None:
    return one(
        project,
        "SELECT id, name, end_user_id, started_at, ended_at, tags, metadata FROM sessions"
        " WHERE project_id = %s AND id = %s",
        (project.id, sid),
    )


@dataclass
class TurnExtras:
    """A generation's side rows: scores, PII findings, attachments (no bytes), retrievals."""

    scores: list[dict] = field(default_factory=list)
    pii: list[dict] = field(default_factory=list)
    attachments: list[dict] = field(default_factory=list)
    retrievals: list[dict] = field(default_factory=list)


def extras(project: Project, gids: Sequence[uuid.UUID]) -> dict[uuid.UUID, TurnExtras]:
    out = {g: TurnExtras() for g in gids}
    if not gids:
        return out
    ids = list(gids)
    queries = {
        "scores": "SELECT generation_id, name, data_type, value_numeric, value_text, value_bool,"
        " source, author, comment, created_at FROM scores"
        " WHERE project_id = %s AND generation_id = ANY(%s) ORDER BY created_at, id",
        "pii": "SELECT generation_id, field, entity_type, operator, detector, policy_version"
        " FROM pii_findings WHERE project_id = %s AND generation_id = ANY(%s)"
        " ORDER BY field, start_offset",
        "attachments": "SELECT generation_id, id, kind, mime_type, size_bytes, uri, role,"
        " data IS NOT NULL AS stored FROM attachments"
        " WHERE project_id = %s AND generation_id = ANY(%s) ORDER BY created_at, id",
        "retrievals": "SELECT r.generation_id, r.rank, r.score, c.seq, c.text, d.title,"
        " d.source FROM generation_retrievals r"
        " JOIN document_chunks c ON c.project_id = r.project_id AND c.id = r.chunk_id"
        " JOIN documents d ON d.project_id = c.project_id AND d.id = c.document_id"
        " WHERE r.project_id = %s AND r.generation_id = ANY(%s) ORDER BY r.rank",
    }
    with project.lake._transaction(project) as conn, conn.cursor(row_factory=dict_row) as cur:
        for kind, query in queries.items():
            cur.execute(query, (project.id, ids))
            for row in cur.fetchall():
                getattr(out[row.pop("generation_id")], kind).append(row)
    return out


# -- a generation ---------------------------------------------------------------------


def prompt_version(project: Project, version_id: uuid.UUID | None) -> dict | None:
    """The version, its template's name, and a unified diff against the previous version."""
    if version_id is None:
        return None
    found = one(
        project,
        "SELECT v.id, v.version, v.template, v.created_at, t.name AS template_name,"
        " (SELECT p.template FROM prompt_versions p WHERE p.project_id = v.project_id"
        "   AND p.template_id = v.template_id AND p.version < v.version"
        "   ORDER BY p.version DESC LIMIT 1) AS previous,"
        " (SELECT max(p.version) FROM prompt_versions p WHERE p.project_id = v.project_id"
        "   AND p.template_id = v.template_id AND p.version < v.version) AS previous_version"
        " FROM prompt_versions v JOIN prompt_templates t"
        "   ON t.project_id = v.project_id AND t.id = v.template_id"
        " WHERE v.project_id = %s AND v.id = %s",
        (project.id, version_id),
    )
    if found is None:
        return None
    found["diff"] = []
    if found["previous"] is not None:
        found["diff"] = list(
            difflib.unified_diff(
                found["previous"].splitlines(),
                found["template"].splitlines(),
                f"v{found['previous_version']}",
                f"v{found['version']}",
                lineterm="",
            )
        )
    return found


def run(project: Project, run_id: uuid.UUID | None) -> dict | None:
    if run_id is None:
        return None
    return one(
        project,
        "SELECT r.id, r.name, r.status, r.mlflow_run_id, r.params, r.metadata, r.started_at,"
        " r.ended_at, m.name AS model FROM runs r"
        " LEFT JOIN models m ON m.project_id = r.project_id AND m.id = r.model_id"
        " WHERE r.project_id = %s AND r.id = %s",
        (project.id, run_id),
    )


def run_metrics(project: Project, run_id: uuid.UUID) -> dict | None:
    return one(project, "SELECT * FROM run_metrics WHERE run_id = %s", (run_id,))


def runs_page(project: Project, offset: int, limit: int) -> tuple[list[dict], int]:
    found = rows(
        project,
        "SELECT r.id, r.name, r.status, r.mlflow_run_id, r.started_at, r.ended_at,"
        " r.metadata -> 'metrics' AS metrics FROM runs r WHERE r.project_id = %s"
        " ORDER BY r.started_at DESC, r.id DESC OFFSET %s LIMIT %s",
        (project.id, offset, limit),
    )
    total = one(project, "SELECT count(*) AS n FROM runs WHERE project_id = %s", (project.id,))
    return found, int(total["n"]) if total else 0


def duplicates(project: Project, gid: uuid.UUID, content_hash: str) -> dict[str, Any]:
    """Exact duplicates (same content hash) and the near-duplicate clusters it is in."""
    exact = rows(
        project,
        "SELECT id, created_at FROM generations WHERE project_id = %s"
        " AND content_hash = decode(%s, 'hex') AND id <> %s ORDER BY created_at, id LIMIT 20",
        (project.id, content_hash, gid),
    )
    clusters = rows(
        project,
        "SELECT c.id, c.size, c.min_similarity, i.method, i.field, i.threshold,"
        " m.similarity FROM dedup_members m"
        " JOIN dedup_clusters c ON c.project_id = m.project_id AND c.index_id = m.index_id"
        "   AND c.id = m.cluster_id"
        " JOIN dedup_indexes i ON i.project_id = m.project_id AND i.id = m.index_id"
        " WHERE m.project_id = %s AND m.generation_id = %s",
        (project.id, gid),
    )
    for cluster in clusters:
        cluster["members"] = rows(
            project,
            "SELECT m.generation_id, m.similarity, left(coalesce(g.output, g.input_text, ''), 160)"
            " AS preview FROM dedup_members m JOIN generations g"
            "   ON g.project_id = m.project_id AND g.id = m.generation_id"
            " WHERE m.project_id = %s AND m.cluster_id = %s AND m.generation_id <> %s"
            " ORDER BY m.similarity DESC NULLS LAST, m.generation_id LIMIT 20",
            (project.id, cluster["id"], gid),
        )
    return {"exact": exact, "clusters": clusters}


def previews(project: Project, gids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict]:
    """Session, origin, tags and end user of search hits."""
    if not gids:
        return {}
    found = rows(
        project,
        "SELECT g.id, g.session_id, g.origin, g.tags, g.status, s.end_user_id FROM generations g"
        " LEFT JOIN sessions s ON s.project_id = g.project_id AND s.id = g.session_id"
        " WHERE g.project_id = %s AND g.id = ANY(%s)",
        (project.id, list(gids)),
    )
    return {r["id"]: r for r in found}


def attachment(project: Project, aid: uuid.UUID) -> dict | None:
    return one(
        project,
        "SELECT id, generation_id, kind, mime_type, data, uri FROM attachments"
        " WHERE project_id = %s AND id = %s",
        (project.id, aid),
    )


def models(project: Project) -> list[str]:
    return [
        r["name"]
        for r in rows(
            project, "SELECT name FROM models WHERE project_id = %s ORDER BY name", (project.id,)
        )
    ]


def lineage(project: Project) -> list[dict]:
    return rows(
        project,
        "SELECT * FROM dataset_lineage WHERE project_id = %s ORDER BY linked_at DESC",
        (project.id,),
    )


# -- review ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Queue:
    """Which generations the review queue steps through."""

    score: str = "quality"  # the score a reviewer adds; items with a human one are done
    model: str | None = None
    origin: str | None = None
    tag: str | None = None
    include_done: bool = False

    def params(self) -> dict[str, str]:
        out = {"score": self.score}
        for name in ("model", "origin", "tag"):
            value = getattr(self, name)
            if value:
                out[name] = value
        if self.include_done:
            out["done"] = "1"
        return out


def queue_item(
    project: Project, queue: Queue, after: uuid.UUID | None = None
) -> tuple[uuid.UUID | None, int]:
    """The next item after ``after`` (newest first) and how many are left in the queue."""
    conds = ["g.project_id = %(p)s"]
    params: dict[str, Any] = {"p": project.id, "score": queue.score, "after": after}
    if queue.model:
        conds.append(
            "g.model_id IN (SELECT id FROM models WHERE project_id = %(p)s AND name = %(model)s)"
        )
        params["model"] = queue.model
    if queue.origin:
        conds.append("g.origin = %(origin)s")
        params["origin"] = queue.origin
    if queue.tag:
        conds.append("g.tags @> ARRAY[%(tag)s]::text[]")
        params["tag"] = queue.tag
    if not queue.include_done:
        conds.append(
            "NOT EXISTS (SELECT 1 FROM scores s WHERE s.project_id = g.project_id"
            " AND s.generation_id = g.id AND s.name = %(score)s AND s.source = 'human')"
        )
    where = " AND ".join(conds)
    position = ""
    if after is not None:
        position = (
            " AND (g.created_at, g.id) < (SELECT created_at, id FROM generations"
            " WHERE project_id = %(p)s AND id = %(after)s)"
        )
    found = one(
        project,
        f"SELECT g.id FROM generations g WHERE {where}{position}"
        " ORDER BY g.created_at DESC, g.id DESC LIMIT 1",
        params,
    )
    left = one(
        project,
        f"SELECT count(*) AS n FROM (SELECT 1 FROM generations g WHERE {where}"
        f" LIMIT {QUEUE_COUNT_CAP + 1}) q",
        params,
    )
    return (found["id"] if found else None), int(left["n"]) if left else 0
