"""Deduplication: dedup indexes, clusters, members, MinHash signatures; generation embeddings.

Exact duplicates need no table: ``generations.content_hash`` (with ``input_hash`` and
``output_hash``) is computed at ingest and indexed per project, and the view
``generation_canonical`` gives every generation its first occurrence. The tables below
keep what a dedup run finds (``dedup_clusters``, ``dedup_members`` for every generation
an index has checked) and what makes the next run incremental (``dedup_signatures``).
``generation_embeddings`` is the shape the search issue builds on: one float4 vector
per (generation, embedder), any dimension; an HNSW index per embedder is a partial
expression index, e.g. ``USING hnsw ((vector::vector(384)) vector_cosine_ops)
WHERE embedder = '...'``, created after bulk loads, never on the logging path.

Every table has ``project_id`` first in every key and forced row-level security with
the same per-transaction policies as migration 0002: admins do everything; analysts
read; writers may add embeddings (ingest-time embedders) but read nothing back.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 09:22:18.292875
"""

from collections.abc import Sequence

import pgvector.sqlalchemy
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table: (select, insert, update, delete), as in migration 0002
TABLE_RULES = {
    "dedup_indexes": ("admin,analyst", "admin", "admin", "admin"),
    "dedup_clusters": ("admin,analyst", "admin", "admin", "admin"),
    "dedup_members": ("admin,analyst", "admin", "admin", "admin"),
    "dedup_signatures": ("admin,analyst", "admin", "admin", "admin"),
    "generation_embeddings": ("admin,analyst", "admin,writer", "admin", "admin"),
}
TABLES = ", ".join(TABLE_RULES)

VIEWS_SQL = [
    # every generation and its first occurrence (same normalized input and output)
    """CREATE VIEW generation_canonical WITH (security_invoker = true) AS
       SELECT g.project_id, g.id AS generation_id,
              (SELECT c.id FROM generations c
                WHERE c.project_id = g.project_id AND c.content_hash = g.content_hash
                ORDER BY c.created_at, c.id LIMIT 1) AS canonical_id,
              g.content_hash, g.hash_version
         FROM generations g""",
    # duplicate rate per dedup index, day and model
    """CREATE VIEW dedup_rates WITH (security_invoker = true) AS
       SELECT m.project_id, i.method, i.field, i.threshold, i.within_origin,
              (g.created_at AT TIME ZONE 'UTC')::date AS day, md.name AS model,
              count(*) AS checked,
              count(*) FILTER (WHERE m.cluster_id IS NOT NULL
                                 AND m.cluster_id <> m.generation_id) AS duplicates,
              (count(*) FILTER (WHERE m.cluster_id IS NOT NULL
                                  AND m.cluster_id <> m.generation_id))::float8
                / count(*) AS duplicate_rate
         FROM dedup_members m
         JOIN dedup_indexes i ON i.project_id = m.project_id AND i.id = m.index_id
         JOIN generations g ON g.project_id = m.project_id AND g.id = m.generation_id
         LEFT JOIN models md ON md.project_id = g.project_id AND md.id = g.model_id
        GROUP BY m.project_id, i.method, i.field, i.threshold, i.within_origin, 6, 7""",
]
VIEWS = ("generation_canonical", "dedup_rates")


def _check(roles: str) -> str:
    listed = ", ".join(f"'{r}'" for r in roles.split(","))
    return (
        f"project_id = (SELECT promptlake_project()) AND (SELECT promptlake_role()) IN ({listed})"
    )


def _policies_sql() -> list[str]:
    out = []
    for table, (select, insert, update, delete) in TABLE_RULES.items():
        out.append(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        out.append(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        for command, roles in (
            ("SELECT", select),
            ("INSERT", insert),
            ("UPDATE", update),
            ("DELETE", delete),
        ):
            name = f"{table}_{command.lower()}"
            if command == "INSERT":
                out.append(
                    f"CREATE POLICY {name} ON {table} FOR INSERT WITH CHECK ({_check(roles)})"
                )
            elif command == "UPDATE":
                out.append(
                    f"CREATE POLICY {name} ON {table} FOR UPDATE USING ({_check(roles)})"
                    f" WITH CHECK ({_check(roles)})"
                )
            else:
                out.append(f"CREATE POLICY {name} ON {table} FOR {command} USING ({_check(roles)})")
    return out


ACCESS_SQL = [
    *_policies_sql(),
    f"GRANT SELECT, INSERT, UPDATE, DELETE ON {TABLES} TO promptlake_admin",
    f"GRANT SELECT ON {TABLES} TO promptlake_analyst",
    "GRANT INSERT ON generation_embeddings TO promptlake_writer",
    *VIEWS_SQL,
    f"GRANT SELECT ON {', '.join(VIEWS)} TO promptlake_admin, promptlake_analyst",
]
# dropping a table drops its policies and grants too
DROP_VIEWS_SQL = [f"DROP VIEW IF EXISTS {view}" for view in VIEWS]


def upgrade() -> None:
    op.create_table(
        "dedup_indexes",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column(
            "key",
            sa.Text(),
            nullable=False,
            comment="Every setting that makes two runs the same index.",
        ),
        sa.Column("method", sa.Text(), nullable=False, comment="exact, minhash or semantic."),
        sa.Column(
            "field",
            sa.Text(),
            nullable=False,
            comment="What is compared: content, input or output.",
        ),
        sa.Column(
            "threshold",
            sa.Double(),
            nullable=False,
            comment="Least similarity of a duplicate (Jaccard, cosine; 1 for exact).",
        ),
        sa.Column(
            "within_origin",
            sa.Boolean(),
            nullable=False,
            comment="Real and synthetic rows are never duplicates of each other.",
        ),
        sa.Column(
            "params",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "last_run",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
            comment="Figures of the latest run.",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "field IN ('content', 'input', 'output')", name=op.f("ck_dedup_indexes_field")
        ),
        sa.CheckConstraint(
            "method IN ('exact', 'minhash', 'semantic')", name=op.f("ck_dedup_indexes_method")
        ),
        sa.CheckConstraint(
            "threshold > 0 AND threshold <= 1", name=op.f("ck_dedup_indexes_threshold")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_dedup_indexes_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_dedup_indexes")),
        sa.UniqueConstraint("project_id", "key", name=op.f("uq_dedup_indexes_project_id_key")),
        comment="One deduplication setup of a project: method, field, threshold and scope.",
    )
    op.create_table(
        "dedup_clusters",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("index_id", sa.UUID(), nullable=False),
        sa.Column(
            "id",
            sa.UUID(),
            nullable=False,
            comment="The representative: the cluster's earliest generation (created_at, then id).",
        ),
        sa.Column("size", sa.Integer(), nullable=False, comment="Generations in the cluster."),
        sa.Column(
            "min_similarity",
            sa.Double(),
            nullable=False,
            comment="Lowest similarity of a member to the representative.",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("size >= 2", name=op.f("ck_dedup_clusters_size")),
        sa.ForeignKeyConstraint(
            ["project_id", "id"],
            ["generations.project_id", "generations.id"],
            name=op.f("fk_dedup_clusters_project_id_id_generations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "index_id"],
            ["dedup_indexes.project_id", "dedup_indexes.id"],
            name=op.f("fk_dedup_clusters_project_id_index_id_dedup_indexes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "index_id", "id", name=op.f("pk_dedup_clusters")),
        comment="A group of duplicates; its id is its representative generation.",
    )
    op.create_table(
        "dedup_members",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("generation_id", sa.UUID(), nullable=False),
        sa.Column("index_id", sa.UUID(), nullable=False),
        sa.Column(
            "cluster_id",
            sa.UUID(),
            nullable=True,
            comment="The cluster's representative; NULL: no duplicate found. Keep rows where cluster_id IS NULL OR cluster_id = generation_id to drop duplicates.",
        ),
        sa.Column(
            "similarity",
            sa.Double(),
            nullable=True,
            comment="Similarity to the representative (1 for exact copies).",
        ),
        sa.Column(
            "source_hash",
            sa.LargeBinary(),
            nullable=False,
            comment="Hash of the compared text when checked: a change makes it stale.",
        ),
        sa.Column(
            "checked_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "generation_id"],
            ["generations.project_id", "generations.id"],
            name=op.f("fk_dedup_members_project_id_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "index_id"],
            ["dedup_indexes.project_id", "dedup_indexes.id"],
            name=op.f("fk_dedup_members_project_id_index_id_dedup_indexes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "project_id", "generation_id", "index_id", name=op.f("pk_dedup_members")
        ),
        comment="Every generation a dedup index has checked, and its cluster if any.",
    )
    op.create_index(
        op.f("ix_dedup_members_project_id_index_id_cluster_id"),
        "dedup_members",
        ["project_id", "index_id", "cluster_id"],
        unique=False,
    )
    op.create_table(
        "dedup_signatures",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("generation_id", sa.UUID(), nullable=False),
        sa.Column(
            "scheme",
            sa.Text(),
            nullable=False,
            comment="Field, shingling, permutations and seed of the signature.",
        ),
        sa.Column(
            "source_hash",
            sa.LargeBinary(),
            nullable=False,
            comment="Hash of the text the signature was computed from.",
        ),
        sa.Column(
            "set_hash",
            sa.BigInteger(),
            nullable=False,
            comment="Hash of the shingle set (equal sets, equal hash).",
        ),
        sa.Column(
            "shingles", sa.Integer(), nullable=False, comment="Distinct shingles (0: no words)."
        ),
        sa.Column(
            "signature",
            sa.LargeBinary(),
            nullable=False,
            comment="datasketch MinHash values (affine32), little-endian uint32.",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "generation_id"],
            ["generations.project_id", "generations.id"],
            name=op.f("fk_dedup_signatures_project_id_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "project_id", "generation_id", "scheme", name=op.f("pk_dedup_signatures")
        ),
        comment="MinHash signatures, kept so new rows are compared without recomputing.",
    )
    op.create_table(
        "generation_embeddings",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("generation_id", sa.UUID(), nullable=False),
        sa.Column(
            "embedder",
            sa.Text(),
            nullable=False,
            comment="The model (and version) that made the vector.",
        ),
        sa.Column("dimension", sa.Integer(), nullable=False),
        sa.Column(
            "vector",
            pgvector.sqlalchemy.vector.VECTOR(),
            nullable=False,
            comment="float4 vector of `dimension` values.",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "vector_dims(vector) = dimension", name=op.f("ck_generation_embeddings_dimension")
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "generation_id"],
            ["generations.project_id", "generations.id"],
            name=op.f("fk_generation_embeddings_project_id_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "project_id", "generation_id", "embedder", name=op.f("pk_generation_embeddings")
        ),
        comment="Embeddings of generations, one per embedder; HNSW indexes per embedder.",
    )
    op.create_index(
        op.f("ix_generation_embeddings_project_id_embedder"),
        "generation_embeddings",
        ["project_id", "embedder"],
        unique=False,
    )
    for statement in ACCESS_SQL:
        op.execute(statement)


def downgrade() -> None:
    for statement in DROP_VIEWS_SQL:
        op.execute(statement)
    op.drop_index(
        op.f("ix_generation_embeddings_project_id_embedder"), table_name="generation_embeddings"
    )
    op.drop_table("generation_embeddings")
    op.drop_table("dedup_signatures")
    op.drop_index(
        op.f("ix_dedup_members_project_id_index_id_cluster_id"), table_name="dedup_members"
    )
    op.drop_table("dedup_members")
    op.drop_table("dedup_clusters")
    op.drop_table("dedup_indexes")
