"""Benchmarks that measure promptlake's own write paths against their practical ceilings."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..client import Lake


def drop_projects(lake: Lake, prefix: str) -> None:
    """Delete the bench's projects (names starting with ``prefix``) as the login of the
    lake's URL, past row-level security; the foreign keys cascade to all they hold."""
    import sqlalchemy as sa

    from ..db.engine import make_engine

    login = make_engine(lake.url)
    try:
        with login.begin() as conn:
            conn.execute(sa.text("DELETE FROM projects WHERE starts_with(name, :p)"), {"p": prefix})
    finally:
        login.dispose()
    for name in [n for n in lake._projects if n.startswith(prefix)]:
        del lake._projects[name]  # cached handles would point at nothing
