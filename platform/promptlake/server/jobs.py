"""Request bodies to ingest jobs: the spans of an OTLP export, and the native JSON batches.

Ids are derived from the data, so an exporter that retries (after a timeout, a 503, or a
server killed before it answered) stores nothing twice: a span's generation id is a UUIDv5
of (project, trace id, span id), a conversation's session id one of (project, conversation
id). The chain: a generation's parent is the generation of its nearest ancestor model-call
span, found among the spans of the same export and those the server has seen recently
(:class:`SpanRegistry`); an ancestor not seen yet leaves the parent unset, and its span id
stays in ``metadata.otel.parent_span_id``.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import Problem
from ..ingest.records import GENERATION_FIELDS
from .genai import SpanInfo, generation_fields, span_kind
from .ingest import Item, Job, SessionDecl

NAMESPACE = uuid.UUID("5f0c8f8e-6b1e-4d0a-9a59-0a6c1c5d7e21")
LOG_FIELDS = GENERATION_FIELDS | {"retrieved", "embedding", "embedder"}
SCORE_FIELDS = frozenset(
    {"generation", "name", "value", "source", "author", "comment", "metadata", "id"}
)


def span_generation_id(
    project_id: uuid.UUID, trace_id: str, span_id: str, start_ns: int
) -> uuid.UUID:
    """The generation id of a span: the same for every export of it, and in time order
    like the ids ``log`` makes (UUIDv7's layout, version 8: the span's start in ms, 12 bits
    of the sub-millisecond rest, then a hash of project, trace and span). The bulk writer
    inserts a batch in id order, so a parent (which starts first) is inserted before the
    generations that refer to it."""
    digest = hashlib.sha256(f"{project_id}/span/{trace_id}/{span_id}".encode()).digest()
    ms, rest = divmod(max(0, start_ns), 1_000_000)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x8 << 76 | (rest * 4096 // 1_000_000) << 64
    value |= 0b10 << 62 | int.from_bytes(digest[:8], "big") & ((1 << 62) - 1)
    return uuid.UUID(int=value)


def conversation_session_id(project_id: uuid.UUID, conversation: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{project_id}/session/{conversation}")


class SpanRegistry:
    """Recently seen spans of one project: parent span and, for model calls, the generation
    id; bounded (least recently seen go first). Thread-safe."""

    def __init__(self, size: int = 200_000) -> None:
        self.size = size
        self._spans: OrderedDict[tuple[str, str], tuple[str | None, uuid.UUID | None]] = (
            OrderedDict()
        )
        self._stored: set[uuid.UUID] = set()
        self._lock = threading.Lock()

    def add(self, trace_id: str, span_id: str, parent: str | None, gen: uuid.UUID | None) -> None:
        with self._lock:
            self._spans[(trace_id, span_id)] = (parent, gen)
            self._spans.move_to_end((trace_id, span_id))
            while len(self._spans) > self.size:
                _, (_, old) = self._spans.popitem(last=False)
                self._stored.discard(old)  # type: ignore[arg-type]

    def stored(self, ids: Iterable[uuid.UUID]) -> None:
        with self._lock:
            self._stored.update(ids)

    def model_ancestor(self, trace_id: str, parent: str | None) -> tuple[uuid.UUID | None, bool]:
        """The generation id of the nearest model-call ancestor, and whether it is stored."""
        with self._lock:
            for _ in range(256):
                if parent is None:
                    return None, False
                entry = self._spans.get((trace_id, parent))
                if entry is None:
                    return None, False
                parent, gen = entry
                if gen is not None:
                    return gen, gen in self._stored
        return None, False


def trace_job(
    spans: list[SpanInfo], project_id: uuid.UUID, registry: SpanRegistry
) -> tuple[Job, list[str]]:
    """The job for an export's spans, and the problems of spans that could not be mapped.

    Only model calls, tool executions and retrievals become generations; other spans
    (agents, HTTP, databases) are remembered for the chain and not stored."""
    problems: list[str] = []
    mapped: list[tuple[SpanInfo, str, uuid.UUID]] = []
    for span in spans:
        kind = span_kind(span)
        gen = (
            span_generation_id(project_id, span.trace_id, span.span_id, span.start_ns)
            if kind
            else None
        )
        registry.add(span.trace_id, span.span_id, span.parent_span_id, gen)
        if kind is not None and gen is not None:
            mapped.append((span, kind, gen))
    in_request = {gen for _, kind, gen in mapped if kind == "model"}
    items: list[Item] = []
    sessions: dict[uuid.UUID, SessionDecl] = {}
    session_ids: dict[Any, uuid.UUID] = {}
    for span, kind, gen in mapped:
        label = f"span {span.span_id} ({span.name[:60]})"
        try:
            fields = generation_fields(span, kind)
        except Exception as exc:  # a shape no mapping foresaw: reject this span, keep others
            problems.append(f"{label}: could not be mapped ({type(exc).__name__}: {exc})")
            continue
        conversation = fields.pop("_conversation")
        end_user = fields.pop("_end_user")
        fields["id"] = gen
        parent, stored = registry.model_ancestor(span.trace_id, span.parent_span_id)
        if parent is not None and (stored or parent in in_request):
            fields["parent"] = parent
        if conversation is not None:
            sid = session_ids.get(conversation) or session_ids.setdefault(
                conversation, conversation_session_id(project_id, str(conversation))
            )
            sessions.setdefault(
                sid,
                SessionDecl(
                    sid,
                    name=str(conversation)[:200],
                    end_user_id=str(end_user) if end_user is not None else None,
                    metadata={"conversation_id": str(conversation)},
                ),
            )
            fields["session"] = sid
        items.append(Item("generation", label, fields))
    return Job(items, list(sessions.values())), problems


def _problem_list(problems: Iterable[Problem]) -> list[dict[str, str]]:
    return [{"field": p.field, "reason": p.reason} for p in problems]


def batch_job(body: Any, kind: str) -> tuple[Job, list[dict[str, Any]], int]:
    """A job from a native JSON batch (``kind`` generation or score): a list of objects,
    or ``{"generations": [...], "sessions": [...]}`` / ``{"scores": [...]}``. Returns the
    job, the items refused before any database work, and how many items there were."""
    key = "generations" if kind == "generation" else "scores"
    sessions: list[SessionDecl] = []
    if isinstance(body, Mapping):
        unknown = set(body) - {key, "sessions"}
        if unknown or key not in body:
            raise ValueError(
                f"the body must be a list of objects or {{{key!r}: [...]}}"
                + (f"; unknown keys {sorted(unknown)}" if unknown else "")
            )
        for i, s in enumerate(body.get("sessions") or []):
            sessions.append(_session(s, i))
        body = body[key]
    if not isinstance(body, list):
        raise ValueError(f"the body must be a list of objects or {{{key!r}: [...]}}")
    allowed = LOG_FIELDS if kind == "generation" else SCORE_FIELDS
    items: list[Item] = []
    refused: list[dict[str, Any]] = []
    for i, entry in enumerate(body):
        label = f"{key}[{i}]"
        if not isinstance(entry, Mapping):
            refused.append(
                {
                    "index": i,
                    "item": label,
                    "errors": [
                        {"field": "", "reason": f"must be an object, got {type(entry).__name__}"}
                    ],
                }
            )
            continue
        unknown = sorted(set(entry) - allowed)
        missing = [f for f in ("generation", "name", "value") if kind == "score" and f not in entry]
        if unknown or missing:
            errors = [{"field": f, "reason": f"is not a field of a {kind}"} for f in unknown]
            errors += [{"field": f, "reason": "is required"} for f in missing]
            refused.append({"index": i, "item": label, "errors": errors})
            continue
        items.append(Item(kind, label, dict(entry)))
    return Job(items, sessions), refused, len(body)


def _session(value: Any, i: int) -> SessionDecl:
    if not isinstance(value, Mapping) or "id" not in value:
        raise ValueError(f"sessions[{i}] must be an object with an id")
    unknown = set(value) - {"id", "name", "end_user_id", "metadata"}
    if unknown:
        raise ValueError(f"sessions[{i}]: unknown keys {sorted(unknown)}")
    try:
        sid = uuid.UUID(str(value["id"]))
    except ValueError:
        raise ValueError(f"sessions[{i}].id must be a UUID, got {value['id']!r:.60}") from None
    return SessionDecl(
        sid,
        name=value.get("name"),
        end_user_id=value.get("end_user_id"),
        metadata=value.get("metadata"),
    )


def problems_json(rejected: list[tuple[str, list[Problem]]]) -> list[dict[str, Any]]:
    return [{"item": label, "errors": _problem_list(problems)} for label, problems in rejected]
