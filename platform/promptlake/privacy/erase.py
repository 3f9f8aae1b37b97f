"""Erasure of one end user's data from a project, with a tombstone against its return.

``erase`` deletes, in one transaction, the person's sessions and every generation in them
with what hangs off those generations (scores, attachments, PII findings, vault entries
go by ``ON DELETE CASCADE``; later tables such as embeddings, dataset items and entity
mentions do too, and entities no remaining row mentions are pruned),
detaches other people's generations that named one of them as parent, records a keyed
hash of the end-user id (never the id itself) so that replayed imports and later logging
for that id are refused, and writes an audit entry with the counts. Each erased session
gets a tombstone too (a keyed hash of its id), so that journaled records of it are
recognised by ``replay`` on any machine; the journal files under this machine's
``PROMPTLAKE_HOME`` are rewritten without the person's records at once
(:mod:`promptlake.ingest.journal_erase`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from psycopg import sql

from ..errors import ValidationError
from ..ingest.journal_erase import purge, session_subject
from ..ingest.records import _Collector
from . import keys

if TYPE_CHECKING:
    from ..client import Project

COUNTED = ("scores", "attachments", "pii_findings", "vault")


@dataclass(frozen=True)
class ErasureReport:
    sessions: int
    generations: int
    scores: int
    attachments: int
    pii_findings: int
    vault: int
    tombstone: str  # hex of the keyed hash kept
    journal_records: int = 0  # records removed from local journal files
    journal_files: int = 0

    def __str__(self) -> str:
        return (
            f"erased {self.sessions} sessions, {self.generations} generations, {self.scores}"
            f" scores, {self.attachments} attachments, {self.pii_findings} PII findings,"
            f" {self.vault} vault entries, {self.journal_records} journaled records"
            f" ({self.journal_files} files rewritten); tombstone {self.tombstone[:16]}"
        )


def erase(project: Project, end_user_id: str) -> ErasureReport:
    """Remove everything stored about ``end_user_id`` in ``project`` (admins only)."""
    from ..access import require_member, write_audit

    c = _Collector(10_000)
    c.name("end_user_id", end_user_id)
    if c.problems:
        raise ValidationError(c.problems)
    require_member(project, ("admin",))
    master = project.lake.master_key()
    subject = keys.tombstone(master, project.id, end_user_id)
    pid = project.id
    with project.lake._transaction(project) as conn:
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS promptlake_erase (id uuid PRIMARY KEY) ON COMMIT DROP"
        )
        conn.execute(
            "INSERT INTO promptlake_erase SELECT g.id FROM generations g JOIN sessions s"
            " ON s.project_id = g.project_id AND s.id = g.session_id"
            " WHERE s.project_id = %s AND s.end_user_id = %s",
            (pid, end_user_id),
        )
        session_ids = {
            r[0]
            for r in conn.execute(
                "SELECT id FROM sessions WHERE project_id = %s AND end_user_id = %s",
                (pid, end_user_id),
            )
        }
        generation_ids = {r[0] for r in conn.execute("SELECT id FROM promptlake_erase")}
        counts = {}
        for table in COUNTED:
            query = sql.SQL(
                "SELECT count(*) FROM {} WHERE project_id = %s"
                " AND generation_id IN (SELECT id FROM promptlake_erase)"
            ).format(sql.Identifier(table))
            (counts[table],) = conn.execute(query, (pid,)).fetchone()
        conn.execute(
            "UPDATE generations SET parent_id = NULL WHERE project_id = %s"
            " AND parent_id IN (SELECT id FROM promptlake_erase)"
            " AND id NOT IN (SELECT id FROM promptlake_erase)",
            (pid,),
        )
        generations = conn.execute(
            "DELETE FROM generations WHERE project_id = %s"
            " AND id IN (SELECT id FROM promptlake_erase)",
            (pid,),
        ).rowcount
        sessions = conn.execute(
            "DELETE FROM sessions WHERE project_id = %s AND end_user_id = %s", (pid, end_user_id)
        ).rowcount
        from ..graph.store import prune

        prune(conn, pid)  # entities only the erased rows named go with them
        conn.execute(
            "INSERT INTO erasure_tombstones (project_id, subject_hash) VALUES (%s, %s)"
            " ON CONFLICT DO NOTHING",
            (pid, subject),
        )
        removal = purge(
            project.lake.settings.home, pid, end_users={end_user_id}, sessions=session_ids,
            generations=generation_ids,
        )  # fmt: skip
        _tombstone_sessions(conn, project, master, session_ids | removal.sessions)
        report = ErasureReport(sessions, generations, tombstone=subject.hex(),
                               journal_records=removal.records, journal_files=removal.files,
                               **counts)  # fmt: skip
        details = {k: v for k, v in report.__dict__.items() if k != "tombstone"}
        write_audit(conn, project, "erase", subject.hex(), details)
    return report


def _tombstone_sessions(conn, project: Project, master: bytes, session_ids: set) -> None:
    if not session_ids:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO erasure_tombstones (project_id, subject_hash) VALUES (%s, %s)"
            " ON CONFLICT DO NOTHING",
            [(project.id, keys.tombstone(master, project.id, session_subject(sid)))
             for sid in session_ids],
        )  # fmt: skip


def erased_sessions(project: Project, conn, session_ids: set) -> set:
    """Which of ``session_ids`` were erased from the project (their own tombstones)."""
    if not session_ids:
        return set()
    master = project.lake.master_key()
    hashes = {keys.tombstone(master, project.id, session_subject(s)): s for s in session_ids}
    rows = conn.execute(
        "SELECT subject_hash FROM erasure_tombstones WHERE project_id = %s"
        " AND subject_hash = ANY(%s)",
        (project.id, list(hashes)),
    ).fetchall()
    return {hashes[bytes(r[0])] for r in rows}


def erased_subjects(project: Project, conn, end_user_ids: set[str]) -> set[str]:
    """Which of ``end_user_ids`` were erased from the project (checked at ingest)."""
    if not end_user_ids:
        return set()
    master = project.lake.master_key()
    hashes = {keys.tombstone(master, project.id, uid): uid for uid in end_user_ids}
    rows = conn.execute(
        "SELECT subject_hash FROM erasure_tombstones WHERE project_id = %s"
        " AND subject_hash = ANY(%s)",
        (project.id, list(hashes)),
    ).fetchall()
    return {hashes[bytes(r[0])] for r in rows}
