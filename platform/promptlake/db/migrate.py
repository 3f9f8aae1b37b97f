"""Apply promptlake's Alembic migrations.

The migrations live in the repository's top-level ``alembic/`` folder; a wheel carries a
copy made at build time (``promptlake/_build.py``) in ``promptlake/migrations/``. An
installed package uses its own copy, a source checkout (editable install) its
``alembic/``. ``connect()`` calls :func:`upgrade` so that a fresh database is usable at
once; the check of the current revision is one query, so an up-to-date database costs
almost nothing. Concurrent processes serialise on an advisory lock taken in ``env.py``.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Connection, Engine

from ..errors import ConfigurationError

PACKAGED_DIR = Path(__file__).resolve().parents[1] / "migrations"
"""Where an installed wheel holds the migrations."""
SOURCE_DIR = Path(__file__).resolve().parents[3] / "alembic"
"""Where a source checkout holds them (the one copy in git)."""


def migrations_dir() -> Path:
    """The folder of ``env.py``, ``script.py.mako`` and ``versions/`` to migrate with."""
    for candidate in (PACKAGED_DIR, SOURCE_DIR):
        if (candidate / "env.py").is_file():
            return candidate
    return PACKAGED_DIR


ALEMBIC_DIR = migrations_dir()


def alembic_config(url: str | None = None, connection: Connection | None = None):
    from alembic.config import Config

    if not (ALEMBIC_DIR / "env.py").exists():
        raise ConfigurationError(
            f"promptlake's migrations were not found (looked in {PACKAGED_DIR} and"
            f" {SOURCE_DIR}); reinstall promptlake from a wheel or its source tree"
        )
    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> bool:
    """Migrate to ``revision``; return True if anything was applied."""
    from alembic import command

    if revision == "head" and current_revision(engine) == head_revision():
        return False
    with engine.begin() as conn:
        command.upgrade(alembic_config(connection=conn), revision)
    return True


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    with engine.begin() as conn:
        command.downgrade(alembic_config(connection=conn), revision)
