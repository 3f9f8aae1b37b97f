"""Row-level security and roles, checked in the database: every role, two projects, every
project-scoped table and view, with and without a project context."""

from __future__ import annotations

import uuid

import psycopg
import pytest
import sqlalchemy as sa

import promptlake
from promptlake import PermissionDeniedError, ValidationError
from promptlake.db.models import Base

PROJECT_TABLES = sorted(
    t.name for t in Base.metadata.sorted_tables if "project_id" in t.c and t.name != "projects"
)
ANALYTICS = {"usage_daily", "score_trends", "session_stats", "duplicate_rates",
             "synthetic_share", "pii_rates", "run_metrics"}  # fmt: skip
EXPERIMENTS = {"experiments", "experiment_items", "experiment_results", "experiment_comparison"}
VIEWS = ["project_usage", "generation_canonical", "dedup_rates", "dataset_lineage",
         "experiment_results", "experiment_comparison",
         "entity_cooccurrence", "entity_mentions_daily", *sorted(ANALYTICS)]  # fmt: skip
DEDUP = {"dedup_indexes", "dedup_clusters", "dedup_members", "dedup_signatures",
         "generation_embeddings", "generation_canonical", "dedup_rates",
         "generation_search", "documents", "document_chunks",
         "generation_retrievals", "dataset_versions", "dataset_items", "run_datasets",
         "dataset_lineage"}  # fmt: skip
GRAPH = {"entities", "entity_mentions", "entity_extractions", "entity_relations",
         "relation_support", "entity_cooccurrence", "entity_mentions_daily"}  # fmt: skip

# what each member role may read in its own project (everything else: zero rows)
READABLE = {
    "admin": set(PROJECT_TABLES) | {"projects", "project_usage"} | DEDUP | ANALYTICS
    | EXPERIMENTS | GRAPH,
    "analyst": {
        "sessions", "generations", "scores", "attachments", "models", "prompt_templates",
        "prompt_versions", "prompt_labels", "runs", "pii_policies", "pii_findings",
        "project_members", "projects", "project_usage", *DEDUP, *ANALYTICS, *EXPERIMENTS,
        *GRAPH,
    },
    "writer": {
        "models", "prompt_templates", "prompt_versions", "prompt_labels", "runs", "pii_policies",
        "erasure_tombstones", "project_members", "projects",
        "run_metrics",  # runs are readable to writers; their generations count 0
        "documents", "document_chunks",  # RAG apps log as writers and retrieve
        "dataset_versions", "run_datasets", "dataset_lineage",  # training jobs link cuts
        "experiments",  # experiment metadata, never item results
    },
    "viewer": {"project_members", "projects", "project_usage"},
}  # fmt: skip


FILL = [
    "INSERT INTO pii_policies (project_id, version, operators, apply_at, vault)"
    " VALUES (:p, 1, '{}', 'ingest', true)",
    "INSERT INTO pii_findings (project_id, id, generation_id, field, entity_type, start_offset,"
    " end_offset, operator, policy_version, detector, score)"
    " VALUES (:p, gen_random_uuid(), :g, 'output', 'EMAIL', 0, 5, 'redact', 1, 'pattern', 1)",
    "INSERT INTO vault (project_id, generation_id, key_id, nonce, ciphertext)"
    " VALUES (:p, :g, 'k', '\\x00', '\\x00')",
    "INSERT INTO erasure_tombstones (project_id, subject_hash) VALUES (:p, '\\x01')",
    "INSERT INTO runs (project_id, id, name) VALUES (:p, gen_random_uuid(), 'nightly')",
    "INSERT INTO dedup_indexes (project_id, id, key, method, field, threshold, within_origin)"
    " VALUES (:p, :g, 'k', 'exact', 'content', 1, false)",
    "INSERT INTO dedup_clusters (project_id, index_id, id, size, min_similarity)"
    " VALUES (:p, :g, :g, 2, 1)",
    "INSERT INTO dedup_members (project_id, generation_id, index_id, cluster_id, similarity,"
    " source_hash) VALUES (:p, :g, :g, :g, 1, '\\x00')",
    "INSERT INTO dedup_signatures (project_id, generation_id, scheme, source_hash, set_hash,"
    " shingles, signature) VALUES (:p, :g, 's', '\\x00', 0, 0, '\\x00')",
    "INSERT INTO generation_embeddings (project_id, generation_id, embedder, dimension, vector)"
    " VALUES (:p, :g, 'e', 3, '[1,2,3]')",
    "INSERT INTO generation_search (project_id, generation_id, language, tsv, source_hash)"
    " VALUES (:p, :g, 'english', to_tsvector('english', 'x'), '\\x00')",
    "INSERT INTO documents (project_id, id, format, content, content_hash)"
    " VALUES (:p, :g, 'text', 'doc', '\\x00')",
    "INSERT INTO document_chunks (project_id, id, document_id, seq, text, start_offset,"
    " end_offset, embedder, vector) VALUES (:p, :g, :g, 0, 'doc', 0, 3, 'e', '[1,2,3]')",
    "INSERT INTO generation_retrievals (project_id, generation_id, chunk_id, rank, score)"
    " VALUES (:p, :g, :g, 1, 0.5)",
    "INSERT INTO dataset_versions (project_id, id, name, filter, row_count, path, md5)"
    " VALUES (:p, :g, 'sft', '{}', 1, 'data/split', 'abc.dir')",
    "INSERT INTO dataset_items (project_id, dataset_version_id, generation_id, split)"
    " VALUES (:p, :g, :g, 'train')",
    "INSERT INTO run_datasets (project_id, run_id, dataset_version_id, context)"
    " SELECT :p, id, :g, 'training' FROM runs WHERE project_id = :p",
    "INSERT INTO experiments (project_id, id, name, dataset_version_id)"
    " VALUES (:p, :g, 'e1', :g), (:p, gen_random_uuid(), 'e2', :g)",
    "INSERT INTO experiment_items (project_id, experiment_id, item_id, generation_id, status)"
    " SELECT :p, id, :g, :g, 'ok' FROM experiments WHERE project_id = :p",
    "INSERT INTO api_keys (project_id, id, prefix, key_hash, principal, role)"
    " VALUES (:p, :g, 'plk_' || CAST(:g AS text), '\\x00', 'key:x', 'writer')",
    "INSERT INTO entities (project_id, id, kind, name, key) VALUES (:p, :g, 'name', 'A B', 'ab'),"
    " (:p, gen_random_uuid(), 'url', 'https://x.io', 'https://x.io')",
    "INSERT INTO entity_mentions (project_id, generation_id, field, start_offset, end_offset,"
    " sentence, extractor, entity_id, surface, confidence, extractor_version)"
    " SELECT :p, :g, 'output', n, n + 1, 0, 'builtin', e.id, 'x', 1, '1'"
    " FROM entities e, (VALUES (0), (1)) v(n) WHERE e.project_id = :p"
    " AND (e.id = :g) = (n = 0)",
    "INSERT INTO entity_extractions (project_id, generation_id, extractor, extractor_version,"
    " source_hash, mentions) VALUES (:p, :g, 'builtin', '1', '\\x00', 2)",
    "INSERT INTO entity_relations (project_id, id, subject_id, predicate, object_id)"
    " SELECT :p, :g, :g, 'mentioned_with', id FROM entities WHERE project_id = :p AND id <> :g",
    "INSERT INTO relation_support (project_id, relation_id, generation_id) VALUES (:p, :g, :g)",
]


def _fill(dbq, project_id: uuid.UUID, generation_id: uuid.UUID) -> None:
    """Rows in the tables the API does not fill yet, so that every table has data."""
    for statement in FILL:
        dbq(statement, {"p": project_id, "g": generation_id})


@pytest.fixture
def world(lake, dbq):
    """Two projects full of data, and principals with each role in the first one."""
    projects = {}
    for name in ("alpha", "beta"):
        proj = lake.project(name)
        proj.prompts.register("greet", "Hello {name}", labels=["production"])
        with proj.session(end_user_id=f"user-{name}") as s:
            g = s.log(
                prompt=f"{name} secret", output="answer", model="m",
                attachments=[{"kind": "file", "mime_type": "text/plain", "data": b"x"}],
            )  # fmt: skip
        proj.score(g, "ok", True)
        _fill(dbq, proj.id, g.id)
        projects[name] = proj
    for role in ("admin", "writer", "analyst", "viewer"):
        projects["alpha"].grant(f"{role}-principal", role)
    return projects


def _visible(url: str, table: str, principal: str | None, project: uuid.UUID | None):
    """(rows visible, rows of other projects visible) for the application acting as
    ``principal`` in ``project``'s context."""
    engine = promptlake.db.engine.make_engine(url, app_role=True)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "SELECT set_config('promptlake.principal', :who, true),"
                    " set_config('promptlake.project_id', :p, true)"
                ),
                {"who": principal or "", "p": str(project) if project else ""},
            )
            column = "id" if table == "projects" else "project_id"
            if table == "project_usage":
                total = conn.execute(sa.text("SELECT count(*) FROM project_usage")).scalar()
                return total, 0
            total, foreign = conn.execute(
                sa.text(f"SELECT count(*), count(*) FILTER (WHERE {column} <> :p) FROM {table}"),
                {"p": project or uuid.UUID(int=0)},
            ).one()
            return total, foreign
    finally:
        engine.dispose()


@pytest.mark.parametrize("role", ["admin", "writer", "analyst", "viewer"])
def test_matrix_role_by_project_by_table(world, database_url, role) -> None:
    alpha, beta = world["alpha"].id, world["beta"].id
    principal = f"{role}-principal"
    for table in [*PROJECT_TABLES, "projects", *VIEWS]:
        in_alpha, foreign = _visible(database_url, table, principal, alpha)
        assert foreign == 0, (role, table, "saw another project's rows")
        if table in READABLE[role]:
            assert in_alpha > 0, (role, table, "should see its project's rows")
        else:
            assert in_alpha == 0, (role, table, "should see nothing")
        # not a member of beta: none of its rows, even with beta's context
        total, not_beta = _visible(database_url, table, principal, beta)
        assert total - not_beta == 0, (role, table, "saw a project it is not a member of")
        # no context: every project it is a member of, which is alpha alone
        if table not in ("projects", "project_members"):
            assert _visible(database_url, table, principal, None)[0] == in_alpha, (role, table)
    # with no principal at all, nothing anywhere
    for table in [*PROJECT_TABLES, "projects"]:
        assert _visible(database_url, table, None, alpha)[0] == 0, table


def test_writer_writes_but_cannot_read_back(world, database_url, monkeypatch) -> None:
    monkeypatch.setenv("PROMPTLAKE_DATABASE_URL", database_url)
    with promptlake.connect(principal="writer-principal") as lake:
        proj = lake.project("alpha", create=False)
        with proj.session(end_user_id="u") as s:
            g1 = s.log(prompt="written by a writer", output="o", model="m")
            s.log(prompt="next", output="o", parent=g1)
        with proj.writer() as w:
            w.log(prompt="bulk", output="o", parent=g1.id)
        assert w.stats.stored == 1 and w.rejected == []
        proj.score(g1, "ok", 1.0)
        # its own login holds no SELECT on generations at all
        with pytest.raises(PermissionDeniedError, match="permission denied for table"):
            proj.query("SELECT count(*) FROM generations")
        with pytest.raises(promptlake.NotFoundError):
            proj.generation(g1.id)


def test_analyst_reads_but_cannot_write_or_open_the_vault(world, database_url, monkeypatch):
    monkeypatch.setenv("PROMPTLAKE_DATABASE_URL", database_url)
    with promptlake.connect(principal="analyst-principal") as lake:
        proj = lake.project("alpha", create=False)
        _, rows = proj.query("SELECT input_text FROM generations")
        assert rows == [("alpha secret",)]
        with pytest.raises(PermissionDeniedError, match="permission denied for table vault"):
            proj.query("SELECT count(*) FROM vault")
        with pytest.raises(PermissionDeniedError, match="row-level security"):
            proj.log(prompt="analysts do not write", output="o")
        with pytest.raises(PermissionDeniedError):
            proj.grant("someone", "admin")


def test_non_members_cannot_see_that_a_project_has_data(world, database_url, monkeypatch, dbq):
    monkeypatch.setenv("PROMPTLAKE_DATABASE_URL", database_url)
    with promptlake.connect(principal="stranger") as lake:
        assert lake.projects() == []
        # a taken name and a free name answer alike: no existence oracle
        for name in ("alpha", "never-used"):
            with pytest.raises(promptlake.NotFoundError) as refused:
                lake.project(name, create=False)
            assert str(refused.value) == (
                f"no project named {name!r} that 'stranger' is a member of"
                " (`promptlake stats` lists yours)"
            )
        # creating it makes the stranger's own project: no squatting either way
        mine = lake.project("alpha")
        assert mine.id != world["alpha"].id
        assert lake.projects() == ["alpha"]
        assert [m.principal for m in mine.members()] == ["stranger"]
        _, rows = mine.query("SELECT count(*) FROM generations")
        assert rows == [(0,)]
    _, owners = dbq("SELECT owner FROM projects WHERE name = 'alpha'")
    assert sorted(o for (o,) in owners) == sorted([world["alpha"].lake.principal, "stranger"])
    # the first owner still gets its own project by that name
    owner_lake = world["alpha"].lake
    owner_lake._projects.clear()
    assert owner_lake.project("alpha").id == world["alpha"].id


def test_direct_logins_cannot_impersonate(world, admin_url, database_url) -> None:
    """A person logging in with their own role is that principal, whatever they set."""
    login = f"analyst_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {login} LOGIN IN ROLE promptlake_analyst")
    url = sa.engine.make_url(database_url).set(username=login)
    dsn = url.render_as_string(hide_password=False).replace("+psycopg", "")
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "SELECT set_config('promptlake.principal', 'admin-principal', false),"
            " set_config('promptlake.project_id', %s, false)",
            (str(world["alpha"].id),),
        )
        assert conn.execute("SELECT promptlake_principal()").fetchone() == (login,)
        assert conn.execute("SELECT count(*) FROM generations").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM vault")
    # once a member, the same login reads its project
    world["alpha"].grant(login, "analyst")
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "SELECT set_config('promptlake.project_id', %s, false)", (str(world["alpha"].id),)
        )
        assert conn.execute("SELECT count(*) FROM generations").fetchone() == (1,)


def test_catalog_forced_rls_invoker_views_and_an_owner_free_app_role(database_url, dbq) -> None:
    _, unprotected = dbq(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname IN ('project_id')"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
        " AND NOT (c.relrowsecurity AND c.relforcerowsecurity)"
    )
    assert unprotected == []
    _, projects = dbq(
        "SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE relname = 'projects'"
    )
    assert projects == [(True,)]
    _, definer_views = dbq(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind = 'v'"
        " AND NOT coalesce('security_invoker=true' = ANY(c.reloptions), false)"
    )
    assert definer_views == []
    _, owned = dbq(
        "SELECT relname FROM pg_class WHERE relowner = 'promptlake_app'::regrole"
        " AND relnamespace = 'public'::regnamespace"
        " UNION ALL SELECT proname FROM pg_proc WHERE proowner = 'promptlake_app'::regrole"
    )
    assert owned == []


@pytest.mark.parametrize(
    "nasty",
    ["x'; DROP TABLE generations; --", '"; DELETE FROM projects; --', "a' OR '1'='1", "$$;$$"],
)
def test_sql_injection_through_every_parameter(lake, dbq, nasty: str) -> None:
    proj = lake.project(nasty)
    with proj.session(end_user_id=nasty, name=nasty, tags=[nasty], metadata={nasty: nasty}) as s:
        g = s.log(prompt=nasty, output=nasty, model=nasty, name=nasty, tags=[nasty],
                  params={nasty: nasty}, metadata={nasty: [nasty]})  # fmt: skip
    proj.score(g, nasty, nasty, author=nasty, comment=nasty)
    v = proj.prompts.register(nasty, "{x} " + nasty.replace("{", "").replace("}", ""))
    assert proj.prompts.get(nasty).id == v.id
    proj.grant(nasty, "viewer")
    _, rows = proj.query("SELECT count(*) FROM generations WHERE input_text = :q", {"q": nasty})
    assert rows == [(1,)]
    with pytest.raises(promptlake.NotFoundError):
        lake.project(nasty + "'", create=False)
    _, tables = dbq("SELECT count(*) FROM generations")
    assert tables == [(1,)]
    assert lake.projects() == [nasty]


def test_grant_revoke_and_audit(world) -> None:
    alpha = world["alpha"]
    assert {m.principal: m.role for m in alpha.members()} == {
        "root" if False else alpha.lake.principal: "admin",
        "admin-principal": "admin", "analyst-principal": "analyst",
        "viewer-principal": "viewer", "writer-principal": "writer",
    }  # fmt: skip
    alpha.grant("viewer-principal", "analyst")
    assert alpha.revoke("writer-principal") is True
    assert alpha.revoke("writer-principal") is False
    actions = [(e.action, e.target) for e in alpha.audit_log()]
    assert ("revoke", "writer-principal") in actions
    assert ("grant", "viewer-principal") in actions
    assert ("create_project", "alpha") in actions
    with pytest.raises(ValidationError, match="role"):
        alpha.grant("x", "superuser")


def test_audit_log_is_append_only(world, database_url, monkeypatch) -> None:
    monkeypatch.setenv("PROMPTLAKE_DATABASE_URL", database_url)
    with promptlake.connect(principal="admin-principal") as lake:
        proj = lake.project("alpha", create=False)
        with pytest.raises(PermissionDeniedError):
            proj.query("DELETE FROM audit_log")
        with pytest.raises(PermissionDeniedError):
            proj.query("UPDATE audit_log SET principal = 'nobody'")
    assert len(world["alpha"].audit_log()) >= 5
