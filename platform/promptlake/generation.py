"""``Generation``: the plain, typed value that logging returns and reads give back."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from dataclasses import dataclass, field
from typing import Any

from .ingest.records import GenerationRow


@dataclass(frozen=True)
class Generation:
    """One stored model call. Fields mirror the ``generations`` table, with the model by
    name and the content hash in hex."""

    id: uuid.UUID
    project_id: uuid.UUID
    session_id: uuid.UUID | None
    parent_id: uuid.UUID | None
    seq: int | None
    model: str | None
    input_text: str | None
    input_messages: list[dict[str, Any]] | None
    output: str | None
    params: dict[str, Any]
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: decimal.Decimal | None
    latency_ms: float | None
    status: str
    error: str | None
    origin: str
    generator: str | None
    lineage: dict[str, Any]
    prompt_version_id: uuid.UUID | None
    run_id: uuid.UUID | None
    name: str | None
    content_hash: str
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: dt.datetime | None = None

    @property
    def total_tokens(self) -> int | None:
        if self.prompt_tokens is None or self.completion_tokens is None:
            return None
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_prepared(cls, project_id: uuid.UUID, row: GenerationRow) -> Generation:
        return cls(
            id=row.id,
            project_id=project_id,
            session_id=row.session_id,
            parent_id=row.parent_id,
            seq=row.seq,
            model=row.model,
            input_text=row.input_text,
            input_messages=row.input_messages,
            output=row.output,
            params=row.params,
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            cost_usd=row.cost_usd,
            latency_ms=row.latency_ms,
            status=row.status,
            error=row.error,
            origin=row.origin,
            generator=row.generator,
            lineage=row.lineage,
            prompt_version_id=row.prompt_version_id,
            run_id=row.run_id,
            name=row.name,
            content_hash=row.content_hash.hex(),
            tags=list(row.tags),
            metadata=row.metadata,
            created_at=row.created_at,
        )


_SELECT_COLUMNS = (
    "g.id, g.project_id, g.session_id, g.parent_id, g.seq, m.name AS model, g.input_text,"
    " g.input_messages, g.output, g.params, g.prompt_tokens, g.completion_tokens, g.cost_usd,"
    " g.latency_ms, g.status, g.error, g.origin, g.generator, g.lineage, g.prompt_version_id,"
    " g.run_id, g.name, encode(g.content_hash, 'hex') AS content_hash, g.tags, g.metadata,"
    " g.created_at"
)


def select_generations_sql(where: str, order: str = "g.created_at") -> str:
    """SELECT of generations of one project (first parameter) filtered by ``where``."""
    return (
        f"SELECT {_SELECT_COLUMNS} FROM generations g"
        " LEFT JOIN models m ON m.project_id = g.project_id AND m.id = g.model_id"
        f" WHERE g.project_id = %s AND {where} ORDER BY {order}"
    )


def generation_from_row(cursor: Any, row: tuple) -> Generation:
    names = [d.name for d in cursor.description]
    return Generation(**dict(zip(names, row, strict=True)))
