"""The prompt registry: named templates, immutable numbered versions, movable labels.

``register`` is idempotent on text: registering the same text again returns the existing
version, so application start-up code can call it unconditionally. Labels such as
``production`` point at one version and move with ``set_label``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import string
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb

from .errors import NotFoundError, Problem, ValidationError
from .ids import uuid7
from .ingest.records import _Collector

if TYPE_CHECKING:
    from .client import Project


@dataclass(frozen=True)
class PromptVersion:
    """One version of a prompt template."""

    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    version: int
    template: str
    variables: tuple[str, ...]
    labels: tuple[str, ...]
    created_at: dt.datetime

    def render(self, **values: Any) -> str:
        """Fill the ``{placeholders}``; every variable must be given, and no others."""
        missing = [v for v in self.variables if v not in values]
        extra = sorted(set(values) - set(self.variables))
        problems = [Problem(v, "has no value (the template needs it)") for v in missing]
        problems += [Problem(v, "is not a variable of this template") for v in extra]
        if problems:
            raise ValidationError(problems)
        return self.template.format(**values)


def template_variables(template: str) -> tuple[str, ...]:
    """Placeholder names in order of first use; ``{{`` and ``}}`` are literal braces."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValidationError([Problem("template", f"is not a valid template: {exc}")]) from None
    for _, field_name, _, _ in parsed:
        if field_name is None:
            continue
        base = field_name.split(".")[0].split("[")[0]
        if not base.isidentifier():
            raise ValidationError(
                [Problem("template", f"placeholder {{{field_name}}} must be a name")]
            )
        if base not in names:
            names.append(base)
    return tuple(names)


_SELECT = (
    "SELECT v.id, v.project_id, t.name, v.version, v.template, v.variables,"
    " coalesce(array(SELECT l.label FROM prompt_labels l WHERE l.project_id = v.project_id"
    " AND l.version_id = v.id ORDER BY l.label), '{}'), v.created_at"
    " FROM prompt_versions v JOIN prompt_templates t"
    " ON t.project_id = v.project_id AND t.id = v.template_id"
    " WHERE v.project_id = %s AND t.name = %s"
)


def _version(row: tuple) -> PromptVersion:
    return PromptVersion(
        row[0], row[1], row[2], row[3], row[4], tuple(row[5]), tuple(row[6]), row[7]
    )


class PromptRegistry:
    """``project.prompts``: register, fetch and label prompt versions."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def register(
        self,
        name: str,
        template: str,
        *,
        labels: Iterable[str] = (),
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> PromptVersion:
        """Store ``template`` as the next version of ``name``, unless that text is already a
        version (then that version is returned). ``labels`` are moved onto it."""
        c = _Collector(self.project.lake.settings.max_text_bytes)
        c.name("name", name)
        c.name("template", template)
        label_list = c.tags("labels", list(labels))
        meta = c.json_value("metadata", metadata)
        if c.problems:
            raise ValidationError(c.problems)
        variables = template_variables(template)
        text_hash = hashlib.sha256(template.encode()).digest()
        pid = self.project.id
        with self.project.lake._transaction(self.project) as conn:
            conn.execute(
                "INSERT INTO prompt_templates (project_id, id, name, description)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (project_id, name) DO NOTHING",
                (pid, uuid7(), name, description),
            )
            (template_id,) = conn.execute(
                "SELECT id FROM prompt_templates WHERE project_id = %s AND name = %s FOR UPDATE",
                (pid, name),
            ).fetchone()
            existing = conn.execute(
                "SELECT id FROM prompt_versions WHERE project_id = %s AND template_id = %s"
                " AND text_hash = %s",
                (pid, template_id, text_hash),
            ).fetchone()
            if existing:
                version_id = existing[0]
            else:
                version_id = uuid7()
                conn.execute(
                    "INSERT INTO prompt_versions (project_id, id, template_id, version, template,"
                    " variables, text_hash, metadata) SELECT %s, %s, %s,"
                    " coalesce(max(version), 0) + 1, %s, %s, %s, %s FROM prompt_versions"
                    " WHERE project_id = %s AND template_id = %s",
                    (
                        pid,
                        version_id,
                        template_id,
                        template,
                        list(variables),
                        text_hash,
                        Jsonb(meta),
                        pid,
                        template_id,
                    ),
                )
            for label in label_list:
                _set_label(conn, pid, template_id, label, version_id)
        return self.get(name, version_id=version_id)

    def get(
        self,
        name: str,
        *,
        label: str | None = None,
        version: int | None = None,
        version_id: uuid.UUID | None = None,
    ) -> PromptVersion:
        """A version by ``label``, by number, or (by default) the latest one."""
        query, params = _SELECT, [self.project.id, name]
        if label is not None:
            query += (
                " AND v.id = (SELECT version_id FROM prompt_labels l WHERE"
                " l.project_id = v.project_id AND l.template_id = t.id AND l.label = %s)"
            )
            params.append(label)
        elif version is not None:
            query += " AND v.version = %s"
            params.append(version)
        elif version_id is not None:
            query += " AND v.id = %s"
            params.append(version_id)
        query += " ORDER BY v.version DESC LIMIT 1"
        with self.project.lake._transaction(self.project) as conn:
            row = conn.execute(query, params).fetchone()
        if row is None:
            what = (
                f"label {label!r}" if label else f"version {version}" if version else "any version"
            )
            raise NotFoundError(f"prompt {name!r} has no {what} in project {self.project.name!r}")
        return _version(row)

    def versions(self, name: str) -> list[PromptVersion]:
        with self.project.lake._transaction(self.project) as conn:
            rows = conn.execute(_SELECT + " ORDER BY v.version", (self.project.id, name)).fetchall()
        return [_version(r) for r in rows]

    def names(self) -> list[str]:
        with self.project.lake._transaction(self.project) as conn:
            rows = conn.execute(
                "SELECT name FROM prompt_templates WHERE project_id = %s ORDER BY name",
                (self.project.id,),
            ).fetchall()
        return [r[0] for r in rows]

    def set_label(self, name: str, label: str, version: int) -> PromptVersion:
        """Point ``label`` at version number ``version`` of ``name``."""
        target = self.get(name, version=version)
        with self.project.lake._transaction(self.project) as conn:
            (template_id,) = conn.execute(
                "SELECT template_id FROM prompt_versions WHERE project_id = %s AND id = %s",
                (self.project.id, target.id),
            ).fetchone()
            _set_label(conn, self.project.id, template_id, label, target.id)
        return self.get(name, version_id=target.id)


def _set_label(conn, project_id, template_id, label, version_id) -> None:
    conn.execute(
        "INSERT INTO prompt_labels (project_id, template_id, label, version_id)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (project_id, template_id, label)"
        " DO UPDATE SET version_id = excluded.version_id, updated_at = now()",
        (project_id, template_id, label, version_id),
    )
