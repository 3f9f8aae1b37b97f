"""``Item``: one dataset item as a task and its scorers see it, and reading them.

A dataset version lists generations (``dataset_items``); each is an example whose input
(the prompt text, or the chat messages) goes to the task and whose stored output is the
reference answer scorers compare against. The item's id is the generation's, so it is
stable across experiments on the same version: that is what pairs items in comparisons.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..client import Project


@dataclass(frozen=True)
class Item:
    """One example: ``input`` is the prompt text (for chats, the last user message),
    ``messages`` the chat (None for plain prompts), ``expected`` the reference output."""

    id: uuid.UUID
    input: str | None
    messages: list[dict[str, Any]] | None = None
    expected: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    split: str | None = None
    model: str | None = None


def _last_user_text(messages: Sequence[dict[str, Any]] | None) -> str | None:
    for message in reversed(messages or []):
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            return message["content"]
    return None


def item_from_row(row: Sequence[Any]) -> Item:
    """From (id, input_text, input_messages, output, metadata, split, model)."""
    gid, text, messages, output, metadata, split, model = row
    return Item(
        id=gid,
        input=text if text is not None else _last_user_text(messages),
        messages=messages,
        expected=output,
        metadata=dict(metadata or {}),
        split=split,
        model=model,
    )


def generations_by_id(
    conn: Any, project: Project, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple]:
    """(id, input_text, input_messages, output, metadata, model) of generations, by id.

    Experiments read rows they (or the pipeline) just wrote, before autovacuum has
    analyzed them; joins between such tables got nested loops that scanned every row per
    row (seconds at 2,000 items). Lookups by a list of ids (``= ANY``) stay on the primary
    key whatever the statistics say, so the readers here fetch keys first, then rows."""
    rows = conn.execute(
        "SELECT g.id, g.input_text, g.input_messages, g.output, g.metadata, m.name"
        " FROM generations g LEFT JOIN models m"
        " ON m.project_id = g.project_id AND m.id = g.model_id"
        " WHERE g.project_id = %s AND g.id = ANY(%s)",
        (project.id, list(ids)),
    ).fetchall()
    return {r[0]: r for r in rows}


def dataset_items(project: Project, dataset_version_id: uuid.UUID, split: str | None) -> list[Item]:
    """The items of a version (of one split), in generation id order."""
    query = (
        "SELECT generation_id, split FROM dataset_items"
        " WHERE project_id = %s AND dataset_version_id = %s"
        + (" AND split = %s" if split else "")
        + " ORDER BY generation_id"
    )
    params: tuple[Any, ...] = (project.id, dataset_version_id) + ((split,) if split else ())
    with project.lake._transaction(project) as conn:
        splits = conn.execute(query, params).fetchall()
        rows = generations_by_id(conn, project, [gid for gid, _ in splits])
    out = []
    for gid, item_split in splits:
        if gid in rows:
            _, text, messages, output, metadata, model = rows[gid]
            out.append(item_from_row((gid, text, messages, output, metadata, item_split, model)))
    return out
