"""Apply the Alembic migrations in the repository's top-level ``alembic/`` folder.

``connect()`` calls :func:`upgrade` so that a fresh database is usable at once; the check
of the current revision is one query, so an up-to-date database costs almost nothing.
Concurrent processes serialise on an advisory lock taken in ``alembic/env.py``.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Connection, Engine

from ..errors import ConfigurationError

ALEMBIC_DIR = Path(__file__).resolve().parents[3] / "alembic"


def alembic_config(url: str | None = None, connection: Connection | None = None):
    from alembic.config import Config

    if not (ALEMBIC_DIR / "env.py").exists():
        raise ConfigurationError(
            f"promptlake's migrations were not found at {ALEMBIC_DIR}; install promptlake "
            "from its source tree (pip install -e .)"
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
