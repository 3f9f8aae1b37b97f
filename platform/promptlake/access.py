"""Project membership and the audit log: the data row-level security decides by.

The rules themselves live in the database (migration 0002): four group roles with table
privileges, and per-table policies that admit a row when its project is the transaction's
project (``promptlake.project_id``) and the principal (``promptlake.principal`` for the
application, the login itself for anyone else) holds a fitting role in that project:

========  ===========================================================================
admin     everything in the project, including the vault, grants and erasure
writer    ingest only: insert generations, sessions, scores; cannot read them back
analyst   read generations, scores, sessions and findings; no vault, no writes
viewer    aggregates only (the ``project_usage`` view); no rows
========  ===========================================================================

This module only reads and writes membership rows and audit entries; whether the
principal may do so is, again, decided by the policies.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.types.json import Jsonb

from .db.models import MEMBER_ROLES
from .errors import NotFoundError, PermissionDeniedError, ValidationError
from .ids import uuid7
from .ingest.records import _Collector

if TYPE_CHECKING:
    from .client import Project


@dataclass(frozen=True)
class Member:
    principal: str
    role: str
    granted_by: str | None
    granted_at: dt.datetime


@dataclass(frozen=True)
class AuditEntry:
    at: dt.datetime
    principal: str
    action: str
    target: str | None
    details: dict[str, Any]


def grant(project: Project, principal: str, role: str) -> Member:
    """Give ``principal`` ``role`` in ``project`` (replacing any role it had)."""
    c = _Collector(10_000)
    c.name("principal", principal)
    c.choice("role", role, MEMBER_ROLES)
    if c.problems:
        raise ValidationError(c.problems)
    lake = project.lake
    try:
        with lake._transaction(project) as conn:
            conn.execute(
                "INSERT INTO project_members (project_id, principal, role, granted_by)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (project_id, principal) DO UPDATE"
                " SET role = excluded.role, granted_by = excluded.granted_by, granted_at = now()",
                (project.id, principal, role, lake.principal),
            )
            write_audit(conn, project, "grant", principal, {"role": role})
    except PermissionDeniedError as exc:
        raise PermissionDeniedError(
            f"{lake.principal!r} may not grant roles in {project.name!r}: only its admins can"
        ) from exc
    return next(m for m in members(project) if m.principal == principal)


def revoke(project: Project, principal: str) -> bool:
    """Remove ``principal`` from ``project``; False if it was not a member."""
    lake = project.lake
    with lake._transaction(project) as conn:
        gone = conn.execute(
            "DELETE FROM project_members WHERE project_id = %s AND principal = %s",
            (project.id, principal),
        ).rowcount
        if gone:
            write_audit(conn, project, "revoke", principal, {})
    return bool(gone)


def members(project: Project) -> list[Member]:
    """The members the principal may see: all of them for an admin, else itself."""
    with project.lake._transaction(project) as conn:
        rows = conn.execute(
            "SELECT principal, role, granted_by, granted_at FROM project_members"
            " WHERE project_id = %s ORDER BY principal",
            (project.id,),
        ).fetchall()
    return [Member(*row) for row in rows]


def write_audit(
    conn: psycopg.Connection,
    project: Project,
    action: str,
    target: str | None,
    details: Mapping[str, Any],
) -> None:
    """Append an audit entry in the current transaction (it commits or fails with it)."""
    conn.execute(
        "INSERT INTO audit_log (project_id, id, principal, action, target, details)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (project.id, uuid7(), project.lake.principal, action, target, Jsonb(dict(details))),
    )


def audit_log(project: Project, limit: int = 100) -> list[AuditEntry]:
    """The latest audit entries of ``project`` (admins only)."""
    with project.lake._transaction(project) as conn:
        rows = conn.execute(
            "SELECT at, principal, action, target, details FROM audit_log"
            " WHERE project_id = %s ORDER BY at DESC, id DESC LIMIT %s",
            (project.id, limit),
        ).fetchall()
    return [AuditEntry(*row) for row in rows]


def require_member(project: Project, roles: tuple[str, ...]) -> str:
    """The principal's role in ``project``, or a clear error if it is not one of ``roles``."""
    with project.lake._transaction(project) as conn:
        row = conn.execute("SELECT promptlake_role()").fetchone()
    role = row[0] if row else None
    if role is None:
        raise NotFoundError(f"{project.lake.principal!r} is not a member of {project.name!r}")
    if role not in roles:
        raise PermissionDeniedError(
            f"{project.lake.principal!r} is {role} in {project.name!r}; this needs "
            + " or ".join(roles)
        )
    return role


def as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(getattr(value, "id", value)))
