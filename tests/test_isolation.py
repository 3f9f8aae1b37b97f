"""Tenant isolation against hostile SQL: an adversarial battery.

Project A is full of data whose every text carries a marker. A viewer, an analyst and a
writer of project B each send every attempt below through the documented doors (``Lake.query``,
``Project.query``, and a plain psycopg session on the URL of ``promptlake db url
--principal``), knowing A's project id. Each attempt must return none of A's markers (in
rows or in error messages), change nothing of A's (a digest of all of A's rows before and
after), and leave no file behind. The battery prints how many attempts it made and held.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

import promptlake
from promptlake.db.logins import login_password
from promptlake.db.models import Base

MARK = "ZQXSECRETA"
PROJECT_TABLES = sorted(
    t.name for t in Base.metadata.sorted_tables if "project_id" in t.c and t.name != "projects"
)
FILE = f"/tmp/promptlake-attack-{uuid.uuid4().hex}"
SET_A = (
    "set_config('promptlake.principal', '{owner}', {local}),"
    " set_config('promptlake.project_id', '{a}', {local})"
)

# every attempt: {a} is A's project id, {owner} A's admin principal, {file} a path
ATTACKS = [
    # forged claims in every clause
    "WITH f AS MATERIALIZED (SELECT "
    + SET_A
    + ") SELECT g.output, g.input_text FROM f, generations g",
    "SELECT output FROM generations WHERE (SELECT " + SET_A + ") IS NOT NULL",
    "SELECT output FROM generations, (SELECT " + SET_A + ") s",
    "SELECT (SELECT " + SET_A + "), output FROM generations",
    "SELECT output FROM generations ORDER BY (SELECT " + SET_A + ")",
    "SELECT output, count(*) FROM generations GROUP BY output HAVING (SELECT "
    + SET_A
    + ") IS NOT NULL",
    "SELECT output FROM generations LIMIT (SELECT length(concat(" + SET_A + ")))",
    "SELECT " + SET_A.replace("{local}", "false") + "; SELECT output, input_text FROM generations",
    "SELECT * FROM (SELECT " + SET_A + ") s CROSS JOIN LATERAL (SELECT output FROM generations) g",
    "WITH RECURSIVE r(n) AS (SELECT 1 FROM (SELECT " + SET_A + ") s UNION ALL SELECT n + 1 FROM r"
    " WHERE n < 3) SELECT g.output FROM r, generations g",
    "SELECT output FROM generations WHERE project_id = '{a}'",
    "SELECT s.end_user_id, s.name FROM sessions s WHERE s.project_id = '{a}'",
    "SELECT * FROM scores WHERE project_id = '{a}'",
    "SELECT * FROM projects",
    "SELECT * FROM project_members",
    "SELECT * FROM vault",
    "SELECT * FROM audit_log",
    "SELECT * FROM principal_logins",
    "SELECT * FROM lake_keys",
    "SELECT * FROM prompt_versions",
    "SELECT * FROM models",
    "SELECT * FROM project_usage",
    "WITH f AS MATERIALIZED (SELECT " + SET_A + ") SELECT u.* FROM f, project_usage u",
    "WITH f AS MATERIALIZED (SELECT " + SET_A + ") SELECT u.* FROM f, usage_daily u",
    "WITH f AS MATERIALIZED (SELECT " + SET_A + ") SELECT u.* FROM f, session_stats u",
    "SELECT promptlake_member_role('{a}'), promptlake_principal(), promptlake_role()",
    "SELECT * FROM promptlake_usage()",
    "SELECT promptlake_login('x')",
    "SELECT promptlake_create_project('x', NULL, '{a}')",
    "SELECT promptlake_register_key('master', 'forged')",
    "SELECT promptlake_projects('{{admin,analyst,writer,viewer}}')",
    # role and session games
    "RESET ROLE; SELECT output FROM generations",
    "SET ROLE promptlake_app; SELECT " + SET_A + "; SELECT output FROM generations",
    "SET ROLE postgres; SELECT output FROM generations",
    "SET ROLE promptlake_admin; SELECT " + SET_A + "; SELECT output FROM generations",
    "SET SESSION AUTHORIZATION postgres; SELECT output FROM generations",
    "SET SESSION AUTHORIZATION promptlake_app; SELECT output FROM generations",
    "SET row_security = off; SELECT output FROM generations",
    "ALTER TABLE generations DISABLE ROW LEVEL SECURITY",
    "ALTER TABLE generations NO FORCE ROW LEVEL SECURITY",
    "DROP POLICY generations_select ON generations",
    "GRANT promptlake_app TO CURRENT_USER",
    "ALTER ROLE CURRENT_USER SUPERUSER",
    "ALTER ROLE CURRENT_USER BYPASSRLS",
    "ALTER ROLE CURRENT_USER SET promptlake.principal = '{owner}'",
    "CREATE ROLE evil LOGIN SUPERUSER",
    "DO $$ BEGIN PERFORM " + SET_A.replace("{local}", "false") + "; END $$;"
    " SELECT output FROM generations",
    "DO $$ BEGIN EXECUTE 'RESET ROLE'; EXECUTE 'SET ROLE promptlake_app'; END $$;"
    " SELECT output FROM generations",
    "PREPARE p AS SELECT output FROM generations; SELECT " + SET_A + "; EXECUTE p",
    # the server's files and programs
    "COPY (SELECT 1) TO PROGRAM 'id > {file}'",
    "COPY generations FROM PROGRAM 'id'",
    "COPY (SELECT output FROM generations) TO '{file}'",
    "COPY generations FROM '/etc/passwd'",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT pg_read_binary_file('PG_VERSION')",
    "SELECT pg_ls_dir('.')",
    "SELECT lo_import('/etc/passwd')",
    "SELECT lo_export(lo_create(0), '{file}')",
    "SELECT * FROM pg_largeobject",
    "CREATE EXTENSION dblink",
    "ALTER SYSTEM SET log_statement = 'all'",
    "SELECT pg_reload_conf()",
    "SELECT set_config('log_statement', 'all', false)",
    # creating things
    "CREATE TABLE public.stolen AS SELECT * FROM generations",
    "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE VIEW public.v AS SELECT * FROM generations",
    "CREATE TEMP VIEW v AS SELECT * FROM generations; SELECT " + SET_A + "; SELECT * FROM v",
    "CREATE FUNCTION pg_temp.leak(text) RETURNS boolean LANGUAGE plpgsql COST 0.000001 AS"
    " $$ BEGIN RAISE EXCEPTION 'leak %', $1; END $$;"
    " SELECT count(*) FROM generations WHERE pg_temp.leak(output)",
    "CREATE FUNCTION pg_temp.leak2(text) RETURNS boolean LANGUAGE plpgsql COST 0.000001 AS"
    " $$ BEGIN RAISE EXCEPTION 'leak %', $1; END $$;"
    " SELECT " + SET_A + "; SELECT count(*) FROM generations WHERE pg_temp.leak2(input_text)",
    "CREATE FUNCTION pg_temp.eq(text, text) RETURNS boolean LANGUAGE plpgsql AS"
    " $$ BEGIN RAISE EXCEPTION 'leak %', $1; END $$;"
    " CREATE OPERATOR pg_temp.=== (LEFTARG = text, RIGHTARG = text, FUNCTION = pg_temp.eq);"
    " SELECT count(*) FROM generations WHERE output OPERATOR(pg_temp.===) 'x'",
    "CREATE FUNCTION pg_temp.promptlake_project() RETURNS uuid LANGUAGE sql"
    " AS $$ SELECT '{a}'::uuid $$;"
    " SELECT output FROM generations",
    "SET search_path = pg_temp, public; SELECT output FROM generations",
    # errors that echo values, statistics, plans
    "SELECT 1 / 0 FROM generations WHERE output LIKE '%" + MARK + "%'",
    "SELECT CAST(output AS integer) FROM generations",
    "SELECT CAST(input_text AS uuid) FROM generations WHERE (SELECT " + SET_A + ") IS NOT NULL",
    "SELECT jsonb_path_query(metadata, 'strict $.x.y') FROM generations",
    "SELECT * FROM pg_stats WHERE tablename IN ('generations', 'sessions', 'scores')",
    "SELECT * FROM pg_stats_ext",
    "SELECT * FROM pg_stat_activity",
    "SELECT * FROM pg_stat_user_tables WHERE relname = 'generations'",
    "EXPLAIN ANALYZE SELECT output FROM generations",
    "EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) SELECT output FROM generations"
    " WHERE (SELECT " + SET_A + ") IS NOT NULL",
    "SELECT ts_stat('SELECT tsv FROM generation_search')",
    "SELECT * FROM generation_search",
    "SELECT output FROM generations TABLESAMPLE SYSTEM (100)",
    # writes into A
    "UPDATE scores SET value_numeric = 0, comment = 'pwned' WHERE project_id = '{a}'",
    "WITH f AS MATERIALIZED (SELECT " + SET_A + ") UPDATE scores s SET comment = 'pwned' FROM f",
    "SELECT " + SET_A.replace("{local}", "false") + "; UPDATE generations SET output = 'pwned'",
    "DELETE FROM generations WHERE project_id = '{a}'",
    "WITH f AS MATERIALIZED (SELECT " + SET_A + ") DELETE FROM sessions USING f",
    "INSERT INTO scores (project_id, id, generation_id, name, data_type, value_numeric, source)"
    " SELECT project_id, gen_random_uuid(), generation_id, 'x', 'numeric', 1, 'human'"
    " FROM scores WHERE project_id = '{a}'",
    "INSERT INTO project_members (project_id, principal, role)"
    " VALUES ('{a}', CURRENT_USER, 'admin')",
    "UPDATE project_members SET role = 'admin'",
    "UPDATE projects SET name = 'pwned' WHERE id = '{a}'",
    "DELETE FROM projects WHERE id = '{a}'",
    "TRUNCATE generations",
    "INSERT INTO pii_policies (project_id, version, operators, apply_at, vault)"
    " VALUES ('{a}', 99, '{{}}', 'ingest', false)",
    "INSERT INTO erasure_tombstones (project_id, subject_hash) VALUES ('{a}', '\\x01')",
    "INSERT INTO principal_logins (principal, rolname) VALUES ('{owner}', CURRENT_USER)",
    "UPDATE principal_logins SET principal = '{owner}'",
]


def _digest(dbq, project_id: uuid.UUID) -> str:
    """A digest of every row of ``project_id`` in every table (ground truth, as owner)."""
    h = hashlib.sha256()
    for table in PROJECT_TABLES:
        _, rows = dbq(
            f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t"
            " WHERE project_id = :p",
            {"p": project_id},
        )
        h.update(f"{table}:{rows[0][0]}".encode())
    _, rows = dbq("SELECT p::text FROM projects p WHERE id = :p", {"p": project_id})
    h.update(str(rows).encode())
    _, members = dbq(
        "SELECT principal, role FROM project_members WHERE project_id = :p ORDER BY 1",
        {"p": project_id},
    )
    h.update(str(members).encode())
    return h.hexdigest()


@pytest.fixture
def tenants(lake, dbq, monkeypatch, database_url):
    """Project A (owner 'alice'), full of marked data; project B with a viewer, an
    analyst and a writer, and some data of its own."""
    monkeypatch.setenv("PROMPTLAKE_DATABASE_URL", database_url)
    with promptlake.connect(principal="alice") as alice:
        a = alice.project("tenant-a")
        a.prompts.register(f"greet-{MARK}", f"Hello {{name}} {MARK}", labels=["production"])
        a.set_pii_policy(vault=True)
        with a.session(end_user_id=f"user-{MARK}", name=f"s-{MARK}", tags=[MARK]) as s:
            for i in range(5):
                g = s.log(
                    prompt=f"prompt {i} {MARK} mail me at alice{i}@example.com",
                    output=f"output {i} {MARK}",
                    model=f"model-{MARK}",
                    metadata={"x": {"y": MARK}},
                    params={"k": MARK},
                )
                a.score(g, "quality", 0.9, comment=f"comment {MARK}")
        a.embed(embedder="hashing-64")
        a.erase(f"erased-{MARK}")
        a_id = a.id
    with promptlake.connect(principal="bob") as bob:
        b = bob.project("tenant-b")
        for role in ("viewer", "analyst", "writer"):
            b.grant(f"b{role}", role)
        with b.session(end_user_id="user-b") as s:
            g = s.log(prompt="prompt of b", output="output of b", model="m-b")
        b.score(g, "quality", 0.5)
        b_id = b.id
    return {"a": a_id, "b": b_id}


def _leaks(value: object) -> bool:
    return MARK in repr(value)


def _attempt(run, statement: str) -> tuple[bool, str]:
    """Run one attempt; (held, what came back)."""
    try:
        result = run(statement)
    except promptlake.PromptLakeError as exc:
        return not _leaks(str(exc)), f"refused: {str(exc)[:120]}"
    except psycopg.Error as exc:
        return not _leaks(str(exc)), f"refused: {str(exc).splitlines()[0][:120]}"
    return not _leaks(result), f"returned {str(result)[:120]}"


@pytest.mark.parametrize("role", ["viewer", "analyst", "writer"])
def test_adversarial_battery(tenants, dbq, role, database_url, monkeypatch, capsys) -> None:
    principal = f"b{role}"
    before = _digest(dbq, tenants["a"])
    attempts = held = 0
    failures = []
    statements = [s.format(a=tenants["a"], owner="alice", file=FILE, local="true") for s in ATTACKS]
    with promptlake.connect(principal=principal) as lake:
        proj = lake.project("tenant-b", create=False)
        login_dsn = lake.login_url()

        def via_psql(statement: str):
            # a raw session, as psql would have: autocommit, simple query protocol
            with psycopg.connect(login_dsn, autocommit=True) as conn:
                cur = conn.cursor()
                cur.execute(statement.encode(), prepare=False)
                out = []
                while True:
                    if cur.description is not None:
                        out.append(cur.fetchall())
                    if not cur.nextset():
                        break
                return out

        doors = {
            "Lake.query": lambda q: lake.query(q),
            "Project.query": lambda q: proj.query(q),
            "Lake.sql": lambda q: lake.sql(q).values.tolist(),
            "psql": via_psql,
        }
        for door, run in doors.items():
            for statement in statements:
                attempts += 1
                ok, what = _attempt(run, statement)
                if ok and os.path.exists(FILE):
                    ok, what = False, f"left {FILE} behind"
                    Path(FILE).unlink()
                if ok:
                    held += 1
                else:
                    failures.append((door, statement, what))
    after = _digest(dbq, tenants["a"])
    with capsys.disabled():
        print(f"\nisolation battery as {principal}: {attempts} attempts, {held} held")
    assert failures == []
    assert before == after, "an attempt changed project A"
    assert attempts == held == len(ATTACKS) * 4


def test_principal_sql_runs_on_its_own_login(tenants, database_url, monkeypatch, dbq) -> None:
    monkeypatch.setenv("PROMPTLAKE_DATABASE_URL", database_url)
    with promptlake.connect(principal="banalyst") as lake:
        _, rows = lake.query(
            "SELECT session_user, current_user, promptlake_principal(),"
            " (SELECT rolsuper FROM pg_roles WHERE rolname = session_user),"
            " pg_has_role(session_user, 'promptlake_app', 'MEMBER')"
        )
        login, current, principal, superuser, app = rows[0]
        assert login == current and login.startswith("pl_banalyst_")
        assert principal == "banalyst" and superuser is False and app is False
        url = sa.engine.make_url(lake.login_url())
        assert url.username == login and url.drivername == "postgresql"
        assert url.password == login_password(lake.master_key(), "banalyst")
        _, (row,) = dbq("SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid"
                        " WHERE rolname = :r", {"r": login})  # fmt: skip
        assert row == (True,)
    # no login role a principal gets is a superuser, owns anything, or may run programs
    _, bad = dbq(
        "SELECT r.rolname FROM pg_roles r WHERE r.oid IN (SELECT member FROM pg_auth_members"
        " WHERE roleid = 'promptlake_principal_login'::regrole) AND (r.rolsuper OR"
        " r.rolcreaterole OR r.rolcreatedb OR r.rolbypassrls OR r.rolreplication"
        " OR pg_has_role(r.oid, 'pg_execute_server_program', 'MEMBER')"
        " OR pg_has_role(r.oid, 'pg_read_server_files', 'MEMBER')"
        " OR pg_has_role(r.oid, 'pg_write_server_files', 'MEMBER')"
        " OR pg_has_role(r.oid, 'promptlake_app', 'MEMBER')"
        " OR EXISTS (SELECT FROM pg_class c WHERE c.relowner = r.oid)"
        " OR EXISTS (SELECT FROM pg_proc p WHERE p.proowner = r.oid))"
    )
    assert bad == []
    _, logins = dbq("SELECT principal FROM principal_logins ORDER BY 1")
    assert ("banalyst",) in logins


def test_queries_span_all_of_a_principals_projects(tenants, database_url, monkeypatch) -> None:
    monkeypatch.setenv("PROMPTLAKE_DATABASE_URL", database_url)
    with promptlake.connect(principal="bob") as bob:
        c = bob.project("tenant-c")
        c.log(prompt="prompt of c", output="output of c", model="m-c")
        c.grant("banalyst", "analyst")
    with promptlake.connect(principal="banalyst") as lake:
        _, rows = lake.query(
            "SELECT p.name, count(*) FROM generations g JOIN projects p ON p.id = g.project_id"
            " GROUP BY 1 ORDER BY 1"
        )
        assert rows == [("tenant-b", 1), ("tenant-c", 1)]
        _, narrowed = lake.query("SELECT count(*) FROM generations", project="tenant-c")
        assert narrowed == [(1,)]
        frame = lake.sql("SELECT origin, count(*) AS n FROM generations GROUP BY 1")
        assert frame.to_dict("records") == [{"origin": "real", "n": 2}]
    with (
        promptlake.connect(principal="nobody-at-all") as lake,
        pytest.raises(promptlake.NotFoundError, match="member of no project"),
    ):
        lake.query("SELECT count(*) FROM generations")


def test_writer_of_b_cannot_touch_a_through_the_api(tenants, database_url, monkeypatch, dbq):
    monkeypatch.setenv("PROMPTLAKE_DATABASE_URL", database_url)
    before = _digest(dbq, tenants["a"])
    with promptlake.connect(principal="bwriter") as lake:
        for name in ("tenant-a", str(tenants["a"])):
            with pytest.raises(promptlake.NotFoundError):
                lake.project(name, create=False)
        b = lake.project("tenant-b", create=False)
        _, gens = dbq(
            "SELECT id FROM generations WHERE project_id = :p LIMIT 1", {"p": tenants["a"]}
        )
        with pytest.raises(promptlake.PromptLakeError):
            b.score(gens[0][0], "quality", 0.0)
        with pytest.raises(promptlake.PromptLakeError):
            b.log(prompt="x", output="y", parent=gens[0][0])
    assert _digest(dbq, tenants["a"]) == before


def test_same_names_of_different_owners(lake, database_url, monkeypatch) -> None:
    monkeypatch.setenv("PROMPTLAKE_DATABASE_URL", database_url)
    ids = {}
    for owner in ("olga", "oscar"):
        with promptlake.connect(principal=owner) as own:
            project = own.project("shared-name")
            project.grant("carol", "analyst")
            ids[owner] = project.id
    assert ids["olga"] != ids["oscar"]
    with promptlake.connect(principal="carol") as carol:
        with pytest.raises(promptlake.ValidationError, match="several of your projects"):
            carol.project("shared-name", create=False)
        assert carol.project(str(ids["oscar"]), create=False).id == ids["oscar"]
        with pytest.raises(promptlake.ValidationError):  # ambiguous, not absent: no new one
            carol.project("shared-name")
        assert carol.projects() == ["shared-name", "shared-name"]
