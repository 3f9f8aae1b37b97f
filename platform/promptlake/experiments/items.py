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


_ITEM_COLUMNS = (
    "g.id, g.input_text, g.input_messages, g.output, g.metadata, {split}, m.name"
    " FROM generations g LEFT JOIN models m ON m.project_id = g.project_id AND m.id = g.model_id"
)


def dataset_items(project: Project, dataset_version_id: uuid.UUID, split: str | None) -> list[Item]:
    """The items of a version (of one split), in generation id order."""
    query = (
        "SELECT " + _ITEM_COLUMNS.format(split="d.split") + " JOIN dataset_items d"
        " ON d.project_id = g.project_id AND d.generation_id = g.id"
        " WHERE g.project_id = %s AND d.dataset_version_id = %s"
        + (" AND d.split = %s" if split else "")
        + " ORDER BY g.id"
    )
    params: tuple[Any, ...] = (project.id, dataset_version_id) + ((split,) if split else ())
    with project.lake._transaction(project) as conn:
        return [item_from_row(r) for r in conn.execute(query, params)]
