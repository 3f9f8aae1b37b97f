"""Schema v1: projects, sessions, prompts, models, runs, generations, scores, attachments.

The first migration also creates the pgvector extension, which later migrations use.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 08:08:20.754547
"""

from collections.abc import Sequence

import pgvector.sqlalchemy  # noqa: F401 - autogenerate renders pgvector types through it
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "projects",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False, comment="Unique, human-chosen project name."),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "settings",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("length(name) BETWEEN 1 AND 200", name=op.f("ck_projects_name_length")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("name", name=op.f("uq_projects_name")),
        comment="A tenant: every other table is scoped to one project.",
    )
    op.create_table(
        "models",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column(
            "name", sa.Text(), nullable=False, comment="Model name as the application calls it."
        ),
        sa.Column("provider", sa.Text(), nullable=True),
        sa.Column("version", sa.Text(), nullable=True),
        sa.Column("uri", sa.Text(), nullable=True, comment="MLflow model URI or external weights."),
        sa.Column("weights", sa.LargeBinary(), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_models_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_models")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_models_project_id_name")),
        comment="A model that produced generations: by name, with optional provenance.",
    )
    op.create_table(
        "prompt_templates",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_prompt_templates_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_prompt_templates")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_prompt_templates_project_id_name")),
        comment="A named prompt whose text is versioned in prompt_versions.",
    )
    op.create_table(
        "sessions",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column(
            "end_user_id", sa.Text(), nullable=True, comment="The application's id of the user."
        ),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "tags",
            postgresql.ARRAY(sa.TEXT()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_sessions_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_sessions")),
        comment="A conversation: the generations that share it form its history.",
    )
    op.create_index(
        op.f("ix_sessions_project_id_end_user_id"),
        "sessions",
        ["project_id", "end_user_id"],
        unique=False,
    )
    op.create_table(
        "prompt_versions",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("template_id", sa.UUID(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "template", sa.Text(), nullable=False, comment="Template text with {placeholders}."
        ),
        sa.Column(
            "variables",
            postgresql.ARRAY(sa.TEXT()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        sa.Column(
            "text_hash", sa.LargeBinary(), nullable=False, comment="sha256 of the template text."
        ),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_prompt_versions_version_positive")),
        sa.ForeignKeyConstraint(
            ["project_id", "template_id"],
            ["prompt_templates.project_id", "prompt_templates.id"],
            name=op.f("fk_prompt_versions_project_id_template_id_prompt_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_prompt_versions")),
        sa.UniqueConstraint(
            "project_id",
            "template_id",
            "text_hash",
            name=op.f("uq_prompt_versions_project_id_template_id_text_hash"),
        ),
        sa.UniqueConstraint(
            "project_id",
            "template_id",
            "version",
            name=op.f("uq_prompt_versions_project_id_template_id_version"),
        ),
        comment="One immutable text of a prompt template; version counts from 1.",
    )
    op.create_table(
        "runs",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("model_id", sa.UUID(), nullable=True),
        sa.Column(
            "params",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("status", sa.Text(), server_default=sa.text("'running'"), nullable=False),
        sa.Column("mlflow_run_id", sa.Text(), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'finished', 'failed')", name=op.f("ck_runs_status")
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "model_id"],
            ["models.project_id", "models.id"],
            name=op.f("fk_runs_project_id_model_id_models"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_runs_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_runs")),
        comment="A batch job or evaluation; generations logged inside it carry run_id.",
    )
    op.create_table(
        "generations",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False, comment="Client-chosen UUID."),
        sa.Column("session_id", sa.UUID(), nullable=True),
        sa.Column(
            "parent_id",
            sa.UUID(),
            nullable=True,
            comment="The previous generation of the chain (prompt chain / conversation turn).",
        ),
        sa.Column("seq", sa.Integer(), nullable=True, comment="Position in the session, from 0."),
        sa.Column("prompt_version_id", sa.UUID(), nullable=True),
        sa.Column("model_id", sa.UUID(), nullable=True),
        sa.Column("run_id", sa.UUID(), nullable=True),
        sa.Column(
            "name", sa.Text(), nullable=True, comment="What was called (function or step name)."
        ),
        sa.Column(
            "input_messages",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=True,
            comment="Chat messages sent to the model, as a JSON array of {role, content}.",
        ),
        sa.Column(
            "input_text", sa.Text(), nullable=True, comment="Plain-text prompt sent to the model."
        ),
        sa.Column("output", sa.Text(), nullable=True, comment="Text the model returned."),
        sa.Column(
            "params",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
            comment="Sampling parameters (temperature, top_p, ...).",
        ),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column(
            "total_tokens",
            sa.Integer(),
            sa.Computed("prompt_tokens + completion_tokens", persisted=True),
            nullable=True,
        ),
        sa.Column("cost_usd", sa.Numeric(precision=18, scale=8), nullable=True),
        sa.Column("latency_ms", sa.Double(), nullable=True),
        sa.Column("status", sa.Text(), server_default=sa.text("'ok'"), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "origin",
            sa.Text(),
            server_default=sa.text("'real'"),
            nullable=False,
            comment="real (from users) or synthetic (generated data).",
        ),
        sa.Column(
            "generator",
            sa.Text(),
            nullable=True,
            comment="For synthetic rows: the model or pipeline that generated the data.",
        ),
        sa.Column(
            "lineage",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
            comment="Provenance of synthetic data: seed generation ids, method, pipeline version.",
        ),
        sa.Column("input_hash", sa.LargeBinary(), nullable=False),
        sa.Column("output_hash", sa.LargeBinary(), nullable=False),
        sa.Column(
            "content_hash",
            sa.LargeBinary(),
            nullable=False,
            comment="sha256 over normalized input and output (see hash_version).",
        ),
        sa.Column("hash_version", sa.SmallInteger(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "tags",
            postgresql.ARRAY(sa.TEXT()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="When the call happened.",
        ),
        sa.Column(
            "ingested_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "cost_usd >= 0 AND cost_usd < 'Infinity'::numeric",
            name=op.f("ck_generations_cost_non_negative"),
        ),
        sa.CheckConstraint(
            "latency_ms >= 0 AND latency_ms < 'Infinity'::float8",
            name=op.f("ck_generations_latency_non_negative"),
        ),
        sa.CheckConstraint(
            "origin = 'real' OR generator IS NOT NULL",
            name=op.f("ck_generations_synthetic_lineage"),
        ),
        sa.CheckConstraint("origin IN ('real', 'synthetic')", name=op.f("ck_generations_origin")),
        sa.CheckConstraint("status IN ('ok', 'error')", name=op.f("ck_generations_status")),
        sa.CheckConstraint(
            "input_text IS NOT NULL OR input_messages IS NOT NULL",
            name=op.f("ck_generations_has_input"),
        ),
        sa.CheckConstraint(
            "prompt_tokens >= 0 AND completion_tokens >= 0",
            name=op.f("ck_generations_tokens_non_negative"),
        ),
        sa.CheckConstraint("seq >= 0", name=op.f("ck_generations_seq_non_negative")),
        sa.ForeignKeyConstraint(
            ["project_id", "model_id"],
            ["models.project_id", "models.id"],
            name=op.f("fk_generations_project_id_model_id_models"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "parent_id"],
            ["generations.project_id", "generations.id"],
            name=op.f("fk_generations_project_id_parent_id_generations"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "prompt_version_id"],
            ["prompt_versions.project_id", "prompt_versions.id"],
            name=op.f("fk_generations_project_id_prompt_version_id_prompt_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "run_id"],
            ["runs.project_id", "runs.id"],
            name=op.f("fk_generations_project_id_run_id_runs"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "session_id"],
            ["sessions.project_id", "sessions.id"],
            name=op.f("fk_generations_project_id_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_generations_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_generations")),
        comment="One model call: its input, output, parameters, usage and provenance.",
    )
    op.create_index(
        op.f("ix_generations_project_id_content_hash"),
        "generations",
        ["project_id", "content_hash"],
        unique=False,
    )
    op.create_index(
        op.f("ix_generations_project_id_created_at"),
        "generations",
        ["project_id", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_generations_project_id_model_id_created_at"),
        "generations",
        ["project_id", "model_id", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_generations_project_id_parent_id"),
        "generations",
        ["project_id", "parent_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_generations_project_id_session_id_seq"),
        "generations",
        ["project_id", "session_id", "seq"],
        unique=False,
    )
    op.create_table(
        "prompt_labels",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("template_id", sa.UUID(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("version_id", sa.UUID(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "template_id"],
            ["prompt_templates.project_id", "prompt_templates.id"],
            name=op.f("fk_prompt_labels_project_id_template_id_prompt_templates"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "version_id"],
            ["prompt_versions.project_id", "prompt_versions.id"],
            name=op.f("fk_prompt_labels_project_id_version_id_prompt_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "project_id", "template_id", "label", name=op.f("pk_prompt_labels")
        ),
        comment="A movable label (such as production) naming one version of a template.",
    )
    op.create_table(
        "attachments",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("generation_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("mime_type", sa.Text(), nullable=False),
        sa.Column("sha256", sa.LargeBinary(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.Column("uri", sa.Text(), nullable=True),
        sa.Column("role", sa.Text(), nullable=True, comment="input or output side of the call."),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('image', 'audio', 'video', 'file')", name=op.f("ck_attachments_kind")
        ),
        sa.CheckConstraint(
            "data IS NOT NULL OR uri IS NOT NULL", name=op.f("ck_attachments_data_or_uri")
        ),
        sa.CheckConstraint("size_bytes >= 0", name=op.f("ck_attachments_size_non_negative")),
        sa.ForeignKeyConstraint(
            ["project_id", "generation_id"],
            ["generations.project_id", "generations.id"],
            name=op.f("fk_attachments_project_id_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_attachments")),
        comment="An image, audio clip or file sent to or returned by a model.",
    )
    op.create_index(
        op.f("ix_attachments_project_id_generation_id"),
        "attachments",
        ["project_id", "generation_id"],
        unique=False,
    )
    op.create_table(
        "scores",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("generation_id", sa.UUID(), nullable=False),
        sa.Column(
            "name", sa.Text(), nullable=False, comment="What was scored: helpfulness, correct, ..."
        ),
        sa.Column("data_type", sa.Text(), nullable=False),
        sa.Column("value_numeric", sa.Double(), nullable=True),
        sa.Column("value_text", sa.Text(), nullable=True),
        sa.Column("value_bool", sa.Boolean(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False, comment="human, model, heuristic or user."),
        sa.Column("author", sa.Text(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(data_type = 'numeric' AND value_numeric IS NOT NULL AND value_numeric > '-Infinity'::float8 AND value_numeric < 'Infinity'::float8) OR (data_type = 'categorical' AND value_text IS NOT NULL) OR (data_type = 'boolean' AND value_bool IS NOT NULL)",
            name=op.f("ck_scores_value_matches_type"),
        ),
        sa.CheckConstraint(
            "data_type IN ('numeric', 'categorical', 'boolean')", name=op.f("ck_scores_data_type")
        ),
        sa.CheckConstraint(
            "source IN ('human', 'model', 'heuristic', 'user')", name=op.f("ck_scores_source")
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "generation_id"],
            ["generations.project_id", "generations.id"],
            name=op.f("fk_scores_project_id_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_scores")),
        comment="A quality score or feedback on one generation.",
    )
    op.create_index(
        op.f("ix_scores_project_id_generation_id"),
        "scores",
        ["project_id", "generation_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_scores_project_id_name_created_at"),
        "scores",
        ["project_id", "name", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_scores_project_id_name_created_at"), table_name="scores")
    op.drop_index(op.f("ix_scores_project_id_generation_id"), table_name="scores")
    op.drop_table("scores")
    op.drop_index(op.f("ix_attachments_project_id_generation_id"), table_name="attachments")
    op.drop_table("attachments")
    op.drop_table("prompt_labels")
    op.drop_index(op.f("ix_generations_project_id_session_id_seq"), table_name="generations")
    op.drop_index(op.f("ix_generations_project_id_parent_id"), table_name="generations")
    op.drop_index(op.f("ix_generations_project_id_model_id_created_at"), table_name="generations")
    op.drop_index(op.f("ix_generations_project_id_created_at"), table_name="generations")
    op.drop_index(op.f("ix_generations_project_id_content_hash"), table_name="generations")
    op.drop_table("generations")
    op.drop_table("runs")
    op.drop_table("prompt_versions")
    op.drop_index(op.f("ix_sessions_project_id_end_user_id"), table_name="sessions")
    op.drop_table("sessions")
    op.drop_table("prompt_templates")
    op.drop_table("models")
    op.drop_table("projects")
    op.execute("DROP EXTENSION IF EXISTS vector")
