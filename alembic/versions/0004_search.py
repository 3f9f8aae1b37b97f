"""Search: a full-text side table ``generation_search`` (tsvector over prompt and output),
and the RAG corpus: ``documents``, ``document_chunks`` (with vectors) and
``generation_retrievals`` (which chunks each generation was grounded in).

Full-text is kept off the logging path: computing ``to_tsvector`` costs ≈ 0.4 ms per 2 KB
row (DESIGN.md), which would cut COPY ingest about tenfold. ``promptlake embed`` (or
``Project.embed``) fills this narrow table in batches for rows not indexed yet (or
whose content hash changed), with a GIN index on ``tsv``. Vectors stay in
``generation_embeddings`` (migration 0003); their HNSW indexes are partial expression
indexes per embedder made at run time (named ``hnsw_*``, ignored by ``alembic check``).

Forced row-level security like 0002/0003: admins write, admins and analysts read;
writers also read the corpus (to retrieve) and record retrievals at log time.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 09:52:00.000000
"""

from collections.abc import Sequence

import pgvector.sqlalchemy
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table: (select, insert, update, delete), as in migration 0002
TABLE_RULES = {
    "generation_search": ("admin,analyst", "admin", "admin", "admin"),
    # RAG applications log as writers and must read the corpus to retrieve from it
    "documents": ("admin,analyst,writer", "admin", "admin", "admin"),
    "document_chunks": ("admin,analyst,writer", "admin", "admin", "admin"),
    "generation_retrievals": ("admin,analyst", "admin,writer", "admin", "admin"),
}
TABLES = ", ".join(TABLE_RULES)


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
]


def upgrade() -> None:
    op.create_table(
        "generation_search",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("generation_id", sa.UUID(), nullable=False),
        sa.Column(
            "language",
            sa.Text(),
            nullable=False,
            comment="Text search configuration the tsvector was made with (e.g. english).",
        ),
        sa.Column(
            "tsv",
            postgresql.TSVECTOR(),
            nullable=False,
            comment="to_tsvector(language, prompt || output).",
        ),
        sa.Column(
            "source_hash",
            sa.LargeBinary(),
            nullable=False,
            comment="content_hash of the generation when indexed: a change makes it stale.",
        ),
        sa.Column(
            "indexed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "generation_id"],
            ["generations.project_id", "generations.id"],
            name=op.f("fk_generation_search_project_id_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "generation_id", name=op.f("pk_generation_search")),
        comment="Full-text vectors of generations, filled in batches off the logging path.",
    )
    op.create_index(
        op.f("ix_generation_search_tsv"),
        "generation_search",
        ["tsv"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_table(
        "documents",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column(
            "id",
            sa.UUID(),
            nullable=False,
            comment="Derived from the content: re-adding is a no-op.",
        ),
        sa.Column("source", sa.Text(), nullable=True, comment="File path or caller's name."),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("format", sa.Text(), nullable=False, comment="text, markdown or jsonl."),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.LargeBinary(), nullable=False),
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
            "format IN ('text', 'markdown', 'jsonl')", name=op.f("ck_documents_format")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_documents_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_documents")),
        comment="RAG corpus documents.",
    )
    op.create_table(
        "document_chunks",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("document_id", sa.UUID(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False, comment="Position in the document, from 0."),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("start_offset", sa.Integer(), nullable=False),
        sa.Column("end_offset", sa.Integer(), nullable=False),
        sa.Column("embedder", sa.Text(), nullable=False),
        sa.Column("vector", pgvector.sqlalchemy.vector.VECTOR(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id", "document_id"],
            ["documents.project_id", "documents.id"],
            name=op.f("fk_document_chunks_project_id_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_document_chunks")),
        sa.UniqueConstraint(
            "project_id",
            "document_id",
            "seq",
            name=op.f("uq_document_chunks_project_id_document_id_seq"),
        ),
        comment="Chunks of corpus documents with their embeddings (see search/corpus.py).",
    )
    op.create_table(
        "generation_retrievals",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("generation_id", sa.UUID(), nullable=False),
        sa.Column("chunk_id", sa.UUID(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False, comment="1 = first chunk given."),
        sa.Column("score", sa.Double(), nullable=True, comment="Retrieval similarity."),
        sa.ForeignKeyConstraint(
            ["project_id", "chunk_id"],
            ["document_chunks.project_id", "document_chunks.id"],
            name=op.f("fk_generation_retrievals_project_id_chunk_id_document_chunks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "generation_id"],
            ["generations.project_id", "generations.id"],
            name=op.f("fk_generation_retrievals_project_id_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "project_id", "generation_id", "chunk_id", name=op.f("pk_generation_retrievals")
        ),
        comment="Grounding: which chunks (rank, score) each generation was given.",
    )
    op.create_index(
        op.f("ix_generation_retrievals_project_id_chunk_id"),
        "generation_retrievals",
        ["project_id", "chunk_id"],
        unique=False,
    )
    for statement in ACCESS_SQL:
        op.execute(statement)


def downgrade() -> None:
    # dropping the table drops its policies, grants and index too
    op.drop_index(
        op.f("ix_generation_retrievals_project_id_chunk_id"), table_name="generation_retrievals"
    )
    op.drop_table("generation_retrievals")
    op.drop_table("document_chunks")
    op.drop_table("documents")
    op.drop_index(op.f("ix_generation_search_tsv"), table_name="generation_search")
    op.drop_table("generation_search")
