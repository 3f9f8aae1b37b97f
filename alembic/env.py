"""Alembic environment for promptlake.

The database comes from, in order: a connection handed in by ``promptlake.db.migrate``,
``sqlalchemy.url`` in the config, or promptlake's own settings (``PROMPTLAKE_DATABASE_URL``
or the embedded server), so ``alembic upgrade head`` works from the repository root.
An advisory lock serialises concurrent migrations.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from promptlake.db.models import Base

config = context.config
target_metadata = Base.metadata
MIGRATION_LOCK = 7_346_215_001  # arbitrary constant: pg_advisory_xact_lock key


def _url() -> str:
    section = config.config_ini_section
    if config.file_config.has_option(section, "sqlalchemy.url"):
        return config.file_config.get(section, "sqlalchemy.url")
    from promptlake.config import load_settings
    from promptlake.db.engine import resolve_url

    return resolve_url(load_settings())


def _include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Run-time indexes (per-embedder HNSW, ``hnsw_*``, made by ``promptlake embed``) are
    not schema drift."""
    return not (type_ == "index" and reflected and (name or "").startswith("hnsw_"))


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=_include_object,
        compare_type=True,
        compare_server_default=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        context.run_migrations()


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url())
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
