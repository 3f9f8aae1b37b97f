"""Scores and feedback: one value per (generation, name) event, typed by its Python value.

A float or int is a numeric score, a bool a boolean one, a str a categorical label. The
source says who judged (a human, a model acting as judge, a heuristic, or the end user).
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from .db.models import SCORE_SOURCES
from .errors import ValidationError
from .ids import uuid7
from .ingest.records import _Collector


@dataclass(frozen=True)
class Score:
    """A stored score."""

    id: uuid.UUID
    project_id: uuid.UUID
    generation_id: uuid.UUID
    name: str
    value: float | bool | str
    data_type: str
    source: str
    author: str | None
    comment: str | None
    created_at: dt.datetime


def prepare_score(
    generation: Any,
    name: str,
    value: float | bool | str,
    *,
    source: str,
    author: str | None,
    comment: str | None,
    metadata: Mapping[str, Any] | None,
    id: uuid.UUID | None,
    max_bytes: int,
) -> dict[str, Any]:
    """Validate a score into the column values of ``scores``; raise ValidationError."""
    c = _Collector(max_bytes)
    gid = c.uuid("generation", generation)
    if generation is None:
        c.add("generation", "is required")
    values: dict[str, Any] = {
        "id": c.uuid("id", id) or uuid7(),
        "generation_id": gid,
        "name": c.name("name", name),
        "source": c.choice("source", source, SCORE_SOURCES),
        "author": c.text("author", author),
        "comment": c.text("comment", comment),
        "metadata": c.json_value("metadata", metadata),
        "value_numeric": None,
        "value_text": None,
        "value_bool": None,
        "created_at": dt.datetime.now(dt.UTC),
    }
    if isinstance(value, bool):
        values["data_type"], values["value_bool"] = "boolean", value
    elif isinstance(value, int | float):
        try:
            number = float(value)  # value_numeric is double precision
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            shown = value if isinstance(value, float) else "an integer beyond a float's range"
            c.add("value", f"must be a finite number, got {shown}")
        values["data_type"], values["value_numeric"] = "numeric", number
    elif isinstance(value, str):
        values["data_type"], values["value_text"] = "categorical", c.name("value", value)
    else:
        c.add("value", f"must be a number, a bool or a category label, not {type(value).__name__}")
    if c.problems:
        raise ValidationError(c.problems)
    return values


def insert_scores(conn: psycopg.Connection, project_id: uuid.UUID, scores: list[dict]) -> int:
    """Insert validated scores, skipping ids already stored; return how many were new."""
    if not scores:
        return 0
    from psycopg.types.json import Jsonb

    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO scores (project_id, id, generation_id, name, data_type, value_numeric,"
            " value_text, value_bool, source, author, comment, metadata, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            [
                (
                    project_id,
                    s["id"],
                    s["generation_id"],
                    s["name"],
                    s["data_type"],
                    s["value_numeric"],
                    s["value_text"],
                    s["value_bool"],
                    s["source"],
                    s["author"],
                    s["comment"],
                    Jsonb(s["metadata"]),
                    s["created_at"],
                )
                for s in scores
            ],
        )
        stored = cur.rowcount
        findings = [f for s in scores for f in s.get("pii_findings") or ()]
        if findings:  # of the comment and metadata (privacy/anonymize.py: Anonymizer.score)
            from .privacy.anonymize import INSERT_FINDINGS

            cur.executemany(INSERT_FINDINGS, findings)
        return stored


def score_from_values(project_id: uuid.UUID, values: Mapping[str, Any]) -> Score:
    value = {
        "numeric": values["value_numeric"],
        "categorical": values["value_text"],
        "boolean": values["value_bool"],
    }[values["data_type"]]
    return Score(
        id=values["id"],
        project_id=project_id,
        generation_id=values["generation_id"],
        name=values["name"],
        value=value,
        data_type=values["data_type"],
        source=values["source"],
        author=values["author"],
        comment=values["comment"],
        created_at=values["created_at"],
    )
