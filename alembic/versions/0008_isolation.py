"""Tenant isolation that SQL cannot forge: principal logins, claims from the login, and
policies over every project a principal belongs to.

Until 0007 the principal came from ``promptlake.principal``, a setting any SQL in the
session could change (``set_config`` in a CTE ran before the scan). From here on:

- Only sessions whose *login* is the application role (or a superuser, which bypasses RLS
  anyway) have their settings trusted: ``promptlake_principal()`` returns
  ``promptlake.principal`` for them; the library writes all their SQL and never runs user
  text on them.
- Every principal that runs its own SQL gets a real login role (``principal_logins`` maps
  principal to role; the library creates them, members of ``promptlake_principal_login``,
  never superuser, never the application role). For any login other than the application
  role, ``promptlake_principal()`` is that login's mapped principal (or the login's own
  name): ``session_user`` cannot be changed by ``SET ROLE``, ``RESET ROLE`` or a
  ``SECURITY DEFINER`` function, only by a superuser.
- Policies admit a row when its project is one where the principal holds a fitting role
  (``promptlake_projects(roles)``, evaluated once per statement as an init plan), narrowed
  to ``promptlake.project_id`` when that is set. Forging the setting can only narrow.
- Project names are unique per owner, not globally: a name taken by another tenant is
  neither an existence oracle nor squattable (``promptlake_create_project`` creates the
  caller's own project when it is a member of none with that name).
- ``lake_keys`` records the fingerprint of the master key a store was written with, so a
  missing or replaced key file is an error instead of a silent new key.

The policy rewrite is mechanical: every policy written by 0002-0007 has the form
``project_id = (SELECT promptlake_project()) AND (SELECT promptlake_role()) IN (...)``;
the downgrade writes them back.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 19:00:00.000000
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOGIN_GROUP = "promptlake_principal_login"
GROUP_ROLES = ("promptlake_admin", "promptlake_writer", "promptlake_analyst", "promptlake_viewer")

OLD_CHECK = re.compile(
    r"\(project_id = \( SELECT promptlake_project\(\) AS promptlake_project\)\) AND"
    r" \(\( SELECT promptlake_role\(\) AS promptlake_role\)"
    r" = (?:ANY \(ARRAY\[(?P<many>[^\]]*)\]\)|'(?P<one>[a-z]+)'::text)\)"
)
NEW_CHECK = re.compile(
    r"\(project_id = ANY \(\( SELECT promptlake_projects\('\{(?P<roles>[a-z,]+)\}'::text\[\]\)"
    r" AS promptlake_projects\)::uuid\[\]\)\)"
)


def new_check(roles: Sequence[str]) -> str:
    roles_literal = "'{" + ",".join(roles) + "}'::text[]"
    return f"(project_id = ANY ((SELECT promptlake_projects({roles_literal}))::uuid[]))"


def old_check(roles: Sequence[str]) -> str:
    listed = ", ".join(f"'{r}'" for r in roles)
    return (
        f"(project_id = (SELECT promptlake_project()) AND (SELECT promptlake_role()) IN ({listed}))"
    )


def _roles_of(match: re.Match[str]) -> list[str]:
    if match.group("one"):
        return [match.group("one")]
    return re.findall(r"'([a-z]+)'::text", match.group("many"))


PRINCIPAL_FN = """
CREATE OR REPLACE FUNCTION promptlake_principal() RETURNS text LANGUAGE sql STABLE
  SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
  SELECT CASE WHEN pg_has_role(session_user, 'promptlake_app', 'MEMBER')
              THEN NULLIF(current_setting('promptlake.principal', true), '')
              ELSE coalesce((SELECT l.principal FROM public.principal_logins l
                              WHERE l.rolname = session_user::text), session_user::text)
         END $$"""
OLD_PRINCIPAL_FN = """
CREATE OR REPLACE FUNCTION promptlake_principal() RETURNS text LANGUAGE sql STABLE
  SECURITY INVOKER SET search_path = pg_catalog AS $$
  SELECT CASE WHEN pg_has_role(session_user, 'promptlake_app', 'MEMBER')
              THEN NULLIF(current_setting('promptlake.principal', true), '')
              ELSE session_user::text END $$"""

PROJECTS_FN = """
CREATE FUNCTION promptlake_projects(roles text[]) RETURNS uuid[] LANGUAGE sql STABLE
  SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
  SELECT coalesce(array_agg(m.project_id), '{}'::uuid[]) FROM public.project_members m
   WHERE m.principal = public.promptlake_principal() AND m.role = ANY (roles)
     AND (public.promptlake_project() IS NULL OR m.project_id = public.promptlake_project()) $$"""

CREATE_PROJECT_FN = """
CREATE OR REPLACE FUNCTION promptlake_create_project(project_name text,
    project_description text, new_id uuid) RETURNS uuid
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
  DECLARE who text := public.promptlake_principal(); result_id uuid;
  BEGIN
    IF who IS NULL THEN
      RAISE EXCEPTION 'no principal: set promptlake.principal' USING ERRCODE = '42501';
    END IF;
    -- a project of that name the caller belongs to, its own first
    SELECT p.id INTO result_id FROM public.projects p
      JOIN public.project_members m ON m.project_id = p.id AND m.principal = who
     WHERE p.name = project_name ORDER BY (p.owner = who) DESC, p.created_at LIMIT 1;
    IF result_id IS NOT NULL THEN RETURN result_id; END IF;
    INSERT INTO public.projects (id, name, description, owner)
         VALUES (new_id, project_name, project_description, who)
    ON CONFLICT (owner, name) DO NOTHING;
    IF FOUND THEN
      INSERT INTO public.project_members (project_id, principal, role, granted_by)
           VALUES (new_id, who, 'admin', who);
      INSERT INTO public.audit_log (project_id, id, principal, action, target)
           VALUES (new_id, gen_random_uuid(), who, 'create_project', project_name);
      RETURN new_id;
    END IF;
    -- created concurrently by the same owner, or owned but no longer a member
    SELECT p.id INTO result_id FROM public.projects p
     WHERE p.owner = who AND p.name = project_name
       AND public.promptlake_member_role(p.id) IS NOT NULL;
    RETURN result_id;
  END $$"""
OLD_CREATE_PROJECT_FN = """
CREATE OR REPLACE FUNCTION promptlake_create_project(project_name text,
    project_description text, new_id uuid) RETURNS uuid
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
  END $$"""

USAGE_BODY = """
  SELECT {project}(g.created_at AT TIME ZONE 'UTC')::date, m.name, count(*),
         count(*) FILTER (WHERE g.status = 'error'), sum(g.prompt_tokens),
         sum(g.completion_tokens), sum(g.cost_usd), avg(g.latency_ms)
    FROM public.generations g
    LEFT JOIN public.models m ON m.project_id = g.project_id AND m.id = g.model_id
   WHERE {scope}
   GROUP BY {groups}"""
USAGE_FN = """
CREATE FUNCTION promptlake_usage() RETURNS TABLE ({project}
    day date, model text, calls bigint, errors bigint, prompt_tokens bigint,
    completion_tokens bigint, cost_usd numeric, avg_latency_ms double precision)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
  {body} $$"""
NEW_USAGE_SCOPE = (
    "g.project_id = ANY ((SELECT public.promptlake_projects('{admin,analyst,viewer}'))::uuid[])"
)
OLD_USAGE_SCOPE = (
    "g.project_id = public.promptlake_project()"
    " AND public.promptlake_role() IN ('admin', 'analyst', 'viewer')"
)

KEY_FNS = [
    """CREATE FUNCTION promptlake_key_fingerprint(key_purpose text) RETURNS text
       LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
         SELECT k.key_id FROM public.lake_keys k WHERE k.purpose = key_purpose $$""",
    # first writer wins; returns the fingerprint now registered
    """CREATE FUNCTION promptlake_register_key(key_purpose text, fingerprint text)
       RETURNS text LANGUAGE plpgsql SECURITY DEFINER
       SET search_path = pg_catalog, public, pg_temp AS $$
       BEGIN
         INSERT INTO public.lake_keys (purpose, key_id) VALUES (key_purpose, fingerprint)
         ON CONFLICT (purpose) DO NOTHING;
         RETURN (SELECT k.key_id FROM public.lake_keys k WHERE k.purpose = key_purpose);
       END $$""",
]
LOGIN_FNS = [
    # roles are cluster-wide: the database is part of the name, so two promptlake
    # databases on one server never share (and fight over) a principal's login
    """CREATE FUNCTION promptlake_login_role_name(principal text) RETURNS text
       LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
         SELECT 'pl_' || left(trim(BOTH '_' FROM
                  regexp_replace(lower(principal), '[^a-z0-9]+', '_', 'g')), 36)
                || '_' || left(encode(sha256(convert_to(
                     current_database() || '/' || principal, 'UTF8')), 'hex'), 12) $$""",
    # the login of the current principal (made or refreshed): only the application may ask,
    # since only it can name principals; memberships follow the roles held in projects
    f"""CREATE FUNCTION promptlake_login(login_password text) RETURNS text
       LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
       DECLARE who text := public.promptlake_principal(); rol text; grp record;
               attrs text := 'LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION'
                             || ' NOBYPASSRLS INHERIT';
       BEGIN
         IF NOT pg_has_role(session_user, 'promptlake_app', 'MEMBER') THEN
           RAISE EXCEPTION 'only the application role makes principal logins'
             USING ERRCODE = '42501';
         END IF;
         IF who IS NULL THEN
           RAISE EXCEPTION 'no principal: set promptlake.principal' USING ERRCODE = '42501';
         END IF;
         rol := public.promptlake_login_role_name(who);
         IF EXISTS (SELECT FROM pg_roles r WHERE r.rolname = rol
                     AND (r.rolsuper OR NOT pg_has_role(r.oid, '{LOGIN_GROUP}', 'MEMBER')))
         THEN
           RAISE EXCEPTION 'role % exists and is not a promptlake principal login', rol
             USING ERRCODE = '42710';
         END IF;
         BEGIN
           EXECUTE format('CREATE ROLE %I WITH %s PASSWORD %L IN ROLE {LOGIN_GROUP}',
                          rol, attrs, login_password);
         EXCEPTION WHEN duplicate_object THEN
           EXECUTE format('ALTER ROLE %I WITH %s PASSWORD %L', rol, attrs, login_password);
         END;
         INSERT INTO public.principal_logins (principal, rolname) VALUES (who, rol)
         ON CONFLICT (principal) DO NOTHING;
         FOR grp IN SELECT g.role, g.rolname FROM (VALUES
             ('admin', 'promptlake_admin'), ('writer', 'promptlake_writer'),
             ('analyst', 'promptlake_analyst'), ('viewer', 'promptlake_viewer')) g(role, rolname)
         LOOP
           IF EXISTS (SELECT FROM public.project_members m
                       WHERE m.principal = who AND m.role = grp.role) THEN
             EXECUTE format('GRANT %I TO %I', grp.rolname, rol);
           ELSIF pg_has_role(rol, grp.rolname, 'MEMBER') THEN
             EXECUTE format('REVOKE %I FROM %I', grp.rolname, rol);
           END IF;
         END LOOP;
         RETURN rol;
       END $$""",
]
LOGIN_FN_NAMES = ["promptlake_login(text)", "promptlake_login_role_name(text)"]
KEY_FN_NAMES = ["promptlake_key_fingerprint(text)", "promptlake_register_key(text, text)"]


def _replace_usage(*, new: bool) -> None:
    body = USAGE_BODY.format(
        project="g.project_id, " if new else "",
        scope=NEW_USAGE_SCOPE if new else OLD_USAGE_SCOPE,
        groups="1, 2, 3" if new else "1, 2",
    )
    op.execute("DROP VIEW project_usage")
    op.execute("DROP FUNCTION promptlake_usage()")
    op.execute(USAGE_FN.format(project="project_id uuid," if new else "", body=body))
    op.execute(
        "CREATE VIEW project_usage WITH (security_invoker = true) AS"
        " SELECT * FROM promptlake_usage()"
    )
    groups = ", ".join(GROUP_ROLES)
    op.execute(f"GRANT SELECT ON project_usage TO {groups}")
    op.execute("REVOKE ALL ON FUNCTION promptlake_usage() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION promptlake_usage() TO {groups}")


def _rewrite_policies(conn: sa.Connection, *, upgrade: bool) -> None:
    rows = conn.execute(
        sa.text(
            "SELECT tablename, policyname, cmd, qual, with_check FROM pg_policies"
            " WHERE schemaname = current_schema() ORDER BY tablename, policyname"
        )
    ).fetchall()
    pattern, make = (OLD_CHECK, new_check) if upgrade else (NEW_CHECK, old_check)

    def rewrite(expr: str | None) -> str | None:
        if expr is None:
            return None

        def swap(m: re.Match[str]) -> str:
            roles = _roles_of(m) if upgrade else m.group("roles").split(",")
            return make(roles)

        return pattern.sub(swap, expr)

    for table, policy, _cmd, qual, with_check in rows:
        new_qual, new_with_check = rewrite(qual), rewrite(with_check)
        if (new_qual, new_with_check) == (qual, with_check):
            continue
        clauses = []
        if new_qual is not None:
            clauses.append(f"USING ({new_qual})")
        if new_with_check is not None:
            clauses.append(f"WITH CHECK ({new_with_check})")
        conn.execute(sa.text(f'ALTER POLICY "{policy}" ON "{table}" {" ".join(clauses)}'))


def upgrade() -> None:
    conn = op.get_bind()
    op.execute(
        f"DO $$ BEGIN CREATE ROLE {LOGIN_GROUP} NOLOGIN;"
        " EXCEPTION WHEN duplicate_object THEN NULL; END $$"
    )
    op.create_table(
        "principal_logins",
        sa.Column("principal", sa.Text(), nullable=False),
        sa.Column("rolname", sa.Text(), nullable=False, comment="The login role that acts as it."),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("principal", name=op.f("pk_principal_logins")),
        sa.UniqueConstraint("rolname", name=op.f("uq_principal_logins_rolname")),
        comment="Which database login runs a principal's own SQL (read by the policies).",
    )
    op.create_table(
        "lake_keys",
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=False, comment="Fingerprint, never the key."),
        sa.Column(
            "registered_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("purpose", name=op.f("pk_lake_keys")),
        comment="Fingerprints of the keys this store was written with.",
    )
    op.execute("REVOKE ALL ON principal_logins, lake_keys FROM PUBLIC")

    # project names: unique per owner
    op.add_column(
        "projects",
        sa.Column("owner", sa.Text(), nullable=True, comment="The principal that created it."),
    )
    op.execute(
        "UPDATE projects p SET owner = coalesce("
        " (SELECT a.principal FROM audit_log a WHERE a.project_id = p.id"
        "   AND a.action = 'create_project' ORDER BY a.at LIMIT 1),"
        " (SELECT m.principal FROM project_members m WHERE m.project_id = p.id"
        "   AND m.role = 'admin' ORDER BY m.granted_at LIMIT 1),"
        " p.id::text)"
    )
    op.alter_column("projects", "owner", nullable=False)
    op.drop_constraint("uq_projects_name", "projects", type_="unique")
    op.create_unique_constraint(op.f("uq_projects_owner_name"), "projects", ["owner", "name"])
    op.alter_column("projects", "name", comment="Human-chosen name, unique per owner.")

    op.execute(PRINCIPAL_FN)
    op.execute(PROJECTS_FN)
    op.execute(CREATE_PROJECT_FN)
    # the viewers' aggregates gain the project, now that one query spans several
    _replace_usage(new=True)
    for statement in KEY_FNS + LOGIN_FNS:
        op.execute(statement)
    groups = ", ".join(GROUP_ROLES)
    # a login of a principal that belongs to no project yet may still ask which it sees
    op.execute(f"GRANT USAGE ON SCHEMA public TO {LOGIN_GROUP}")
    op.execute(f"GRANT SELECT ON projects TO {LOGIN_GROUP}")
    for signature in ("promptlake_member_role(uuid)", "promptlake_principal()"):
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {LOGIN_GROUP}")
    op.execute("REVOKE ALL ON FUNCTION promptlake_projects(text[]) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION promptlake_projects(text[]) TO {groups}")
    for signature in KEY_FN_NAMES + LOGIN_FN_NAMES:
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO promptlake_app")
    # principal logins: the schema is read-only to them (PostgreSQL >= 15 already revokes
    # CREATE from PUBLIC; a database made from an older template may not)
    op.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    _rewrite_policies(conn, upgrade=True)


def downgrade() -> None:
    conn = op.get_bind()
    _rewrite_policies(conn, upgrade=False)
    op.execute(f"REVOKE ALL ON projects FROM {LOGIN_GROUP}")
    for signature in ("promptlake_member_role(uuid)", "promptlake_principal()"):
        op.execute(f"REVOKE EXECUTE ON FUNCTION {signature} FROM {LOGIN_GROUP}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {LOGIN_GROUP}")
    for signature in reversed(KEY_FN_NAMES + LOGIN_FN_NAMES):
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    _replace_usage(new=False)
    op.execute(OLD_CREATE_PROJECT_FN)
    op.execute("DROP FUNCTION IF EXISTS promptlake_projects(text[])")
    op.execute(OLD_PRINCIPAL_FN)
    op.alter_column("projects", "name", comment="Unique, human-chosen project name.")
    op.drop_constraint(op.f("uq_projects_owner_name"), "projects", type_="unique")
    # names unique again: later same-named projects get their owner as a suffix
    op.execute(
        "UPDATE projects p SET name = left(p.name, 150) || ' (' || left(p.owner, 40) || ')'"
        " WHERE EXISTS (SELECT FROM projects q WHERE q.name = p.name"
        "   AND (q.created_at, q.id) < (p.created_at, p.id))"
    )
    op.create_unique_constraint("uq_projects_name", "projects", ["name"])
    op.drop_column("projects", "owner")
    op.drop_table("lake_keys")
    op.drop_table("principal_logins")
    # the login roles are cluster-wide and other databases may use them: kept
