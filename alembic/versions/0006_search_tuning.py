"""Search tuning: let the full-text GIN index answer queries under row-level security, and
give the planner true row counts for a project's vectors.

1. Full text under row-level security.

Why. Every project table has forced row-level security. A policy's quals run first, and
PostgreSQL moves a caller's own condition ahead of them (into an index scan) only if the
condition's function is LEAKPROOF, so that a hidden row can never reach a function that
might reveal it. ``tsvector @@ tsquery`` is ``pg_catalog.ts_match_vq``, which core does not
mark LEAKPROOF (core marks few functions, by policy, not because of a known leak), so every
text search of ``generation_search`` was a sequential scan of the whole table with the GIN
index unused: ≈ 60 ms at 100k rows, growing with the table (bench search).

What. ``ALTER FUNCTION pg_catalog.ts_match_vq(tsvector, tsquery) LEAKPROOF``: the planner then
runs ``tsv @@ q`` as a GIN index condition, and the policies still filter every row it finds
(the rule stays in Postgres; nothing moves into the application). Measured at 100k rows:
text search 60 ms → ≈ 10 ms cold, a few ms warm.

Why it is safe. A leakproof function may tell its caller nothing about its arguments except
through its result. ``ts_match_vq`` returns a boolean and has no side effects; the only
errors it can raise come from the query side (``check_stack_depth`` on a deeply nested
tsquery, "unrecognized operator" on a malformed one), which the caller wrote and already
sees, never from the contents of the tsvector (reading a row's tsvector raises nothing a
leakproof ``texteq`` would not). It prints no notices. So evaluating it on a row the caller
may not see tells the caller nothing: the row is dropped by the policy either way.

Scope and fallback. It is a per-database catalog change (``pg_proc.proleakproof``), allowed
only to a superuser; the embedded server's login is one. Another migrating login skips it
with a NOTICE: search stays correct, text search stays a sequential scan (ask a superuser to
run the statement above once per database). The flag is not part of a ``pg_dump``
(``promptlake db restore`` sets it again). Only ``ts_match_vq`` is marked: it is the one
operator the search layer uses (``ts_match_tq``, ``tsvector @@ text``, is not used).
The downgrade restores core's default (NOT LEAKPROOF), again only as a superuser.

2. Extended statistics on ``generation_embeddings (project_id, embedder)``.

Why. The planner multiplies the frequency of a project by that of an embedder as if they
were independent, and the policies' role check (a parameter compared with a list) counts as
another 1%. With a few projects and embedders in the table it expected a handful of rows of
(project, embedder), sorted them exactly instead of using the HNSW index, and a vector
query over a 20k-row project took 17 ms instead of 5, growing with the project. An MCV
statistics object gives the combined frequency of each (project, embedder) pair; the
planner then sees the project's real size and uses HNSW where it pays. Plain DDL, no
privilege beyond the table owner's.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 11:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _set_leakproof(flag: str) -> str:
    return f"""
DO $$
BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    ALTER FUNCTION pg_catalog.ts_match_vq(tsvector, tsquery) {flag};
  ELSE
    RAISE NOTICE 'promptlake: % is not a superuser, so ts_match_vq stays as it is: full-text'
      ' search is correct but cannot use its GIN index under row-level security'
      ' (a superuser can run: ALTER FUNCTION pg_catalog.ts_match_vq(tsvector, tsquery)'
      ' LEAKPROOF)', current_user;
  END IF;
END $$"""


STATISTICS = "st_generation_embeddings_project_id_embedder"


def upgrade() -> None:
    op.execute(_set_leakproof("LEAKPROOF"))
    op.execute(
        f"CREATE STATISTICS {STATISTICS} (mcv) ON project_id, embedder FROM generation_embeddings"
    )
    op.execute("ANALYZE generation_embeddings")


def downgrade() -> None:
    op.execute(f"DROP STATISTICS IF EXISTS {STATISTICS}")
    op.execute(_set_leakproof("NOT LEAKPROOF"))
