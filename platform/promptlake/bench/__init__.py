"""Benchmarks that measure promptlake's own write paths against their practical ceilings."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..client import Lake


def drop_projects(lake: Lake, prefix: str, vacuum: str | None = None) -> None:
    """Delete the bench's projects (names starting with ``prefix``) as the login of the
    lake's URL, past row-level security; the foreign keys cascade to all they hold.

    ``vacuum`` names tables to VACUUM afterwards (where the login may): a bulk load into
    the free space a mass delete leaves behind runs several times slower until then, and
    the next timed run would measure that."""
    import sqlalchemy as sa

    from ..db.engine import make_engine

    login = make_engine(lake.url)
    try:
        with login.begin() as conn:
            gone = conn.execute(
                sa.text("DELETE FROM projects WHERE starts_with(name, :p) RETURNING id"),
                {"p": prefix},
            ).scalars()
            mlflow_stores = [f"mlflow_{project_id.hex}" for project_id in gone]
        with login.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for name in mlflow_stores:  # their MLflow databases (see tracking.runs)
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        login.dispose()
    for name in [n for n in lake._projects if n.startswith(prefix)]:
        del lake._projects[name]  # cached handles would point at nothing
    if vacuum:
        as_login(lake, f"VACUUM {vacuum}")


def as_login(lake: Lake, statement: str) -> bool:
    """Run a maintenance statement (``CHECKPOINT``, ``VACUUM ...``: outside a transaction)
    as the login of the lake's URL; False when the login may not (the bench then runs
    without it, merely noisier)."""
    import psycopg
    import sqlalchemy as sa

    from ..db.engine import make_engine

    login = make_engine(lake.url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with login.connect() as conn:
            conn.execute(sa.text(statement))
        return True
    except sa.exc.DBAPIError as exc:
        if isinstance(exc.orig, psycopg.errors.InsufficientPrivilege):
            return False
        raise
    finally:
        login.dispose()
