"""API keys for ``promptlake serve``: ``api_keys`` (sha256 of each key, its prefix, the
principal and role it acts as, an optional rate limit, when it was revoked) and
``promptlake_api_key(hash)``, the SECURITY DEFINER lookup the server authenticates with.

Forced row-level security like 0002 and 0007: only a project's admins see, create and
revoke its keys. The server knows no project before it has authenticated a request, so it
finds a key through the lookup function, which returns the one row whose hash matches
(knowing the hash means holding the key) and the principal's role in the project now.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GROUP_ROLES = "promptlake_admin, promptlake_writer, promptlake_analyst, promptlake_viewer"

LOOKUP = """
CREATE FUNCTION promptlake_api_key(hash bytea) RETURNS TABLE (
    key_id uuid, project_id uuid, project_name text, principal text, role text,
    member_role text, revoked boolean, rate_per_second double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
  SELECT k.id, k.project_id, p.name, k.principal, k.role, m.role, k.revoked_at IS NOT NULL,
         k.rate_per_second
    FROM public.api_keys k
    JOIN public.projects p ON p.id = k.project_id
    LEFT JOIN public.project_members m
      ON m.project_id = k.project_id AND m.principal = k.principal
   WHERE k.key_hash = hash $$"""


def _admin() -> str:
    # the form of migration 0008: the projects where the principal is an admin
    return "project_id = ANY ((SELECT promptlake_projects('{admin}'::text[]))::uuid[])"


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column(
            "prefix",
            sa.Text(),
            nullable=False,
            comment="First characters of the key, to tell keys apart.",
        ),
        sa.Column("key_hash", sa.LargeBinary(), nullable=False, comment="sha256 of the whole key."),
        sa.Column(
            "principal", sa.Text(), nullable=False, comment="Who requests with this key act as."
        ),
        sa.Column("role", sa.Text(), nullable=False, comment="admin, writer, analyst or viewer."),
        sa.Column("name", sa.Text(), nullable=True, comment="What the key is for."),
        sa.Column(
            "rate_per_second",
            sa.Double(),
            nullable=True,
            comment="Requests per second (token bucket); NULL: the server's default.",
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IN ('admin', 'writer', 'analyst', 'viewer')", name=op.f("ck_api_keys_role")
        ),
        sa.CheckConstraint(
            "rate_per_second IS NULL OR rate_per_second > 0", name=op.f("ck_api_keys_rate")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_api_keys_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("project_id", "prefix", name=op.f("uq_api_keys_project_id_prefix")),
        comment="API keys of promptlake serve: sha256 of the key, never the key.",
    )
    op.create_index(op.f("ix_api_keys_key_hash"), "api_keys", ["key_hash"], unique=False)
    for statement in (
        "ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE api_keys FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY api_keys_select ON api_keys FOR SELECT USING ({_admin()})",
        f"CREATE POLICY api_keys_insert ON api_keys FOR INSERT WITH CHECK ({_admin()})",
        f"CREATE POLICY api_keys_update ON api_keys FOR UPDATE USING ({_admin()})"
        f" WITH CHECK ({_admin()})",
        f"CREATE POLICY api_keys_delete ON api_keys FOR DELETE USING ({_admin()})",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON api_keys TO promptlake_admin",
        LOOKUP,
        "REVOKE ALL ON FUNCTION promptlake_api_key(bytea) FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION promptlake_api_key(bytea) TO {GROUP_ROLES}",
    ):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP FUNCTION promptlake_api_key(bytea)")
    op.drop_table("api_keys")  # its policies and grants go with it
