"""Analytics views: usage per model per day, score trends per prompt version, session
statistics, exact duplicate rate, synthetic share, PII rate, and metrics per run (with a
partial index on ``generations (project_id, run_id)`` for the last).

Plain SQL views, versioned here so that analysts, notebooks and MLflow runs read the same
definitions. Every view is ``security_invoker = true``: it shows what the caller's
row-level security lets it read (admins and analysts of the current project), never more.
Viewers keep the aggregate ``project_usage`` view of migration 0002.

Days are UTC days of ``generations.created_at``; latency percentiles are continuous
(``percentile_cont``) over the calls that report a latency; rates are fractions in [0, 1].
A generation is an exact duplicate when an earlier generation of the same project has the
same ``content_hash`` (the rows ``generation_canonical`` does not map to themselves).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 09:55:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# "earlier generation with the same content": the exact-duplicate predicate used below
_IS_DUPLICATE = """EXISTS (SELECT 1 FROM generations c
                     WHERE c.project_id = g.project_id AND c.content_hash = g.content_hash
                       AND (c.created_at, c.id) < (g.created_at, g.id))"""

VIEWS_SQL = {
    "usage_daily": """
       SELECT g.project_id, (g.created_at AT TIME ZONE 'UTC')::date AS day, m.name AS model,
              count(*) AS calls,
              count(*) FILTER (WHERE g.status = 'error') AS errors,
              (count(*) FILTER (WHERE g.status = 'error'))::float8 / count(*) AS error_rate,
              coalesce(sum(g.prompt_tokens), 0) AS prompt_tokens,
              coalesce(sum(g.completion_tokens), 0) AS completion_tokens,
              coalesce(sum(g.total_tokens), 0) AS total_tokens,
              coalesce(sum(g.cost_usd), 0) AS cost_usd,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY g.latency_ms) AS latency_p50_ms,
              percentile_cont(0.95) WITHIN GROUP (ORDER BY g.latency_ms) AS latency_p95_ms
         FROM generations g
         LEFT JOIN models m ON m.project_id = g.project_id AND m.id = g.model_id
        GROUP BY g.project_id, 2, 3""",
    "score_trends": """
       SELECT s.project_id, t.name AS prompt, v.version AS prompt_version,
              g.prompt_version_id, s.name AS score, count(*) AS scores,
              avg(coalesce(s.value_numeric, s.value_bool::int)) AS mean,
              stddev_samp(coalesce(s.value_numeric, s.value_bool::int)) AS stddev,
              min(coalesce(s.value_numeric, s.value_bool::int)) AS min,
              max(coalesce(s.value_numeric, s.value_bool::int)) AS max,
              count(*) FILTER (WHERE s.data_type = 'categorical') AS categorical,
              min(s.created_at) AS first_scored_at, max(s.created_at) AS last_scored_at
         FROM scores s
         JOIN generations g ON g.project_id = s.project_id AND g.id = s.generation_id
         LEFT JOIN prompt_versions v ON v.project_id = g.project_id
                                    AND v.id = g.prompt_version_id
         LEFT JOIN prompt_templates t ON t.project_id = v.project_id AND t.id = v.template_id
        GROUP BY s.project_id, t.name, v.version, g.prompt_version_id, s.name""",
    "session_stats": """
       SELECT s.project_id, s.id AS session_id, s.end_user_id, s.started_at, s.ended_at,
              count(g.id) AS turns,
              count(g.id) FILTER (WHERE g.status = 'error') AS errors,
              coalesce(sum(g.total_tokens), 0) AS total_tokens,
              coalesce(sum(g.cost_usd), 0) AS cost_usd,
              min(g.created_at) AS first_at, max(g.created_at) AS last_at,
              extract(epoch FROM max(g.created_at) - min(g.created_at))::float8
                AS duration_seconds
         FROM sessions s
         LEFT JOIN generations g ON g.project_id = s.project_id AND g.session_id = s.id
        GROUP BY s.project_id, s.id""",
    "duplicate_rates": f"""
       SELECT g.project_id, (g.created_at AT TIME ZONE 'UTC')::date AS day, m.name AS model,
              count(*) AS generations,
              count(*) FILTER (WHERE {_IS_DUPLICATE}) AS duplicates,
              (count(*) FILTER (WHERE {_IS_DUPLICATE}))::float8 / count(*) AS duplicate_rate
         FROM generations g
         LEFT JOIN models m ON m.project_id = g.project_id AND m.id = g.model_id
        GROUP BY g.project_id, 2, 3""",
    "synthetic_share": """
       SELECT g.project_id, (g.created_at AT TIME ZONE 'UTC')::date AS day, m.name AS model,
              count(*) AS generations,
              count(*) FILTER (WHERE g.origin = 'synthetic') AS synthetic,
              (count(*) FILTER (WHERE g.origin = 'synthetic'))::float8 / count(*)
                AS synthetic_share
         FROM generations g
         LEFT JOIN models m ON m.project_id = g.project_id AND m.id = g.model_id
        GROUP BY g.project_id, 2, 3""",
    "pii_rates": """
       SELECT g.project_id, (g.created_at AT TIME ZONE 'UTC')::date AS day, m.name AS model,
              count(*) AS generations,
              count(*) FILTER (WHERE f.findings > 0) AS with_pii,
              coalesce(sum(f.findings), 0) AS findings,
              (count(*) FILTER (WHERE f.findings > 0))::float8 / count(*) AS pii_rate,
              coalesce(sum(f.findings), 0)::float8 / count(*) AS findings_per_generation
         FROM generations g
         LEFT JOIN models m ON m.project_id = g.project_id AND m.id = g.model_id
         LEFT JOIN LATERAL (SELECT count(*) AS findings FROM pii_findings p
                             WHERE p.project_id = g.project_id AND p.generation_id = g.id) f
                ON true
        GROUP BY g.project_id, 2, 3""",
    "run_metrics": f"""
       SELECT r.project_id, r.id AS run_id, r.name, r.status, r.mlflow_run_id,
              r.started_at, r.ended_at,
              count(g.id) AS generations,
              count(g.id) FILTER (WHERE g.status = 'error') AS errors,
              (count(g.id) FILTER (WHERE g.status = 'error'))::float8
                / nullif(count(g.id), 0) AS error_rate,
              coalesce(sum(g.prompt_tokens), 0) AS prompt_tokens,
              coalesce(sum(g.completion_tokens), 0) AS completion_tokens,
              coalesce(sum(g.total_tokens), 0) AS total_tokens,
              coalesce(sum(g.cost_usd), 0) AS cost_usd,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY g.latency_ms) AS latency_p50_ms,
              percentile_cont(0.95) WITHIN GROUP (ORDER BY g.latency_ms) AS latency_p95_ms,
              (count(g.id) FILTER (WHERE {_IS_DUPLICATE}))::float8
                / nullif(count(g.id), 0) AS duplicate_rate,
              (count(g.id) FILTER (WHERE EXISTS (
                 SELECT 1 FROM pii_findings p
                  WHERE p.project_id = g.project_id AND p.generation_id = g.id)))::float8
                / nullif(count(g.id), 0) AS pii_rate,
              (count(g.id) FILTER (WHERE g.origin = 'synthetic'))::float8
                / nullif(count(g.id), 0) AS synthetic_share
         FROM runs r
         LEFT JOIN generations g ON g.project_id = r.project_id AND g.run_id = r.id
        GROUP BY r.project_id, r.id""",
}
VIEWS = tuple(VIEWS_SQL)


def upgrade() -> None:
    # a run's generations (run metrics); partial, so rows logged outside runs cost nothing
    op.create_index(
        op.f("ix_generations_project_id_run_id"),
        "generations",
        ["project_id", "run_id"],
        unique=False,
        postgresql_where=sa.text("run_id IS NOT NULL"),
    )
    for name, body in VIEWS_SQL.items():
        op.execute(f"CREATE VIEW {name} WITH (security_invoker = true) AS {body}")
    op.execute(f"GRANT SELECT ON {', '.join(VIEWS)} TO promptlake_admin, promptlake_analyst")


def downgrade() -> None:
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_index(op.f("ix_generations_project_id_run_id"), table_name="generations")
