"""Test fixtures: a real PostgreSQL with pgvector, a fresh migrated database per test.

With ``PROMPTLAKE_TEST_DATABASE_URL`` set (a superuser URL to any PostgreSQL >= 15 with
pgvector), tests create their databases there; otherwise one embedded server is started in
a temporary folder for the whole run and removed afterwards. A template database is
migrated once; each test gets a copy of it (``CREATE DATABASE ... TEMPLATE``), so tests are
isolated without paying for migrations each time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql

import promptlake
from promptlake.db import embedded
from promptlake.db import migrate as migrations

TEMPLATE = "promptlake_test_template"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _with_database(url: str, database: str) -> str:
    return sa.engine.make_url(url).set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def admin_url() -> Iterator[str]:
    """A superuser SQLAlchemy URL to the server the tests use."""
    configured = os.environ.get("PROMPTLAKE_TEST_DATABASE_URL")
    if configured:
        from promptlake.config import normalize_url

        yield normalize_url(configured)
        return
    home = Path(tempfile.mkdtemp(prefix="promptlake-tests-"))
    url = embedded.start(home / "pgdata", database="postgres")
    # a throwaway server: durability buys nothing here, and tests create many databases
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET fsync = off")
        conn.execute("ALTER SYSTEM SET full_page_writes = off")
        conn.execute("SELECT pg_reload_conf()")
    try:
        yield url
    finally:
        embedded.stop(home / "pgdata")
        shutil.rmtree(home, ignore_errors=True)


def create_database(admin: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(_libpq(admin), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {} STRATEGY WAL_LOG").format(sql.Identifier(template))
        conn.execute(statement)
    return _with_database(admin, name)


def drop_database(admin: str, name: str) -> None:
    with psycopg.connect(_libpq(admin), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def template_url(admin_url: str) -> str:
    url = create_database(admin_url, TEMPLATE)
    engine = sa.create_engine(url)
    try:
        migrations.upgrade(engine)
    finally:
        engine.dispose()
    # no connection may stay open on a template database
    with psycopg.connect(_libpq(admin_url), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (TEMPLATE,)
        )
    return url


@pytest.fixture
def database_url(admin_url: str, template_url: str) -> Iterator[str]:
    """A fresh database at the latest schema, dropped after the test."""
    name = f"promptlake_test_{uuid.uuid4().hex[:12]}"
    url = create_database(admin_url, name, template=TEMPLATE)
    try:
        yield url
    finally:
        drop_database(admin_url, name)


@pytest.fixture
def empty_database_url(admin_url: str) -> Iterator[str]:
    """A fresh database with no schema at all (for migration tests)."""
    name = f"promptlake_empty_{uuid.uuid4().hex[:12]}"
    url = create_database(admin_url, name)
    try:
        yield url
    finally:
        drop_database(admin_url, name)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep tests off the user's ~/.promptlake and any configured database."""
    monkeypatch.setenv("PROMPTLAKE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PROMPTLAKE_DATABASE_URL", raising=False)
    for name in ("PROMPTLAKE_MAX_TEXT_BYTES", "PROMPTLAKE_MAX_ATTACHMENT_BYTES"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def lake(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[promptlake.Lake]:
    monkeypatch.setenv("PROMPTLAKE_DATABASE_URL", database_url)
    with promptlake.connect() as opened:
        yield opened


@pytest.fixture
def project(lake: promptlake.Lake) -> promptlake.Project:
    return lake.project("test-project")


@pytest.fixture
def dbq(database_url: str):
    """Run SQL as the database owner, past row-level security: the ground truth for tests.
    Returns ``(column names, rows)`` like ``Lake.query``."""
    engine = sa.create_engine(database_url)

    def query(sql_text: str, params: dict | None = None) -> tuple[list[str], list[tuple]]:
        with engine.begin() as conn:
            result = conn.execute(sa.text(sql_text), params or {})
            if not result.returns_rows:
                return [], []
            return list(result.keys()), [tuple(r) for r in result]

    yield query
    engine.dispose()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"shared sample data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def mlflow_database(admin_url):
    """The default stores (a database ``mlflow_<project id>`` per project, made from
    ``mlflow_template``, on the test server), dropped after the session if the session
    created them (MLflow caches its stores per URI)."""
    dsn = admin_url.replace("+psycopg", "")
    query = "SELECT datname FROM pg_database WHERE starts_with(datname, 'mlflow_')"
    with psycopg.connect(dsn, autocommit=True) as conn:
        existed = {name for (name,) in conn.execute(query)}
    yield
    from promptlake.tracking import runs as tracking_runs

    tracking_runs._clients.clear()
    tracking_runs._default_uris.clear()
    with psycopg.connect(dsn, autocommit=True) as conn:
        for (name,) in conn.execute(query).fetchall():
            if name not in existed:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


@pytest.fixture
def mlflow_store(mlflow_database, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
