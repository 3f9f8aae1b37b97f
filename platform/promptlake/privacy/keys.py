"""The master key, and the keys derived from it for each project.

One 32-byte master key, from ``PROMPTLAKE_VAULT_KEY`` (base64) or else a key file under
``PROMPTLAKE_HOME`` created on first use with mode 0600. It never enters the database.
From it, per project and per purpose, HMAC-SHA256 derives the keys that:

- encrypt the vault (AES-256-GCM),
- make pseudonyms (so ``<EMAIL_7f3a9c>`` is stable within a project, unlinkable across),
- hash erased end-user ids into tombstones.

Deployments that run promptlake on several machines must share ``PROMPTLAKE_VAULT_KEY``,
or each machine would pseudonymize the same value differently.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import uuid
from pathlib import Path

from ..config import Settings
from ..errors import ConfigurationError

KEY_FILE = "vault.key"


def master_key(settings: Settings) -> bytes:
    """The master key: from the environment, else the key file (created if missing).
    Library code asks ``Lake.master_key()``, which also checks it against the store."""
    key = load_master_key(settings, create=True)
    assert key is not None
    return key


def load_master_key(settings: Settings, *, create: bool) -> bytes | None:
    """The configured key: ``PROMPTLAKE_VAULT_KEY``, else the key file; a missing file
    is created when ``create``, else None."""
    configured = os.environ.get("PROMPTLAKE_VAULT_KEY")
    if configured:
        try:
            key = base64.b64decode(configured.strip(), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise ConfigurationError("PROMPTLAKE_VAULT_KEY is not base64") from None
        if len(key) != 32:
            raise ConfigurationError(
                f"PROMPTLAKE_VAULT_KEY must decode to 32 bytes, not {len(key)}; make one with"
                ' python -c "import os, base64; print(base64.b64encode(os.urandom(32)).decode())"'
            )
        return key
    path = settings.home / KEY_FILE
    if not create:
        return _read_key_file(path) if path.exists() else None
    return _key_file(path)


def check_registered(settings: Settings, key: bytes | None, registered: str | None) -> None:
    """Raise a clear error unless ``key`` is the one the store was written with."""
    if registered is None:
        return
    where = (
        "PROMPTLAKE_VAULT_KEY"
        if os.environ.get("PROMPTLAKE_VAULT_KEY")
        else settings.home / KEY_FILE
    )
    if key is None:
        raise ConfigurationError(
            f"this store was written with master key {registered}, and {where} does not"
            " exist: pseudonyms, vault entries and erasure tombstones depend on that key."
            f" Restore the key file from your backup to {where} (mode 0600), or set"
            " PROMPTLAKE_VAULT_KEY to it (base64). Only to start over deliberately,"
            " with pseudonyms changing and the vault unreadable, see `promptlake db"
            " forget-key --help`."
        )
    if key_id(key) != registered:
        raise ConfigurationError(
            f"{where} holds master key {key_id(key)}, but this store was written with key"
            f" {registered}: pseudonyms would change, erased end users would no longer be"
            " recognised and the vault could not be read. Put the original key back (from"
            " your backup), or point PROMPTLAKE_HOME / PROMPTLAKE_VAULT_KEY at it."
        )


def _key_file(path: Path) -> bytes:
    """Read the key file, or create it atomically: the key is written whole to a private
    temporary file and linked into place, so a concurrent reader (another thread or
    process starting at the same moment) never sees a half-written key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return _read_key_file(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32))
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # another creator won: its key is it
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return _read_key_file(path)


def _read_key_file(path: Path) -> bytes:
    key = path.read_bytes()
    if len(key) != 32:
        raise ConfigurationError(f"{path} does not hold a 32-byte key")
    if path.stat().st_mode & 0o077:
        raise ConfigurationError(f"{path} is readable by others; chmod 600 it")
    return key


def derive(master: bytes, purpose: str, project_id: uuid.UUID) -> bytes:
    """A 32-byte key for one purpose in one project."""
    return hmac.new(master, f"promptlake/{purpose}/{project_id}".encode(), hashlib.sha256).digest()


def key_id(key: bytes) -> str:
    """A short fingerprint naming a key without revealing it."""
    return hashlib.sha256(b"promptlake/key-id/" + key).hexdigest()[:16]


def tombstone(master: bytes, project_id: uuid.UUID, end_user_id: str) -> bytes:
    """The keyed hash kept for an erased end user."""
    key = derive(master, "tombstone", project_id)
    return hmac.new(key, end_user_id.encode(), hashlib.sha256).digest()
