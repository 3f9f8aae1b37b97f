"""Anonymization policies: stored per project, versioned, applied at ingest or at export.

A policy names an operator for each entity type (``redact``, ``mask``, ``pseudonymize``,
``drop``, ``keep``), when it applies (``ingest``: before anything is stored; ``export``: stored
text is kept and exports anonymize it), whether originals go to the vault, and which
detectors run. Setting a policy adds a version; the highest version is the live one.
A project with no stored policy uses the default (version 0): pseudonymize every
pattern type at ingest, no vault.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb

from ..errors import Problem, ValidationError

if TYPE_CHECKING:
    from ..client import Project

from .detect import ENTITY_TYPES
from .operators import OPERATORS

DETECTORS = ("pattern", "presidio", "ner")
"""``ner``: person names and locations, Presidio with spaCy (the ``ner`` extra)."""
PATTERN_TYPES = tuple(sorted(ENTITY_TYPES))


@dataclass(frozen=True)
class Policy:
    version: int
    operators: dict[str, str]
    apply_at: str = "ingest"
    vault: bool = False
    detectors: tuple[str, ...] = ("pattern",)
    created_by: str | None = None
    created_at: dt.datetime | None = field(default=None, compare=False)

    @property
    def at_ingest(self) -> bool:
        return self.apply_at == "ingest" and bool(self.operators)


DEFAULT_POLICY = Policy(version=0, operators={t: "pseudonymize" for t in PATTERN_TYPES})


def validate(
    operators: Mapping[str, str], apply_at: str, detectors: Iterable[str]
) -> list[Problem]:
    problems = []
    for entity, operator in operators.items():
        if entity != "*" and (not isinstance(entity, str) or not entity.isupper()):
            problems.append(Problem("operators", f"{entity!r} is not an entity type (EMAIL, ...)"))
        if operator not in OPERATORS:
            problems.append(
                Problem(f"operators.{entity}", f"must be one of {', '.join(OPERATORS)}")
            )
    if apply_at not in ("ingest", "export"):
        problems.append(Problem("apply_at", "must be ingest or export"))
    for detector in detectors:
        if detector not in DETECTORS:
            problems.append(Problem("detectors", f"{detector!r} is not one of {DETECTORS}"))
    return problems


def current(project: Project) -> Policy:
    """The live policy of ``project`` (the default when none was ever set)."""
    with project.lake._transaction(project) as conn:
        row = conn.execute(
            "SELECT version, operators, apply_at, vault, detectors, created_by, created_at"
            " FROM pii_policies WHERE project_id = %s ORDER BY version DESC LIMIT 1",
            (project.id,),
        ).fetchone()
    if row is None:
        return DEFAULT_POLICY
    version, operators, apply_at, vault, detectors, by, at = row
    return Policy(version, dict(operators), apply_at, vault, tuple(detectors), by, at)


def set_policy(
    project: Project,
    operators: Mapping[str, str] | None = None,
    *,
    apply_at: str = "ingest",
    vault: bool = False,
    detectors: Iterable[str] = ("pattern",),
) -> Policy:
    """Store a new version of the project's policy (admins only) and audit it."""
    from ..access import write_audit

    ops = dict(DEFAULT_POLICY.operators if operators is None else operators)
    detector_list = list(detectors)
    problems = validate(ops, apply_at, detector_list)
    if problems:
        raise ValidationError(problems)
    with project.lake._transaction(project) as conn:
        (version,) = conn.execute(
            "INSERT INTO pii_policies (project_id, version, operators, apply_at, vault,"
            " detectors, created_by) SELECT %s, coalesce(max(version), 0) + 1, %s, %s, %s, %s, %s"
            " FROM pii_policies WHERE project_id = %s RETURNING version",
            (project.id, Jsonb(ops), apply_at, vault, detector_list, project.lake.principal,
             project.id),
        ).fetchone()  # fmt: skip
        details: dict[str, Any] = {"version": version, "operators": ops, "apply_at": apply_at,
                                   "vault": vault, "detectors": detector_list}  # fmt: skip
        write_audit(conn, project, "policy", f"version {version}", details)
    return current(project)
