"""Access and privacy: roles, row-level security, memberships, audit, PII, vault, erasure.

Roles are cluster-wide objects: they are created if missing and never dropped by a
downgrade (other databases on the server may use them); their privileges here are.
Every project-scoped table gets forced row-level security whose policies read the
per-transaction context (`promptlake.project_id`, `promptlake.principal`) through the
functions below; a missing context matches no row.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 09:01:04.641152
"""

from collections.abc import Sequence

import pgvector.sqlalchemy  # noqa: F401 - autogenerate renders pgvector types through it
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


GROUP_ROLES = ("promptlake_admin", "promptlake_writer", "promptlake_analyst", "promptlake_viewer")
APP_ROLE = "promptlake_app"

# project-scoped tables, and which member roles may do what in them (policies)
TABLE_RULES = {
    # table: (select, insert, update, delete)
    "sessions": ("admin,analyst", "admin,writer", "admin,writer", "admin"),
    "generations": ("admin,analyst", "admin,writer", "admin", "admin"),
    "scores": ("admin,analyst", "admin,writer", "admin", "admin"),
    "attachments": ("admin,analyst", "admin,writer", "admin", "admin"),
    "models": ("admin,analyst,writer", "admin,writer", "admin,writer", "admin"),
    "prompt_templates": ("admin,analyst,writer", "admin,writer", "admin,writer", "admin"),
    "prompt_versions": ("admin,analyst,writer", "admin,writer", "admin,writer", "admin"),
    "prompt_labels": ("admin,analyst,writer", "admin,writer", "admin,writer", "admin"),
    "runs": ("admin,analyst,writer", "admin,writer", "admin,writer", "admin"),
    "pii_policies": ("admin,analyst,writer", "admin", "", "admin"),
    "pii_findings": ("admin,analyst", "admin,writer", "admin", "admin"),
    "vault": ("admin", "admin,writer", "admin", "admin"),
    "erasure_tombstones": ("admin,writer", "admin", "", "admin"),
    "audit_log": ("admin", "admin,writer,analyst,viewer", "", ""),
}

# table privileges of each group role; row policies above narrow them per project
GRANTS = {
    "promptlake_writer": [
        "SELECT ON projects, models, prompt_templates, prompt_versions, prompt_labels, runs,"
        " pii_policies, erasure_tombstones, project_members",
        "INSERT ON sessions, generations, scores, attachments, models, prompt_templates,"
        " prompt_versions, prompt_labels, runs, pii_findings, vault, audit_log",
        "UPDATE ON sessions, models, prompt_templates, prompt_versions, prompt_labels, runs",
    ],
    "promptlake_analyst": [
        "SELECT ON projects, project_members, sessions, generations, scores, attachments, models,"
        " prompt_templates, prompt_versions, prompt_labels, runs, pii_policies, pii_findings",
        "INSERT ON audit_log",
    ],
    "promptlake_viewer": ["SELECT ON projects, project_members", "INSERT ON audit_log"],
}

FUNCTIONS = [
    # the principal: for the application role (and superusers) whoever the application names
    # in promptlake.principal; for anyone else their own login, which they cannot change.
    # session_user, not current_user, so that SECURITY DEFINER functions see the caller.
    """CREATE FUNCTION promptlake_principal() RETURNS text LANGUAGE sql STABLE
       SET search_path = pg_catalog AS $$
         SELECT CASE WHEN pg_has_role(session_user, 'promptlake_app', 'MEMBER')
                     THEN NULLIF(current_setting('promptlake.principal', true), '')
                     ELSE session_user::text END $$""",
    """CREATE FUNCTION promptlake_project() RETURNS uuid LANGUAGE sql STABLE
       SET search_path = pg_catalog AS $$
         SELECT NULLIF(current_setting('promptlake.project_id', true), '')::uuid $$""",
    """CREATE FUNCTION promptlake_member_role(project uuid) RETURNS text LANGUAGE sql STABLE
       SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
         SELECT m.role FROM public.project_members m
          WHERE m.project_id = project AND m.principal = public.promptlake_principal() $$""",
    """CREATE FUNCTION promptlake_role() RETURNS text LANGUAGE sql STABLE
       SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
         SELECT public.promptlake_member_role(public.promptlake_project()) $$""",
    # creating a project makes its creator its admin
    """CREATE FUNCTION promptlake_create_project(project_name text, project_description text,
                                                new_id uuid) RETURNS uuid
       LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
       DECLARE who text := public.promptlake_principal(); result_id uuid;
       BEGIN
         IF who IS NULL THEN
           RAISE EXCEPTION 'no principal: set promptlake.principal' USING ERRCODE = '42501';
         END IF;
         INSERT INTO public.projects (id, name, description)
              VALUES (new_id, project_name, project_description)
         ON CONFLICT (name) DO NOTHING;
         IF FOUND THEN
           INSERT INTO public.project_members (project_id, principal, role, granted_by)
                VALUES (new_id, who, 'admin', who);
           INSERT INTO public.audit_log (project_id, id, principal, action, target)
                VALUES (new_id, gen_random_uuid(), who, 'create_project', project_name);
         END IF;
         SELECT p.id INTO result_id FROM public.projects p
          WHERE p.name = project_name AND public.promptlake_member_role(p.id) IS NOT NULL;
         RETURN result_id;
       END $$""",
    # which of the given ids exist in the current project: lets a writer check references
    # without being able to read content
    """CREATE FUNCTION promptlake_existing_ids(kind text, ids uuid[]) RETURNS SETOF uuid
       LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
       AS $$
       BEGIN
         IF public.promptlake_role() IS NULL OR public.promptlake_role() NOT IN ('admin', 'writer')
         THEN RETURN; END IF;
         IF kind = 'generations' THEN
           RETURN QUERY SELECT g.id FROM public.generations g
             WHERE g.project_id = public.promptlake_project() AND g.id = ANY(ids);
         ELSIF kind = 'sessions' THEN
           RETURN QUERY SELECT s.id FROM public.sessions s
             WHERE s.project_id = public.promptlake_project() AND s.id = ANY(ids);
         ELSE
           RAISE EXCEPTION 'unknown kind %', kind;
         END IF;
       END $$""",
    """CREATE FUNCTION promptlake_next_seq(session uuid) RETURNS integer
       LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
         SELECT coalesce(max(g.seq) + 1, 0) FROM public.generations g
          WHERE g.project_id = public.promptlake_project() AND g.session_id = session
            AND public.promptlake_role() IN ('admin', 'writer') $$""",
    # aggregates for every member (viewers included), without access to any row
    """CREATE FUNCTION promptlake_usage() RETURNS TABLE (
           day date, model text, calls bigint, errors bigint, prompt_tokens bigint,
           completion_tokens bigint, cost_usd numeric, avg_latency_ms double precision)
       LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
         SELECT (g.created_at AT TIME ZONE 'UTC')::date, m.name, count(*),
                count(*) FILTER (WHERE g.status = 'error'), sum(g.prompt_tokens),
                sum(g.completion_tokens), sum(g.cost_usd), avg(g.latency_ms)
           FROM public.generations g
           LEFT JOIN public.models m ON m.project_id = g.project_id AND m.id = g.model_id
          WHERE g.project_id = public.promptlake_project()
            AND public.promptlake_role() IN ('admin', 'analyst', 'viewer')
          GROUP BY 1, 2 $$""",
]
FUNCTION_NAMES = [
    "promptlake_principal()",
    "promptlake_project()",
    "promptlake_member_role(uuid)",
    "promptlake_role()",
    "promptlake_create_project(text, text, uuid)",
    "promptlake_existing_ids(text, uuid[])",
    "promptlake_next_seq(uuid)",
    "promptlake_usage()",
]


def _roles_sql() -> list[str]:
    create = "".join(
        f"BEGIN CREATE ROLE {name} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END;"
        for name in GROUP_ROLES
    )
    create += f"BEGIN CREATE ROLE {APP_ROLE} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END;"
    return [
        f"DO $$ BEGIN {create} END $$",
        f"GRANT {', '.join(GROUP_ROLES)} TO {APP_ROLE}",
    ]


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
            if not roles:
                continue
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
    # projects: members see their projects without a project context; admins change them
    out += [
        "ALTER TABLE projects ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE projects FORCE ROW LEVEL SECURITY",
        "CREATE POLICY projects_select ON projects FOR SELECT"
        " USING (promptlake_member_role(id) IS NOT NULL)",
        "CREATE POLICY projects_update ON projects FOR UPDATE"
        " USING (promptlake_member_role(id) = 'admin') WITH CHECK (promptlake_member_role(id) = 'admin')",
        "CREATE POLICY projects_delete ON projects FOR DELETE"
        " USING (promptlake_member_role(id) = 'admin')",
        "ALTER TABLE project_members ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE project_members FORCE ROW LEVEL SECURITY",
        "CREATE POLICY project_members_select ON project_members FOR SELECT"
        " USING (principal = promptlake_principal() OR promptlake_member_role(project_id) = 'admin')",
        "CREATE POLICY project_members_insert ON project_members FOR INSERT"
        " WITH CHECK (promptlake_member_role(project_id) = 'admin')",
        "CREATE POLICY project_members_update ON project_members FOR UPDATE"
        " USING (promptlake_member_role(project_id) = 'admin')"
        " WITH CHECK (promptlake_member_role(project_id) = 'admin')",
        "CREATE POLICY project_members_delete ON project_members FOR DELETE"
        " USING (promptlake_member_role(project_id) = 'admin')",
    ]
    # audit entries are written in one's own name only
    out.append(
        "ALTER POLICY audit_log_insert ON audit_log WITH CHECK ("
        + _check("admin,writer,analyst,viewer")
        + " AND principal = promptlake_principal())"
    )
    return out


def _grants_sql() -> list[str]:
    groups = ", ".join(GROUP_ROLES)
    out = [
        f"GRANT USAGE ON SCHEMA public TO {groups}",
        f"GRANT SELECT ON alembic_version TO {groups}",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON projects, project_members, sessions, generations,"
        " scores, attachments, models, prompt_templates, prompt_versions, prompt_labels, runs,"
        " pii_policies, pii_findings, vault, erasure_tombstones TO promptlake_admin",
        "GRANT SELECT, INSERT ON audit_log TO promptlake_admin",
        "DO $$ BEGIN EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO promptlake_writer,"
        " promptlake_admin', current_database()); END $$",
        "CREATE VIEW project_usage WITH (security_invoker = true) AS"
        " SELECT * FROM promptlake_usage()",
        f"GRANT SELECT ON project_usage TO {groups}",
    ]
    for role, grants in GRANTS.items():
        out += [f"GRANT {grant} TO {role}" for grant in grants]
    for signature in FUNCTION_NAMES:
        out.append(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        out.append(f"GRANT EXECUTE ON FUNCTION {signature} TO {groups}")
    return out


ACCESS_SQL = _roles_sql() + FUNCTIONS + _policies_sql() + _grants_sql()

DROP_ACCESS_SQL = [
    "DROP VIEW IF EXISTS project_usage",
    *(
        f"DROP POLICY IF EXISTS {t}_{c} ON {t}"
        for t in TABLE_RULES
        for c in ("select", "insert", "update", "delete")
    ),
    *(
        f"ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY"
        for t in TABLE_RULES
        if t
        in (
            "sessions",
            "generations",
            "scores",
            "attachments",
            "models",
            "prompt_templates",
            "prompt_versions",
            "prompt_labels",
            "runs",
        )
    ),
    *(
        f"ALTER TABLE {t} DISABLE ROW LEVEL SECURITY"
        for t in (
            "sessions",
            "generations",
            "scores",
            "attachments",
            "models",
            "prompt_templates",
            "prompt_versions",
            "prompt_labels",
            "runs",
            "projects",
        )
    ),
    "ALTER TABLE projects NO FORCE ROW LEVEL SECURITY",
    *(f"DROP POLICY IF EXISTS projects_{c} ON projects" for c in ("select", "update", "delete")),
    *(
        f"DROP POLICY IF EXISTS project_members_{c} ON project_members"
        for c in ("select", "insert", "update", "delete")
    ),
    *(f"DROP FUNCTION IF EXISTS {signature}" for signature in reversed(FUNCTION_NAMES)),
    "DO $$ BEGIN EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM promptlake_writer,"
    " promptlake_admin', current_database()); END $$",
    "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM promptlake_admin, promptlake_writer,"
    " promptlake_analyst, promptlake_viewer",
    "REVOKE USAGE ON SCHEMA public FROM promptlake_admin, promptlake_writer,"
    " promptlake_analyst, promptlake_viewer",
]


def upgrade() -> None:
    op.add_column(
        "generations",
        sa.Column(
            "pii_policy_version",
            sa.Integer(),
            nullable=True,
            comment="Version of the PII policy applied to the text (NULL: none yet).",
        ),
    )
    op.create_table(
        "audit_log",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("principal", sa.Text(), nullable=False, comment="Who did it."),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=True, comment="What it was done to."),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "action IN ('reveal', 'export', 'erase', 'grant', 'revoke', 'policy', 'anonymize', 'create_project')",
            name=op.f("ck_audit_log_action"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_audit_log_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_audit_log")),
        comment="Append-only record of reveals, exports, erasures, grants, policy changes.",
    )
    op.create_index(
        op.f("ix_audit_log_project_id_at"), "audit_log", ["project_id", "at"], unique=False
    )
    op.create_table(
        "erasure_tombstones",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("subject_hash", sa.LargeBinary(), nullable=False),
        sa.Column(
            "erased_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_erasure_tombstones_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "subject_hash", name=op.f("pk_erasure_tombstones")),
        comment="Keyed hashes of erased end users, so replayed imports stay erased.",
    )
    op.create_table(
        "pii_policies",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "operators",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            comment="Entity type -> operator (redact, mask, pseudonymize, drop).",
        ),
        sa.Column(
            "apply_at", sa.Text(), nullable=False, comment="ingest (before storing) or export only."
        ),
        sa.Column(
            "vault", sa.Boolean(), nullable=False, comment="Keep the original text, encrypted."
        ),
        sa.Column(
            "detectors",
            postgresql.ARRAY(sa.TEXT()),
            server_default=sa.text("'{pattern}'"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "apply_at IN ('ingest', 'export')", name=op.f("ck_pii_policies_apply_at")
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_pii_policies_version_positive")),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_pii_policies_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "version", name=op.f("pk_pii_policies")),
        comment="Versioned anonymization policy of a project; the highest version is live.",
    )
    op.create_table(
        "project_members",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column(
            "principal",
            sa.Text(),
            nullable=False,
            comment="A database login role, or a principal the application names.",
        ),
        sa.Column("role", sa.Text(), nullable=False, comment="admin, writer, analyst or viewer."),
        sa.Column("granted_by", sa.Text(), nullable=True),
        sa.Column(
            "granted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "role IN ('admin', 'writer', 'analyst', 'viewer')", name=op.f("ck_project_members_role")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_members_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "principal", name=op.f("pk_project_members")),
        comment="Who may do what in a project: the data row-level security reads.",
    )
    op.create_index(
        op.f("ix_project_members_principal"), "project_members", ["principal"], unique=False
    )
    op.create_table(
        "pii_findings",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("generation_id", sa.UUID(), nullable=False),
        sa.Column(
            "field", sa.Text(), nullable=False, comment="input_text, output, or input_messages[i]."
        ),
        sa.Column("entity_type", sa.Text(), nullable=False),
        sa.Column(
            "start_offset", sa.Integer(), nullable=False, comment="Span in the original text."
        ),
        sa.Column("end_offset", sa.Integer(), nullable=False),
        sa.Column("operator", sa.Text(), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("detector", sa.Text(), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "start_offset >= 0 AND end_offset > start_offset", name=op.f("ck_pii_findings_span")
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "generation_id"],
            ["generations.project_id", "generations.id"],
            name=op.f("fk_pii_findings_project_id_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_pii_findings")),
        comment="Where PII was found and what was done to it; never the value itself.",
    )
    op.create_index(
        op.f("ix_pii_findings_project_id_entity_type"),
        "pii_findings",
        ["project_id", "entity_type"],
        unique=False,
    )
    op.create_index(
        op.f("ix_pii_findings_project_id_generation_id"),
        "pii_findings",
        ["project_id", "generation_id"],
        unique=False,
    )
    op.create_table(
        "vault",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("generation_id", sa.UUID(), nullable=False),
        sa.Column(
            "key_id", sa.Text(), nullable=False, comment="Fingerprint of the key that encrypted it."
        ),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column(
            "ciphertext",
            sa.LargeBinary(),
            nullable=False,
            comment="JSON of the original fields, encrypted.",
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
            name=op.f("fk_vault_project_id_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "generation_id", name=op.f("pk_vault")),
        comment="Original text before anonymization, AES-GCM encrypted; admins only.",
    )
    for statement in ACCESS_SQL:
        op.execute(statement)


def downgrade() -> None:
    for statement in DROP_ACCESS_SQL:
        op.execute(statement)
    op.drop_column("generations", "pii_policy_version")
    op.drop_table("vault")
    op.drop_index(op.f("ix_pii_findings_project_id_generation_id"), table_name="pii_findings")
    op.drop_index(op.f("ix_pii_findings_project_id_entity_type"), table_name="pii_findings")
    op.drop_table("pii_findings")
    op.drop_index(op.f("ix_project_members_principal"), table_name="project_members")
    op.drop_table("project_members")
    op.drop_table("pii_policies")
    op.drop_table("erasure_tombstones")
    op.drop_index(op.f("ix_audit_log_project_id_at"), table_name="audit_log")
    op.drop_table("audit_log")
