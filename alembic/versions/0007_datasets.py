"""Datasets: ``dataset_versions`` (each cut the DVC pipeline records: filter, params, row
count, the md5 DVC wrote to ``dvc.lock``, git revision, MLflow run), ``dataset_items``
(which generation is in which split of a version), ``run_datasets`` (which versions a run
used, logged to MLflow as its inputs) and the ``dataset_lineage`` view over them.

Forced row-level security like 0002–0004. Admins record cuts (recording creates a run,
which analysts may not); analysts read versions and items (they may export the same rows
themselves); writers read version metadata (never items) and link the versions their runs
use, since applications that train or evaluate log as writers. The view is
``security_invoker`` like those of 0005.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 10:55:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table: (select, insert, update, delete), as in migration 0002
TABLE_RULES = {
    "dataset_versions": ("admin,analyst,writer", "admin", "admin", "admin"),
    "dataset_items": ("admin,analyst", "admin", "admin", "admin"),
    "run_datasets": ("admin,analyst,writer", "admin,writer", "admin", "admin"),
}
GRANTS = {
    "promptlake_admin": ("SELECT, INSERT, UPDATE, DELETE", list(TABLE_RULES)),
    "promptlake_analyst": ("SELECT", list(TABLE_RULES)),
    "promptlake_writer": ("SELECT, INSERT", ["dataset_versions", "run_datasets"]),
}

LINEAGE_VIEW = """
   SELECT v.project_id, v.name AS dataset, v.id AS dataset_version_id, v.md5, v.row_count,
          v.created_at AS cut_at, 'produced' AS relation, v.run_id,
          r.name AS run_name, coalesce(r.mlflow_run_id, v.mlflow_run_id) AS mlflow_run_id,
          NULL::text AS context, v.created_at AS linked_at
     FROM dataset_versions v
     LEFT JOIN runs r ON r.project_id = v.project_id AND r.id = v.run_id
    UNION ALL
   SELECT v.project_id, v.name, v.id, v.md5, v.row_count, v.created_at, 'used', rd.run_id,
          r.name, r.mlflow_run_id, rd.context, rd.created_at
     FROM run_datasets rd
     JOIN dataset_versions v ON v.project_id = rd.project_id AND v.id = rd.dataset_version_id
     JOIN runs r ON r.project_id = rd.project_id AND r.id = rd.run_id"""


def _check(roles: str) -> str:
    listed = ", ".join(f"'{r}'" for r in roles.split(","))
    return (
        f"project_id = (SELECT promptlake_project()) AND (SELECT promptlake_role()) IN ({listed})"
    )


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
    out.append(f"CREATE VIEW dataset_lineage WITH (security_invoker = true) AS {LINEAGE_VIEW}")
    out.append(
        "COMMENT ON VIEW dataset_lineage IS"
        " 'Which runs produced and which used each dataset version.'"
    )
    out.append(
        "GRANT SELECT ON dataset_lineage TO promptlake_admin, promptlake_analyst, promptlake_writer"
    )
    return out


def upgrade() -> None:
    op.create_table(
        "dataset_versions",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False, comment="Dataset name from params.yaml."),
        sa.Column(
            "filter",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            comment="The export filter (params).",
        ),
        sa.Column(
            "params",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
            comment="Dedup, anonymize and split parameters.",
        ),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column(
            "split_counts",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("path", sa.Text(), nullable=False, comment="DVC output path of the splits."),
        sa.Column(
            "md5", sa.Text(), nullable=False, comment="DVC md5 of the splits, from dvc.lock."
        ),
        sa.Column("git_rev", sa.Text(), nullable=True, comment="Git commit of the pipeline."),
        sa.Column("run_id", sa.UUID(), nullable=True, comment="Run that recorded the cut."),
        sa.Column("mlflow_run_id", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("row_count >= 0", name=op.f("ck_dataset_versions_row_count")),
        sa.ForeignKeyConstraint(
            ["project_id", "run_id"],
            ["runs.project_id", "runs.id"],
            name=op.f("fk_dataset_versions_project_id_run_id_runs"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_dataset_versions_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_dataset_versions")),
        sa.UniqueConstraint(
            "project_id", "name", "md5", name=op.f("uq_dataset_versions_project_id_name_md5")
        ),
        comment="A dataset cut from the store by the DVC pipeline (see datasets/).",
    )
    op.create_table(
        "dataset_items",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("dataset_version_id", sa.UUID(), nullable=False),
        sa.Column("generation_id", sa.UUID(), nullable=False),
        sa.Column("split", sa.Text(), nullable=False, comment="train, validation or test."),
        sa.CheckConstraint(
            "split IN ('train', 'validation', 'test')", name=op.f("ck_dataset_items_split")
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "dataset_version_id"],
            ["dataset_versions.project_id", "dataset_versions.id"],
            name=op.f("fk_dataset_items_project_id_dataset_version_id_dataset_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "generation_id"],
            ["generations.project_id", "generations.id"],
            name=op.f("fk_dataset_items_project_id_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "project_id", "dataset_version_id", "generation_id", name=op.f("pk_dataset_items")
        ),
        comment="Which generation is in which split of a dataset version.",
    )
    op.create_index(
        op.f("ix_dataset_items_project_id_generation_id"),
        "dataset_items",
        ["project_id", "generation_id"],
        unique=False,
    )
    op.create_table(
        "run_datasets",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("run_id", sa.UUID(), nullable=False),
        sa.Column("dataset_version_id", sa.UUID(), nullable=False),
        sa.Column("context", sa.Text(), nullable=False, comment="training, evaluation, ..."),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "dataset_version_id"],
            ["dataset_versions.project_id", "dataset_versions.id"],
            name=op.f("fk_run_datasets_project_id_dataset_version_id_dataset_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "run_id"],
            ["runs.project_id", "runs.id"],
            name=op.f("fk_run_datasets_project_id_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "project_id", "run_id", "dataset_version_id", name=op.f("pk_run_datasets")
        ),
        comment="Dataset versions a run used (MLflow inputs), with the context.",
    )
    op.create_index(
        op.f("ix_run_datasets_project_id_dataset_version_id"),
        "run_datasets",
        ["project_id", "dataset_version_id"],
        unique=False,
    )
    for statement in _access_sql():
        op.execute(statement)


def downgrade() -> None:
    # dropping a table drops its policies, grants and indexes too
    op.execute("DROP VIEW dataset_lineage")
    op.drop_table("run_datasets")
    op.drop_table("dataset_items")
    op.drop_table("dataset_versions")
