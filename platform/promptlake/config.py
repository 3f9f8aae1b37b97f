"""Settings, read from ``PROMPTLAKE_*`` environment variables each time they are needed.

Nothing is read at import time, so a test or a notebook can change the environment and the
next ``connect()`` sees it.

- ``PROMPTLAKE_DATABASE_URL``: any PostgreSQL >= 15 with pgvector; unset = embedded server.
- ``PROMPTLAKE_HOME`` (``~/.promptlake``): where the embedded server keeps its data.
- ``PROMPTLAKE_MAX_TEXT_BYTES`` (1000000): largest prompt, output or JSON field (UTF-8 bytes).
- ``PROMPTLAKE_MAX_ATTACHMENT_BYTES`` (52428800): largest attachment stored inline.
- ``PROMPTLAKE_PRINCIPAL`` (the OS user name): who the application acts for; row-level
  security shows each principal only the projects it is a member of.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigurationError


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not an integer") from None
    if value <= 0:
        raise ConfigurationError(f"{name}={raw!r} must be a positive integer")
    return value


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    home: Path
    max_text_bytes: int
    max_attachment_bytes: int
    principal: str

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"


def load_settings() -> Settings:
    """Read the current environment into a :class:`Settings`."""
    url = os.environ.get("PROMPTLAKE_DATABASE_URL") or None
    if url is not None:
        url = normalize_url(url)
    home = Path(os.environ.get("PROMPTLAKE_HOME") or "~/.promptlake").expanduser()
    return Settings(
        database_url=url,
        home=home,
        max_text_bytes=_positive_int("PROMPTLAKE_MAX_TEXT_BYTES", 1_000_000),
        max_attachment_bytes=_positive_int("PROMPTLAKE_MAX_ATTACHMENT_BYTES", 50 * 1024 * 1024),
        principal=os.environ.get("PROMPTLAKE_PRINCIPAL") or _os_user(),
    )


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "local"


def normalize_url(url: str) -> str:
    """Make a PostgreSQL URL use the psycopg 3 driver, which promptlake needs for COPY."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ConfigurationError(
        f"PROMPTLAKE_DATABASE_URL must be a postgresql:// URL, got {url.split('://')[0]}://..."
    )
