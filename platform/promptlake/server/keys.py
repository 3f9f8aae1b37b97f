"""API keys: how a service that cannot import promptlake proves who it is to the server.

A key is 32 random bytes (``plk_`` + URL-safe base64), shown once when it is made; the
database keeps its sha256 and its first 12 characters (to tell keys apart in listings).
Each key belongs to one project and acts as one principal with one role there: by default
a principal of its own (``key:<prefix>``, made a member with that role), so a writer key can
never read, whoever made it. Creating, listing and revoking are admin work, checked by the
row-level security of ``api_keys`` (migration 0010); the server finds a key through the
SECURITY DEFINER function ``promptlake_api_key(hash)``, which also returns the principal's
role now, so a key whose principal lost that role stops working.

This module needs no web framework: ``proj.keys`` works with the base install.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..db.models import API_KEY_ROLES
from ..errors import NotFoundError, PermissionDeniedError, Problem, ValidationError
from ..ids import uuid7
from ..ingest.records import _Collector

if TYPE_CHECKING:
    from ..client import Lake, Project

KEY_PREFIX = "plk_"
SHOWN = 12  # characters of the key kept in clear, to identify it


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True)
class ApiKey:
    """A stored key (never the key itself)."""

    id: uuid.UUID
    prefix: str
    principal: str
    role: str
    name: str | None
    rate_per_second: float | None
    created_by: str | None
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True)
class NewKey:
    """A key just made: ``secret`` is the only time the key is shown."""

    secret: str
    key: ApiKey


@dataclass(frozen=True)
class Authenticated:
    """Who a request's key acts as."""

    key_id: uuid.UUID
    project_id: uuid.UUID
    project_name: str
    principal: str
    role: str
    rate_per_second: float | None


class AuthError(Exception):
    """A missing, unknown, revoked or no longer valid key: HTTP 401 with this message."""


_COLUMNS = "id, prefix, principal, role, name, rate_per_second, created_by, created_at, revoked_at"


class ApiKeys:
    """``proj.keys``: create, list and revoke the project's API keys (admins only)."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def create(
        self,
        role: str,
        *,
        principal: str | None = None,
        name: str | None = None,
        rate_per_second: float | None = None,
    ) -> NewKey:
        """A new key for ``role`` in this project. Without ``principal`` the key acts as a
        principal of its own; with one, that principal is made a member with ``role`` if it
        is not one yet, and must already hold ``role`` if it is."""
        c = _Collector(10_000)
        c.choice("role", role, API_KEY_ROLES)
        if principal is not None:
            c.name("principal", principal)
        c.text("name", name)
        if rate_per_second is not None and (
            isinstance(rate_per_second, bool)
            or not isinstance(rate_per_second, int | float)
            or not rate_per_second > 0
            or rate_per_second == float("inf")
        ):
            c.add("rate_per_second", f"must be a positive number, got {rate_per_second!r}")
        if c.problems:
            raise ValidationError(c.problems)
        project, lake = self.project, self.project.lake
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        prefix = secret[:SHOWN]
        who = principal or f"key:{prefix}"
        key_id = uuid7()
        from ..access import write_audit

        try:
            with lake._transaction(project) as conn:
                if conn.execute("SELECT promptlake_role()").fetchone()[0] != "admin":
                    raise PermissionDeniedError("")
                conn.execute(
                    "INSERT INTO project_members (project_id, principal, role, granted_by)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (project_id, principal) DO NOTHING",
                    (project.id, who, role, lake.principal),
                )
                held = conn.execute(
                    "SELECT role FROM project_members WHERE project_id = %s AND principal = %s",
                    (project.id, who),
                ).fetchone()[0]
                if held != role:
                    raise ValidationError(
                        [
                            Problem(
                                "principal",
                                (
                                    f"{who!r} is {held} in {project.name!r}; a {role} key"
                                    " needs a principal whose role is that (leave the"
                                    " principal out for a key of its own)"
                                ),
                            )
                        ]
                    )
                conn.execute(
                    f"INSERT INTO api_keys (project_id, {_COLUMNS.replace('created_at, ', '')},"
                    " key_hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        project.id,
                        key_id,
                        prefix,
                        who,
                        role,
                        name,
                        rate_per_second,
                        lake.principal,
                        None,
                        hash_key(secret),
                    ),
                )
                # the audit's actions are fixed (migration 0002): a key is a grant
                write_audit(conn, project, "grant", who, {"role": role, "api_key": prefix})
        except PermissionDeniedError:
            raise PermissionDeniedError(
                f"{lake.principal!r} may not make API keys in {project.name!r}: only its admins can"
            ) from None
        return NewKey(secret, self.get(prefix))

    def list(self, *, include_revoked: bool = True) -> list[ApiKey]:
        """The project's keys, newest first."""
        where = "" if include_revoked else " AND revoked_at IS NULL"
        with self.project.lake._transaction(self.project) as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE project_id = %s{where}"
                " ORDER BY created_at DESC, id DESC",
                (self.project.id,),
            ).fetchall()
        return [ApiKey(*row) for row in rows]

    def get(self, key: str) -> ApiKey:
        """A key by its prefix (or the whole key, or its id)."""
        for stored in self.list():
            if key in (stored.prefix, str(stored.id)) or key[:SHOWN] == stored.prefix:
                return stored
        raise NotFoundError(f"no API key {key[:SHOWN]!r} in project {self.project.name!r}")

    def revoke(self, key: str) -> ApiKey:
        """Revoke a key (by prefix, whole key or id); requests with it get 401 from now on,
        and a principal of the key's own (``key:<prefix>``) stops being a member."""
        found = self.get(key)
        from ..access import write_audit

        with self.project.lake._transaction(self.project) as conn:
            conn.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())"
                " WHERE project_id = %s AND id = %s",
                (self.project.id, found.id),
            )
            # a principal of the key's own goes with it (a named principal stays a member)
            conn.execute(
                "DELETE FROM project_members WHERE project_id = %s AND principal = %s",
                (self.project.id, f"key:{found.prefix}"),
            )
            write_audit(
                conn,
                self.project,
                "revoke",
                found.principal,
                {"role": found.role, "api_key": found.prefix},
            )
        return self.get(found.prefix)


def bearer_key(header: str | None) -> str:
    """The key of an ``Authorization: Bearer <key>`` header, or :class:`AuthError`."""
    if not header:
        raise AuthError("missing API key: send Authorization: Bearer <key>")
    scheme, _, key = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise AuthError("the Authorization header must be 'Bearer <key>'")
    return key.strip()


def authenticate(lake: Lake, key: str) -> Authenticated:
    """Who ``key`` acts as, or :class:`AuthError` saying why it does not."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        raise AuthError("unknown API key")
    with lake.engine.connect() as conn:
        row: Any = conn.exec_driver_sql(
            "SELECT key_id, project_id, project_name, principal, role, member_role, revoked,"
            " rate_per_second FROM promptlake_api_key(%(hash)s)",
            {"hash": hash_key(key)},
        ).fetchone()
        conn.rollback()
    if row is None:
        raise AuthError("unknown API key")
    key_id, project_id, project_name, principal, role, member_role, revoked, rate = row
    if revoked:
        raise AuthError(f"API key {key[:SHOWN]} was revoked")
    if member_role != role:
        raise AuthError(
            f"API key {key[:SHOWN]} acts as {principal!r}, who is no longer {role} in"
            f" {project_name!r}"
        )
    return Authenticated(key_id, project_id, project_name, principal, role, rate)
