"""Migrations: one head, up and down round-trip, no drift between models and migrations."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from promptlake.db import migrate as migrations
from promptlake.db.models import Base

VERSIONS = Path(migrations.ALEMBIC_DIR) / "versions"


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def _drift(engine: sa.Engine) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return compare_metadata(context, Base.metadata)


def test_single_head_and_linear_history() -> None:
    script = ScriptDirectory.from_config(migrations.alembic_config())
    assert len(script.get_heads()) == 1
    revisions = list(script.walk_revisions())
    assert revisions[-1].down_revision is None


def test_upgrade_downgrade_round_trip_without_drift(empty_database_url: str) -> None:
    engine = sa.create_engine(empty_database_url)
    try:
        assert migrations.upgrade(engine) is True
        assert migrations.upgrade(engine) is False  # already at head: nothing to do
        assert migrations.current_revision(engine) == migrations.head_revision()
        assert _drift(engine) == []
        expected = {t.name for t in Base.metadata.sorted_tables}
        assert _tables(engine) == expected
        with engine.connect() as conn:
            assert (
                conn.execute(
                    sa.text("SELECT count(*) FROM pg_extension WHERE extname = 'vector'")
                ).scalar()
                == 1
            )

        migrations.downgrade(engine, "base")
        assert _tables(engine) == set()
        assert migrations.current_revision(engine) is None

        migrations.upgrade(engine)
        assert _tables(engine) == expected
        assert _drift(engine) == []
    finally:
        engine.dispose()


def test_every_migration_steps_down_and_up_one_at_a_time(empty_database_url: str) -> None:
    engine = sa.create_engine(empty_database_url)
    script = ScriptDirectory.from_config(migrations.alembic_config())
    order = [r.revision for r in reversed(list(script.walk_revisions()))]
    try:
        for revision in order:
            migrations.upgrade(engine, revision)
            assert migrations.current_revision(engine) == revision
        for revision in reversed(order):
            down = script.get_revision(revision).down_revision
            migrations.downgrade(engine, down or "base")
            assert migrations.current_revision(engine) == down
    finally:
        engine.dispose()


def test_migrations_are_self_contained() -> None:
    """A migration must not import live package code: models change, migrations must not."""
    for path in VERSIONS.glob("*.py"):
        source = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+promptlake", source, re.M), path.name


def test_script_template_imports_pgvector() -> None:
    template = (Path(migrations.ALEMBIC_DIR) / "script.py.mako").read_text()
    assert "import pgvector.sqlalchemy" in template


def test_migrations_applied_to_a_populated_database_keep_every_row(empty_database_url) -> None:
    engine = sa.create_engine(empty_database_url)
    tables = ["projects", "sessions", "generations", "scores"]
    try:
        migrations.upgrade(engine, "0001")
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO projects (id, name) VALUES (gen_random_uuid(), 'old');")
            )
            pid = conn.execute(sa.text("SELECT id FROM projects")).scalar()
            conn.execute(
                sa.text(
                    "INSERT INTO sessions (project_id, id) SELECT :p, gen_random_uuid()"
                    " FROM generate_series(1, 50)"
                ),
                {"p": pid},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO generations (project_id, id, session_id, input_text, output,"
                    " input_hash, output_hash, content_hash)"
                    " SELECT :p, gen_random_uuid(), s.id, 'q' || n, 'a', '', '', ''"
                    " FROM sessions s, generate_series(1, 20) n"
                ),
                {"p": pid},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO scores (project_id, id, generation_id, name, data_type,"
                    " value_numeric, source) SELECT :p, gen_random_uuid(), id, 'x', 'numeric',"
                    " 1, 'human' FROM generations"
                ),
                {"p": pid},
            )

        def counts() -> dict[str, int]:
            with engine.connect() as conn:
                return {
                    t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in tables
                }

        before = counts()
        assert before == {"projects": 1, "sessions": 50, "generations": 1000, "scores": 1000}
        migrations.upgrade(engine)
        assert counts() == before
        migrations.downgrade(engine, "0001")
        assert counts() == before
    finally:
        engine.dispose()
