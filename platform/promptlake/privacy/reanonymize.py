"""Bring stored rows under a (new) PII policy, and everything derived from their text.

``Project.anonymize()`` and ``promptlake anonymize`` run :func:`anonymize_stored`: the
generations not yet under the live policy, in batches that each commit (rows done carry
the policy version, so an interrupted run resumes where it stopped); in the same
transaction as a changed generation its full-text row is recomputed and its embeddings
are dropped, so a text search no longer finds a removed value and ``promptlake embed``
re-embeds it. Sessions and scores, which carry no policy version, are read in full on
every run and written where they change.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb

from ..ingest.records import GenerationRow, content_hashes
from .anonymize import INSERT_FINDINGS, Anonymizer, store_side_rows

if TYPE_CHECKING:
    from ..client import Project


@dataclass
class AnonymizeReport:
    policy_version: int
    rows: int = 0
    changed: int = 0
    findings: int = 0
    reindexed: int = 0  # full-text rows recomputed
    embeddings_dropped: int = 0  # vectors of changed text, for `promptlake embed` to redo
    sessions_changed: int = 0
    scores_changed: int = 0


_SELECT_STALE = (
    "SELECT id, input_text, input_messages, output, error, tags, metadata FROM generations"
    " WHERE project_id = %s AND pii_policy_version IS DISTINCT FROM %s AND id > %s"
    " ORDER BY id LIMIT %s FOR UPDATE"
)
_UPDATE_ROW = (
    "UPDATE generations SET input_text = %s, input_messages = %s, output = %s, error = %s,"
    " tags = %s, metadata = %s, input_hash = %s, output_hash = %s, content_hash = %s,"
    " pii_policy_version = %s WHERE project_id = %s AND id = %s"
)


def _refresh_derived(conn: Any, project: Project, changed: list[uuid.UUID]) -> tuple[int, int]:
    """Recompute the full-text rows of ``changed`` generations (with the language each was
    indexed in) and drop their embeddings, which ``promptlake embed`` fills in again."""
    from ..search.index import CONTENT_SQL, MAX_TSV_CHARS

    if not changed:
        return 0, 0
    reindexed = conn.execute(
        "UPDATE generation_search s SET tsv = to_tsvector(s.language::regconfig,"
        f" left({CONTENT_SQL}, {MAX_TSV_CHARS})), source_hash = g.content_hash,"
        " indexed_at = now() FROM generations g WHERE s.project_id = %s"
        " AND g.project_id = s.project_id AND g.id = s.generation_id"
        " AND s.generation_id = ANY(%s)",
        (project.id, changed),
    ).rowcount
    dropped = conn.execute(
        "DELETE FROM generation_embeddings WHERE project_id = %s AND generation_id = ANY(%s)",
        (project.id, changed),
    ).rowcount
    return reindexed, dropped


def anonymize_stored(
    project: Project,
    *,
    batch_size: int = 1000,
    progress: Callable[[int, int], None] | None = None,
) -> AnonymizeReport:
    """Apply the live policy to stored generations not yet under it (admins only), then to
    every session and score.

    Each batch is one transaction; rows done carry the policy version, so a second run
    (or a run after an interruption) continues with what is left and changes nothing
    already done. A generation whose text changed gets its full-text row recomputed and
    its embeddings dropped in the same transaction. Sessions and scores carry no policy
    version: each run reads them all and writes the ones that change."""
    from ..access import require_member, write_audit
    from . import policy as policies

    require_member(project, ("admin",))
    live = policies.current(project)
    anonymizer = Anonymizer(project, live, project.lake.master_key())
    report = AnonymizeReport(live.version)
    with project.lake._transaction(project) as conn:
        (total,) = conn.execute(
            "SELECT count(*) FROM generations WHERE project_id = %s"
            " AND pii_policy_version IS DISTINCT FROM %s",
            (project.id, live.version),
        ).fetchone()
    after = uuid.UUID(int=0)
    while True:
        with project.lake._transaction(project) as conn:
            batch = conn.execute(
                _SELECT_STALE, (project.id, live.version, after, batch_size)
            ).fetchall()
            if not batch:
                break
            done = [_anonymize_stored_row(anonymizer, *values) for values in batch]
            with conn.cursor() as cur:
                cur.executemany(
                    _UPDATE_ROW,
                    [(r.input_text, None if r.input_messages is None else Jsonb(r.input_messages),
                      r.output, r.error, r.tags, Jsonb(r.metadata), r.input_hash, r.output_hash,
                      r.content_hash, live.version, project.id, r.id) for r in done],
                )  # fmt: skip
            store_side_rows(conn, project, done)
            changed = [r.id for r in done if r.pii_findings]
            reindexed, dropped = _refresh_derived(conn, project, changed)
            report.reindexed += reindexed
            report.embeddings_dropped += dropped
            report.rows += len(done)
            report.changed += len(changed)
            report.findings += sum(len(r.pii_findings) for r in done)
            after = batch[-1][0]
            if report.rows == len(done):
                write_audit(conn, project, "anonymize", f"policy version {live.version}",
                            {"pending": total})  # fmt: skip
        if progress is not None:
            progress(report.rows, total)
    report.sessions_changed = _anonymize_sessions(project, anonymizer, batch_size)
    report.scores_changed, findings = _anonymize_scores(project, anonymizer, batch_size)
    report.findings += findings
    return report


def _anonymize_sessions(project: Project, anonymizer: Anonymizer, batch_size: int) -> int:
    changed = 0
    after = uuid.UUID(int=0)
    while True:
        with project.lake._transaction(project) as conn:
            rows = conn.execute(
                "SELECT id, name, tags, metadata FROM sessions WHERE project_id = %s AND id > %s"
                " ORDER BY id LIMIT %s FOR UPDATE",
                (project.id, after, batch_size),
            ).fetchall()
            if not rows:
                return changed
            after = rows[-1][0]
            updates = []
            for sid, name, tags, metadata in rows:
                values = {"name": name, "tags": list(tags or []), "metadata": metadata or {}}
                new = anonymizer.session(values)
                if new != values:
                    updates.append((new["name"], new["tags"], Jsonb(new["metadata"]),
                                    project.id, sid))  # fmt: skip
            if updates:
                with conn.cursor() as cur:
                    cur.executemany(
                        "UPDATE sessions SET name = %s, tags = %s, metadata = %s"
                        " WHERE project_id = %s AND id = %s",
                        updates,
                    )
            changed += len(updates)


def _anonymize_scores(project: Project, anonymizer: Anonymizer, batch_size: int) -> tuple[int, int]:
    changed = findings = 0
    after = uuid.UUID(int=0)
    while True:
        with project.lake._transaction(project) as conn:
            rows = conn.execute(
                "SELECT id, generation_id, comment, metadata FROM scores WHERE project_id = %s"
                " AND id > %s ORDER BY id LIMIT %s FOR UPDATE",
                (project.id, after, batch_size),
            ).fetchall()
            if not rows:
                return changed, findings
            after = rows[-1][0]
            updates, found = [], []
            for score_id, gid, comment, metadata in rows:
                values = {"id": score_id, "generation_id": gid, "comment": comment,
                          "metadata": metadata or {}}  # fmt: skip
                new = anonymizer.score(values)
                if new.get("pii_findings"):
                    updates.append((new["comment"], Jsonb(new["metadata"]), project.id, score_id))
                    found += new["pii_findings"]
            if updates:
                with conn.cursor() as cur:
                    cur.executemany(
                        "UPDATE scores SET comment = %s, metadata = %s"
                        " WHERE project_id = %s AND id = %s",
                        updates,
                    )
                    cur.executemany(INSERT_FINDINGS, found)
            changed += len(updates)
            findings += len(found)


def _anonymize_stored_row(
    anonymizer: Anonymizer, gid, text, messages, output, error, tags, metadata
) -> GenerationRow:
    row = GenerationRow(
        id=gid, session_id=None, parent_id=None, seq=None, prompt_version_id=None, model=None,
        run_id=None, name=None, input_messages=messages, input_text=text, output=output,
        params={}, prompt_tokens=None, completion_tokens=None, cost_usd=None, latency_ms=None,
        status="ok", error=error, origin="real", generator=None, lineage={}, input_hash=b"",
        output_hash=b"", content_hash=b"", tags=list(tags or []), metadata=metadata or {},
        created_at=None,  # type: ignore[arg-type]
    )  # fmt: skip
    anonymizer(row)
    row.input_hash, row.output_hash, row.content_hash = content_hashes(
        row.input_text, row.input_messages, row.output
    )
    return row


__all__ = ["AnonymizeReport", "anonymize_stored"]
