"""How a session reads as a chat thread: messages of each turn, and the chain drawn.

A turn's ``input_messages`` usually repeat the conversation so far; the thread shows only
what is new in each turn (the messages after the last assistant message) and folds the
rest away. The chain is the ``parent_id`` graph: each turn sits on a lane, a first child
stays on its parent's lane and any further child (a branch: a retry, an edit, a fork)
opens a new lane; the SVG links every node to its turn's anchor.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape


def message_text(content: Any) -> str:
    """Text of a message's content: a string, OpenAI parts, OpenTelemetry parts, or JSON."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict):
                text = part.get("text", part.get("content"))
                if isinstance(text, str):
                    texts.append(text)
                else:
                    texts.append(json.dumps(part, ensure_ascii=False, default=str))
        return "\n".join(texts)
    return json.dumps(content, ensure_ascii=False, default=str, indent=1)


@dataclass(frozen=True)
class Message:
    role: str
    text: str


def messages(items: Iterable[dict[str, Any]] | None) -> list[Message]:
    out = []
    for m in items or ():
        if not isinstance(m, dict):
            out.append(Message("?", message_text(m)))
            continue
        content = m.get("content", m.get("parts"))
        if content is None and m.get("tool_calls"):
            content = m["tool_calls"]
        out.append(Message(str(m.get("role", "?")), message_text(content)))
    return out


def split_turn(items: Iterable[dict[str, Any]] | None) -> tuple[list[Message], list[Message]]:
    """(context already seen in earlier turns, what is new in this turn)."""
    found = messages(items)
    last = max((i for i, m in enumerate(found) if m.role == "assistant"), default=-1)
    return found[: last + 1], found[last + 1 :]


def mark_pii(text: str, entity_types: Iterable[str]) -> Markup:
    """``text`` escaped, with the placeholders that replaced PII values (``<EMAIL>``,
    ``<EMAIL_1a2b3c>``) wrapped in ``<mark class="pii">``."""
    types = sorted({t for t in entity_types if t}, key=len, reverse=True)
    escaped = str(escape(text))
    if not types:
        return Markup(escaped)
    pattern = re.compile(
        "&lt;(" + "|".join(re.escape(t) for t in types) + r")(_[0-9a-f]{4,64})?&gt;"
    )
    return Markup(
        pattern.sub(
            lambda m: f'<mark class="pii" title="{m.group(1)} replaced">{m[0]}</mark>', escaped
        )
    )


def highlight(snippet: str) -> Markup:
    """A ``ts_headline`` snippet (matches in ``<b>``) as safe HTML with ``<mark>``."""
    escaped = str(escape(snippet))
    return Markup(escaped.replace("&lt;b&gt;", "<mark>").replace("&lt;/b&gt;", "</mark>"))


@dataclass(frozen=True)
class ChainNode:
    gid: uuid.UUID
    index: int
    lane: int
    parent_index: int | None
    branch: bool  # a sibling came first: this turn starts a branch


def chain(gens: Sequence[Any]) -> list[ChainNode]:
    index = {g.id: i for i, g in enumerate(gens)}
    lanes: dict[uuid.UUID, int] = {}
    children: dict[uuid.UUID, int] = {}
    next_lane = 1
    out = []
    for i, g in enumerate(gens):
        parent = g.parent_id if g.parent_id in index else None
        branch = False
        if parent is None:
            lane = 0 if i == 0 or not lanes else lanes[gens[i - 1].id]
        else:
            seen = children.get(parent, 0)
            children[parent] = seen + 1
            if seen == 0:
                lane = lanes[parent]
            else:
                lane, next_lane, branch = next_lane, next_lane + 1, True
        lanes[g.id] = lane
        out.append(ChainNode(g.id, i, lane, index.get(parent) if parent else None, branch))
    return out


def chain_svg(nodes: Sequence[ChainNode], labels: Sequence[str]) -> Markup:
    """The chain as a vertical graph, a node per turn linking to ``#turn-<id>``."""
    if not nodes:
        return Markup("")
    row, col = 26, 22
    width = 30 + col * (max(n.lane for n in nodes) + 1) + 260
    height = 16 + row * len(nodes)
    parts = [
        f'<svg class="chain" viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
        ' role="img" aria-label="the chain of generations"><title>Chain</title>'
    ]

    def xy(n: ChainNode) -> tuple[float, float]:
        return 14 + n.lane * col, 14 + n.index * row

    for n in nodes:
        if n.parent_index is not None:
            (x1, y1), (x2, y2) = xy(nodes[n.parent_index]), xy(n)
            parts.append(
                f'<path class="edge" d="M{x1},{y1} C{x1},{y2 - row / 2} {x2},{y1 + row / 2}'
                f' {x2},{y2}"/>'
            )
        elif n.index:
            (x1, y1), (x2, y2) = xy(nodes[n.index - 1]), xy(n)
            parts.append(f'<path class="edge faint" d="M{x1},{y1} L{x2},{y2}"/>')
    text_x = 30 + col * (max(n.lane for n in nodes) + 1)
    for n, label in zip(nodes, labels, strict=True):
        x, y = xy(n)
        cls = "node branch" if n.branch else "node"
        parts.append(
            f'<a href="#turn-{n.gid}"><circle class="{cls}" cx="{x}" cy="{y}" r="6"/>'
            f'<text x="{text_x}" y="{y + 4}" class="axis">{escape(label)}</text></a>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
