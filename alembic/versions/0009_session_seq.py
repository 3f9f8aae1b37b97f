"""Turn order under concurrency: ``seq`` unique within a session, taken from a counter.

Each process used to number a session's turns itself (from ``max(seq) + 1`` read when it
opened the session, or from 0 in the bulk writer), so four processes logging into one
session stored 240 rows with 68 distinct positions. Now:

- ``sessions.next_seq`` is the next free position; ``promptlake_claim_seq(ids, counts,
  floors)`` takes ``counts[i]`` positions of session ``ids[i]`` in the caller's transaction
  (the session row stays locked until it commits, so concurrent writers of one session
  take disjoint ranges, in commit order) and moves the counter past ``floors[i]`` (the
  positions a caller set itself). SECURITY DEFINER for writers, who may not read sessions,
  like ``promptlake_existing_ids`` (0002).
- a unique index on ``(project_id, session_id, seq)`` replaces the plain one, so no writer,
  however it numbers, can store two turns at one position; ``promptlake_taken_seq`` tells
  a writer which of its rows would take a position held by another generation (so that
  they are refused with a reason, not skipped by ``ON CONFLICT DO NOTHING``).

Existing data: the counter starts after each session's highest position; sessions that
already hold duplicate positions are renumbered 0, 1, ... in their current order (seq,
then created_at, then id), which keeps the order and only changes the numbers.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 19:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GROUPS = "promptlake_admin, promptlake_writer, promptlake_analyst, promptlake_viewer"
CLAIM = "promptlake_claim_seq(uuid[], integer[], integer[])"

CLAIM_SQL = """
CREATE FUNCTION promptlake_claim_seq(ids uuid[], counts integer[], floors integer[])
RETURNS TABLE (claimed_session uuid, first_seq integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
  IF public.promptlake_role() IS NULL OR public.promptlake_role() NOT IN ('admin', 'writer')
  THEN
    RAISE EXCEPTION 'only admins and writers of a project add turns to its sessions'
      USING ERRCODE = '42501';
  END IF;
  -- one lock order for every writer: no two flushes deadlock on their sessions
  PERFORM 1 FROM public.sessions s
    WHERE s.project_id = public.promptlake_project() AND s.id = ANY(ids)
    ORDER BY s.id FOR UPDATE;
  RETURN QUERY
    UPDATE public.sessions s SET next_seq = greatest(s.next_seq, v.lo) + v.n
      FROM unnest(ids, counts, floors) AS v(sid, n, lo)
     WHERE s.project_id = public.promptlake_project() AND s.id = v.sid
    RETURNING s.id, s.next_seq - v.n;
END $$
"""

# which rows would take a position another generation holds. ON CONFLICT DO NOTHING skips a
# row that hits any unique index (an arbiter named explicitly would need the SELECT policy,
# which writers lack), so a taken position is found here, under the claim's lock, and refused
TAKEN_SQL = """
CREATE FUNCTION promptlake_taken_seq(ids uuid[], sessions uuid[], seqs integer[])
RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
  SELECT v.id FROM unnest(ids, sessions, seqs) AS v(id, sid, seq)
   WHERE public.promptlake_role() IN ('admin', 'writer')
     AND EXISTS (SELECT 1 FROM public.generations g
                  WHERE g.project_id = public.promptlake_project() AND g.session_id = v.sid
                    AND g.seq = v.seq AND g.id <> v.id) $$
"""
TAKEN = "promptlake_taken_seq(uuid[], uuid[], integer[])"

RENUMBER_SQL = """
WITH dup AS (
  SELECT DISTINCT project_id, session_id FROM generations
   WHERE session_id IS NOT NULL AND seq IS NOT NULL
   GROUP BY project_id, session_id, seq HAVING count(*) > 1
), renumbered AS (
  SELECT g.project_id, g.id,
         row_number() OVER (PARTITION BY g.project_id, g.session_id
                            ORDER BY g.seq NULLS LAST, g.created_at, g.id) - 1 AS seq
    FROM generations g JOIN dup USING (project_id, session_id)
)
UPDATE generations g SET seq = r.seq FROM renumbered r
 WHERE g.project_id = r.project_id AND g.id = r.id
"""

COUNTER_SQL = """
UPDATE sessions s SET next_seq = m.next FROM (
  SELECT project_id, session_id, max(seq) + 1 AS next FROM generations
   WHERE session_id IS NOT NULL AND seq IS NOT NULL GROUP BY 1, 2
) m WHERE s.project_id = m.project_id AND s.id = m.session_id
"""


def upgrade() -> None:
    op.add_column(
        "sessions",
        sa.Column(
            "next_seq",
            sa.Integer(),
            server_default=sa.text("0"),
            nullable=False,
            comment="The next free position (generations.seq) in this session.",
        ),
    )
    # as the owner, past row-level security: every project's sessions
    op.execute("ALTER TABLE generations NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE sessions NO FORCE ROW LEVEL SECURITY")
    op.execute(RENUMBER_SQL)
    op.execute(COUNTER_SQL)
    op.execute("ALTER TABLE generations FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE sessions FORCE ROW LEVEL SECURITY")
    op.drop_index(op.f("ix_generations_project_id_session_id_seq"), table_name="generations")
    op.create_index(
        op.f("uq_generations_project_id_session_id_seq"),
        "generations",
        ["project_id", "session_id", "seq"],
        unique=True,
    )
    op.execute(CLAIM_SQL)
    op.execute(TAKEN_SQL)
    for function in (CLAIM, TAKEN):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {GROUPS}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {TAKEN}")
    op.execute(f"DROP FUNCTION IF EXISTS {CLAIM}")
    op.drop_index(op.f("uq_generations_project_id_session_id_seq"), table_name="generations")
    op.create_index(
        op.f("ix_generations_project_id_session_id_seq"),
        "generations",
        ["project_id", "session_id", "seq"],
        unique=False,
    )
    op.drop_column("sessions", "next_seq")
