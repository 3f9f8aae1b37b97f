"""Experiments: ``experiments`` (a task run over a dataset version, or one split of it,
with its run, model, prompt version and scorers) and ``experiment_items`` (per dataset
item: the generation the task produced, or the error it raised, attempts and latency),
and two analyst views over them and ``scores``: ``experiment_results`` (one row per item
and score) and ``experiment_comparison`` (every pair of experiments on the same dataset
version, item by item and score by score).

Forced row-level security in the style of 0007. Running an experiment reads the dataset's
generations and writes new ones, so only admins write these tables; analysts read them
(they may read the generations and scores behind them anyway); writers see experiment
metadata only. The views are ``security_invoker``, so the caller's policies apply.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table: (select, insert, update, delete), as in migration 0002
TABLE_RULES = {
    "experiments": ("admin,analyst,writer", "admin", "admin", "admin"),
    "experiment_items": ("admin,analyst", "admin", "admin", "admin"),
}
GRANTS = {
    "promptlake_admin": ("SELECT, INSERT, UPDATE, DELETE", list(TABLE_RULES)),
    "promptlake_analyst": ("SELECT", list(TABLE_RULES)),
    "promptlake_writer": ("SELECT", ["experiments"]),
}

RESULTS_VIEW = """
   SELECT e.project_id, e.id AS experiment_id, e.name AS experiment, e.dataset_version_id,
          e.split, m.name AS model, e.prompt_version_id, e.run_id, i.item_id, i.generation_id,
          i.status, i.error, i.attempts, i.latency_ms, s.name AS score,
          coalesce(s.value_numeric, s.value_bool::int::float8) AS value,
          s.value_text AS label, s.source AS score_source, s.comment AS score_comment,
          i.updated_at
     FROM experiment_items i
     JOIN experiments e ON e.project_id = i.project_id AND e.id = i.experiment_id
     LEFT JOIN models m ON m.project_id = e.project_id AND m.id = e.model_id
     LEFT JOIN scores s ON s.project_id = i.project_id AND s.generation_id = i.generation_id"""

COMPARISON_VIEW = """
   WITH r AS (
       SELECT project_id, experiment_id, experiment, dataset_version_id, item_id, score,
              avg(value) AS value
         FROM experiment_results
        WHERE score IS NOT NULL AND value IS NOT NULL
        GROUP BY project_id, experiment_id, experiment, dataset_version_id, item_id, score)
   SELECT a.project_id, a.dataset_version_id, a.experiment_id AS experiment_a,
          a.experiment AS name_a, b.experiment_id AS experiment_b, b.experiment AS name_b,
          a.item_id, a.score, a.value AS value_a, b.value AS value_b,
          b.value - a.value AS delta,
          CASE WHEN b.value > a.value THEN 'b' WHEN b.value < a.value THEN 'a'
               ELSE 'tie' END AS winner
     FROM r a
     JOIN r b ON b.project_id = a.project_id AND b.dataset_version_id = a.dataset_version_id
             AND b.item_id = a.item_id AND b.score = a.score
             AND b.experiment_id <> a.experiment_id"""

VIEWS = {
    "experiment_results": (
        RESULTS_VIEW,
        "Experiment items with their status, error and every score of their generation.",
    ),
    "experiment_comparison": (
        COMPARISON_VIEW,
        "Pairs of experiments on one dataset version, item by item and score by score.",
    ),
}


def _check(roles: str) -> str:
    # the form of migration 0008: any of the principal's projects where it holds a role
    return f"project_id = ANY ((SELECT promptlake_projects('{{{roles}}}'::text[]))::uuid[])"


def _access_sql() -> list[str]:
    out = []
    for table, rules in TABLE_RULES.items():
        out.append(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        out.append(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        for command, roles in zip(("SELECT", "INSERT", "UPDATE", "DELETE"), rules, strict=True):
            name = f"{table}_{command.lower()}"
            if command == "INSERT":
                clause = f"WITH CHECK ({_check(roles)})"
            elif command == "UPDATE":
                clause = f"USING ({_check(roles)}) WITH CHECK ({_check(roles)})"
            else:
                clause = f"USING ({_check(roles)})"
            out.append(f"CREATE POLICY {name} ON {table} FOR {command} {clause}")
    for role, (privileges, tables) in GRANTS.items():
        out.append(f"GRANT {privileges} ON {', '.join(tables)} TO {role}")
    for view, (body, comment) in VIEWS.items():
        out.append(f"CREATE VIEW {view} WITH (security_invoker = true) AS {body}")
        out.append(f"COMMENT ON VIEW {view} IS '{comment}'")
        out.append(f"GRANT SELECT ON {view} TO promptlake_admin, promptlake_analyst")
    return out


def _timestamp(name: str) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column(
            "name", sa.Text(), nullable=False, comment="Unique per project; rerunning it resumes."
        ),
        sa.Column("dataset_version_id", sa.UUID(), nullable=False),
        sa.Column(
            "split", sa.Text(), nullable=True, comment="The split it ran on; NULL: all of them."
        ),
        sa.Column("run_id", sa.UUID(), nullable=True, comment="The run its generations carry."),
        sa.Column("model_id", sa.UUID(), nullable=True),
        sa.Column("prompt_version_id", sa.UUID(), nullable=True),
        sa.Column(
            "task", sa.Text(), nullable=True, comment="The task, as module:function or repr."
        ),
        sa.Column(
            "params",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
            comment="Scorers, concurrency, retries, user params.",
        ),
        sa.Column("status", sa.Text(), server_default=sa.text("'running'"), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.CheckConstraint(
            "split IS NULL OR split IN ('train', 'validation', 'test')",
            name=op.f("ck_experiments_split"),
        ),
        sa.CheckConstraint(
            "status IN ('running', 'finished', 'failed')", name=op.f("ck_experiments_status")
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "dataset_version_id"],
            ["dataset_versions.project_id", "dataset_versions.id"],
            name=op.f("fk_experiments_project_id_dataset_version_id_dataset_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "model_id"],
            ["models.project_id", "models.id"],
            name=op.f("fk_experiments_project_id_model_id_models"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "prompt_version_id"],
            ["prompt_versions.project_id", "prompt_versions.id"],
            name=op.f("fk_experiments_project_id_prompt_version_id_prompt_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "run_id"],
            ["runs.project_id", "runs.id"],
            name=op.f("fk_experiments_project_id_run_id_runs"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_experiments_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_experiments")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_experiments_project_id_name")),
        comment="A task run over a dataset version and scored (see experiments/).",
    )
    op.create_table(
        "experiment_items",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("experiment_id", sa.UUID(), nullable=False),
        sa.Column(
            "item_id",
            sa.UUID(),
            nullable=False,
            comment="The dataset's generation (input and reference output).",
        ),
        sa.Column("generation_id", sa.UUID(), nullable=True, comment="What the task produced."),
        sa.Column(
            "status",
            sa.Text(),
            nullable=False,
            comment="ok, or error (the task raised every attempt).",
        ),
        sa.Column("error", sa.Text(), nullable=True, comment="The task's last error."),
        sa.Column("attempts", sa.SmallInteger(), server_default=sa.text("1"), nullable=False),
        sa.Column("latency_ms", sa.Double(), nullable=True, comment="The task's wall time."),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
            comment="Scorer errors and such.",
        ),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.CheckConstraint("status IN ('ok', 'error')", name=op.f("ck_experiment_items_status")),
        sa.ForeignKeyConstraint(
            ["project_id", "experiment_id"],
            ["experiments.project_id", "experiments.id"],
            name=op.f("fk_experiment_items_project_id_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "generation_id"],
            ["generations.project_id", "generations.id"],
            name=op.f("fk_experiment_items_project_id_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "item_id"],
            ["generations.project_id", "generations.id"],
            name=op.f("fk_experiment_items_project_id_item_id_generations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "project_id", "experiment_id", "item_id", name=op.f("pk_experiment_items")
        ),
        comment="An experiment's dataset item: the task's generation, or its error.",
    )
    op.create_index(
        op.f("ix_experiment_items_project_id_generation_id"),
        "experiment_items",
        ["project_id", "generation_id"],
        unique=False,
    )
    for statement in _access_sql():
        op.execute(statement)


def downgrade() -> None:
    # dropping a table drops its policies, grants and indexes too
    op.execute("DROP VIEW experiment_comparison")
    op.execute("DROP VIEW experiment_results")
    op.drop_table("experiment_items")
    op.drop_table("experiments")
