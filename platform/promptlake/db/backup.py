"""Backup and restore with PostgreSQL's own tools (the embedded server ships them).

``dump`` writes a custom-format archive with ``pg_dump``: every table, policy, grant,
function and view of the database, in a file only its owner may read (0600). Roles are
cluster-wide, so ``restore`` first makes sure promptlake's roles exist on the target
server, then runs ``pg_restore`` in a single
transaction: a failed restore changes nothing. A dump holds no change to ``pg_catalog``,
so ``restore`` then marks ``ts_match_vq`` LEAKPROOF again, as migration 0006 did (when the
login is a superuser), or full-text search would silently lose its index under row-level
security.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psycopg

from ..errors import ConfigurationError, DatabaseError
from . import embedded

ROLES_SQL = """
DO $$ BEGIN
  BEGIN CREATE ROLE promptlake_admin NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END;
  BEGIN CREATE ROLE promptlake_writer NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END;
  BEGIN CREATE ROLE promptlake_analyst NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END;
  BEGIN CREATE ROLE promptlake_viewer NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END;
  BEGIN CREATE ROLE promptlake_app LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END;
  BEGIN CREATE ROLE promptlake_principal_login NOLOGIN;
  EXCEPTION WHEN duplicate_object THEN NULL; END;
END $$;
GRANT promptlake_admin, promptlake_writer, promptlake_analyst, promptlake_viewer
   TO promptlake_app;
"""
# as in migration 0006 (which explains why it is safe); a no-op for other logins
LEAKPROOF_SQL = """
DO $$ BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    ALTER FUNCTION pg_catalog.ts_match_vq(tsvector, tsquery) LEAKPROOF;
  END IF;
END $$;
"""


def _tool(name: str) -> str:
    bundled = embedded.bin_dir() / name
    if bundled.exists():
        return str(bundled)
    found = shutil.which(name)
    if found is None:
        raise ConfigurationError(f"{name} was not found (neither bundled nor on PATH)")
    return found


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _run(args: list[str], what: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise DatabaseError(f"{what} failed: {done.stderr.strip() or done.stdout.strip()}")


def dump(url: str, path: Path) -> Path:
    """Write the whole database behind ``url`` to ``path`` (pg_dump custom format)."""
    path = path.expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    # every tenant's raw rows: readable by the owner alone, whatever the umask
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    os.chmod(path, 0o600)
    _run([_tool("pg_dump"), "--format=custom", "--file", str(path), "--dbname", _libpq(url)],
         "pg_dump")  # fmt: skip
    os.chmod(path, 0o600)
    return path


def has_data(url: str) -> bool:
    with psycopg.connect(_libpq(url)) as conn:
        exists = conn.execute("SELECT to_regclass('public.projects') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return False
        return bool(conn.execute("SELECT EXISTS (SELECT 1 FROM projects)").fetchone()[0])


def restore(url: str, path: Path, *, replace: bool = False) -> None:
    """Load an archive made by :func:`dump` into the database behind ``url``.

    A database that already holds projects is only overwritten with ``replace``."""
    path = path.expanduser().resolve()
    if not path.exists():
        raise ConfigurationError(f"no backup at {path}")
    if has_data(url) and not replace:
        raise ConfigurationError(
            "the target database already holds projects; pass --replace to overwrite it"
        )
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(ROLES_SQL)
    _run([_tool("pg_restore"), "--clean", "--if-exists", "--single-transaction",
          "--exit-on-error", "--dbname", _libpq(url), str(path)], "pg_restore")  # fmt: skip
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(LEAKPROOF_SQL)
