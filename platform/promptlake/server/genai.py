"""From one OpenTelemetry span to the fields of a generation (``Project.log``'s keywords).

The ecosystem's instrumentations describe a model call in three dialects, all read here:

* OpenTelemetry's GenAI conventions: ``gen_ai.operation.name`` (chat, text_completion,
  generate_content), ``gen_ai.request.*`` parameters, ``gen_ai.usage.*`` tokens,
  ``gen_ai.response.*``, messages as JSON in ``gen_ai.input.messages`` /
  ``gen_ai.output.messages`` / ``gen_ai.system_instructions``, or as span events
  (``gen_ai.user.message``, ``gen_ai.choice``, ...; older instrumentations);
* older emitters (OpenLLMetry and others): ``gen_ai.system`` instead of
  ``gen_ai.provider.name``, flattened ``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*``;
* OpenInference (Phoenix): ``openinference.span.kind = LLM``, ``llm.model_name``,
  ``llm.input_messages.N.message.*``, ``llm.token_count.*``, ``llm.invocation_parameters``.

What a mapping reads is consumed; every other attribute and event of the span is kept in the
generation's ``metadata`` (``attributes``, ``events``), with the span's identity under
``metadata.otel``, so nothing the emitter sent is dropped. Tool executions
(``execute_tool``, OpenInference TOOL) and retrievals (RETRIEVER) are kept as generations of
their own kind (``metadata.otel.kind``), chained to the model call they belong to.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

try:  # a faster parser for the message JSON, where installed (the server extra has it)
    from orjson import loads as _loads
except ImportError:  # pragma: no cover
    _loads = json.loads

MODEL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "completion"})
TOOL_OPERATIONS = frozenset({"execute_tool"})
RETRIEVAL_OPERATIONS = frozenset({"retrieval", "retrieve"})

# parameters: gen_ai.request.<name> -> params[<name>] (model is not a parameter)
_REQUEST_PREFIX = "gen_ai.request."
_TOKENS = {
    "prompt_tokens": (
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.prompt_tokens",
        "llm.token_count.prompt",
    ),
    "completion_tokens": (
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.completion_tokens",
        "llm.token_count.completion",
    ),
}
_USAGE = {
    "total_tokens": (
        "gen_ai.usage.total_tokens",
        "llm.usage.total_tokens",
        "llm.token_count.total",
    ),
    "cached_input_tokens": (
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "gen_ai.usage.cached_input_tokens",
        "gen_ai.usage.cache_read_tokens",
        "llm.token_count.prompt_details.cache_read",
    ),
    "cache_creation_input_tokens": (
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.cache_creation_input_tokens",
        "gen_ai.usage.cache_write_tokens",
        "llm.token_count.prompt_details.cache_write",
    ),
    "reasoning_tokens": (
        "gen_ai.usage.reasoning_tokens",
        "gen_ai.usage.reasoning.output_tokens",
        "gen_ai.usage.output_tokens_details.reasoning_tokens",
        "llm.token_count.completion_details.reasoning",
    ),
}
_COUNT_ALIASES = {
    key: (name, rank)
    for table in (_TOKENS, _USAGE)
    for name, keys in table.items()
    for rank, key in enumerate(keys)
}
_OLD_KEYS = (
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.usage.",
    "gen_ai.prompt.",
    "gen_ai.completion.",
)
_MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
_FLAT = re.compile(r"^(gen_ai\.prompt|gen_ai\.completion)\.(\d+)\.(.+)$")
_OPENINFERENCE = re.compile(r"^llm\.(input_messages|output_messages)\.(\d+)\.message\.(.+)$")
_OI_TOOL_CALL = re.compile(r"^tool_calls\.(\d+)\.tool_call\.(.+)$")
_OI_CONTENT = re.compile(r"^contents\.(\d+)\.message_content\.(.+)$")
_FLAT_TOOL_CALL = re.compile(r"^tool_calls\.(\d+)\.(.+)$")


@dataclass
class SpanInfo:
    """What the mapping needs of one span, already decoded from OTLP."""

    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str | None
    name: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    status_code: int = 0  # 0 unset, 1 ok, 2 error
    status_message: str = ""
    resource: dict[str, Any] = field(default_factory=dict)
    scope: dict[str, Any] = field(default_factory=dict)


def span_kind(span: SpanInfo) -> str | None:
    """``model``, ``tool``, ``retrieval`` or None (a span that is no generation)."""
    a = span.attributes
    op = a.get("gen_ai.operation.name")
    oi = str(a.get("openinference.span.kind") or "").upper()
    if op in MODEL_OPERATIONS or oi == "LLM":
        return "model"
    if op in TOOL_OPERATIONS or oi == "TOOL":
        return "tool"
    if op in RETRIEVAL_OPERATIONS or oi == "RETRIEVER":
        return "retrieval"
    # older emitters: gen_ai.system and a model or usage, no operation name
    if op is None and not oi and "gen_ai.system" in a and any(k.startswith(_OLD_KEYS) for k in a):
        return "model"
    return None


class _Attrs:
    """The span's attributes, with every key a mapping reads marked as consumed."""

    def __init__(self, attributes: Mapping[str, Any]) -> None:
        self.values = dict(attributes)
        self.used: set[str] = set()

    def get(self, *keys: str) -> Any:
        for key in keys:
            if key in self.values:
                self.used.add(key)
                value = self.values[key]
                if value is not None and value != "":
                    return value
        return None

    def number(self, *keys: str) -> int | None:
        value = self.get(*keys)
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        return None

    def rest(self) -> dict[str, Any]:
        return {k: v for k, v in self.values.items() if k not in self.used}


def _json(value: Any) -> Any:
    """A JSON attribute (sent as a string by most emitters, as a structure by some)."""
    if isinstance(value, str):
        try:
            return _loads(value)
        except ValueError:  # orjson's JSONDecodeError is one too
            return value
    return value


def _parts_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """A GenAI-conventions message (``role`` and ``parts``) as a chat message."""
    out: dict[str, Any] = {"role": str(message.get("role") or "user")}
    parts = message.get("parts")
    if not isinstance(parts, list):
        out["content"] = message.get("content")
        for key in ("tool_calls", "tool_call_id", "name"):
            if key in message:
                out[key] = message[key]
        return out
    texts: list[str] = []
    other: list[Any] = []
    for part in parts:
        if not isinstance(part, dict):
            other.append(part)
            continue
        kind = part.get("type")
        if kind in ("text", "reasoning") and isinstance(part.get("content"), str):
            if kind == "text":
                texts.append(part["content"])
            else:
                out.setdefault("reasoning", []).append(part["content"])
        elif kind == "tool_call":
            call = {
                "id": part.get("id"),
                "name": part.get("name"),
                "arguments": part.get("arguments"),
            }
            out.setdefault("tool_calls", []).append(call)
        elif kind == "tool_call_response":
            out["tool_call_id"] = part.get("id")
            response = part.get("response", part.get("result"))
            texts.append(response if isinstance(response, str) else json.dumps(response))
        else:
            other.append(dict(part))
    out["content"] = "\n".join(texts) if texts else None
    if other:
        out["parts"] = other
    if "finish_reason" in message:
        out["finish_reason"] = message["finish_reason"]
    if "name" in message:
        out["name"] = message["name"]
    return out


def _messages_from_json(value: Any) -> list[dict[str, Any]] | None:
    value = _json(value)
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return None
    return [_parts_message(m) for m in value if isinstance(m, dict)]


def _indexed(a: _Attrs, pattern: re.Pattern[str]) -> dict[str, dict[int, dict[str, Any]]]:
    """Flattened ``prefix.N.key`` attributes grouped as {prefix: {N: {key: value}}}."""
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for key, value in a.values.items():
        match = pattern.match(key)
        if match:
            a.used.add(key)
            out.setdefault(match[1], {}).setdefault(int(match[2]), {})[match[3]] = value
    return out


def _calls(flat: Mapping[str, Any], pattern: re.Pattern[str], names: Mapping[str, str]) -> list:
    calls: dict[int, dict[str, Any]] = {}
    for key, value in flat.items():
        match = pattern.match(key)
        if match and match[2] in names:
            calls.setdefault(int(match[1]), {})[names[match[2]]] = value
    return [calls[i] for i in sorted(calls)]


def _flat_message(flat: Mapping[str, Any], style: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": str(flat.get("role") or "user"),
        "content": flat.get("content"),
    }
    if style == "openinference":
        if message["content"] is None:
            texts = [
                v for k, v in sorted(flat.items()) if _OI_CONTENT.match(k) and k.endswith(".text")
            ]
            message["content"] = "\n".join(str(t) for t in texts) if texts else None
        calls = _calls(
            flat,
            _OI_TOOL_CALL,
            {"id": "id", "function.name": "name", "function.arguments": "arguments"},
        )
        if flat.get("tool_call_id"):
            message["tool_call_id"] = flat["tool_call_id"]
    else:
        calls = _calls(
            flat, _FLAT_TOOL_CALL, {"id": "id", "name": "name", "arguments": "arguments"}
        )
        if flat.get("finish_reason"):
            message["finish_reason"] = flat["finish_reason"]
        if flat.get("tool_call_id"):
            message["tool_call_id"] = flat["tool_call_id"]
    if calls:
        message["tool_calls"] = calls
    return message


def _from_events(span: SpanInfo, kept: list[dict[str, Any]]) -> tuple[list, list]:
    """Input and output messages carried by span events; other events go to ``kept``."""
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    for event in span.events:
        name = event.get("name", "")
        attrs = event.get("attributes") or {}
        if name in _MESSAGE_EVENTS:
            content = _json(attrs.get("content"))
            message: dict[str, Any] = {
                "role": str(attrs.get("role") or _MESSAGE_EVENTS[name]),
                "content": content if isinstance(content, str | None) else json.dumps(content),
            }
            if attrs.get("tool_calls") is not None:
                message["tool_calls"] = _json(attrs["tool_calls"])
            if attrs.get("id") is not None:
                message["tool_call_id"] = attrs["id"]
            inputs.append(message)
        elif name == "gen_ai.choice":
            body = _json(attrs.get("message"))
            message = dict(body) if isinstance(body, dict) else {"content": body}
            message.setdefault("role", "assistant")
            if message.get("content") is None and isinstance(attrs.get("content"), str):
                message["content"] = attrs["content"]
            if attrs.get("finish_reason") is not None:
                message["finish_reason"] = attrs["finish_reason"]
            outputs.append(message)
        elif "gen_ai.input.messages" in attrs or "gen_ai.output.messages" in attrs:
            inputs += _messages_from_json(attrs.get("gen_ai.input.messages")) or []
            outputs += _messages_from_json(attrs.get("gen_ai.output.messages")) or []
        else:
            kept.append(event)
    return inputs, outputs


def _output_text(outputs: list[dict[str, Any]]) -> str | None:
    """The first choice's text; tool calls (and nothing else) as JSON text."""
    if not outputs:
        return None
    first = outputs[0]
    content = first.get("content")
    if isinstance(content, str) and content:
        return content
    if first.get("tool_calls"):
        return json.dumps({"tool_calls": first["tool_calls"]}, ensure_ascii=False)
    return content if isinstance(content, str) else None


def _error(span: SpanInfo, a: _Attrs, kept_events: list[dict[str, Any]]) -> str | None:
    if span.status_code != 2:
        return None
    reason = span.status_message or ""
    for event in kept_events:
        if event.get("name") == "exception":
            attrs = event.get("attributes") or {}
            kind, text = attrs.get("exception.type"), attrs.get("exception.message")
            reason = reason or ": ".join(str(x) for x in (kind, text) if x)
    kind = a.get("error.type")
    return reason or (str(kind) if kind else "error (span status ERROR)")


def generation_fields(span: SpanInfo, kind: str) -> dict[str, Any]:
    """``Project.log`` keywords for a model-call, tool or retrieval span (see module doc).

    ``session`` and ``parent`` are left to the caller, who knows the other spans; the
    session's key (``gen_ai.conversation.id`` / ``session.id``) and end user come back as
    ``_conversation`` and ``_end_user``."""
    a = _Attrs(span.attributes)
    meta: dict[str, Any] = {}
    kept_events: list[dict[str, Any]] = []
    inputs, outputs = _from_events(span, kept_events)
    fields: dict[str, Any] = {"name": span.name}
    for key in ("openinference.span.kind", "gen_ai.operation.name"):
        a.get(key)
    if kind == "model":
        _model_fields(span, a, fields, meta, inputs, outputs)
    else:
        _step_fields(kind, a, fields, meta)
    error = _error(span, a, kept_events)
    if error is not None:
        fields["status"], fields["error"] = "error", error
    if span.end_ns and span.start_ns and span.end_ns >= span.start_ns:
        fields["latency_ms"] = (span.end_ns - span.start_ns) / 1e6
    if span.start_ns:
        fields["created_at"] = span.start_ns / 1e9
    tags = a.values.get("tag.tags")
    if isinstance(tags, list) and all(isinstance(t, str) for t in tags):
        fields["tags"] = a.get("tag.tags")  # anything else stays among the attributes
    fields["_conversation"] = a.get("gen_ai.conversation.id", "session.id")
    fields["_end_user"] = a.get("user.id", "enduser.id")
    meta["otel"] = {
        "kind": kind,
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "span_kind": span.kind,
        "status_code": span.status_code,
        **({"status_message": span.status_message} if span.status_message else {}),
        **({"scope": span.scope} if span.scope else {}),
        **({"resource": span.resource} if span.resource else {}),
    }
    rest = a.rest()
    if rest:
        meta["attributes"] = rest
    if kept_events:
        meta["events"] = kept_events
    if span.links:
        meta["links"] = span.links
    fields["metadata"] = meta
    return fields


def _model_fields(span, a: _Attrs, fields, meta, inputs, outputs) -> None:
    fields["model"] = a.get("gen_ai.response.model", "gen_ai.request.model", "llm.model_name")
    request_model = a.get("gen_ai.request.model")
    if request_model and request_model != fields["model"]:
        meta["request_model"] = request_model
    provider = a.get("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
    if provider:
        meta["provider"] = provider
    params: dict[str, Any] = {}
    for key, value in a.values.items():
        if key.startswith(_REQUEST_PREFIX) and key != "gen_ai.request.model":
            a.used.add(key)
            if value is not None:
                params[key[len(_REQUEST_PREFIX) :]] = value
    invocation = _json(a.get("llm.invocation_parameters"))
    if isinstance(invocation, dict):
        params.update({k: v for k, v in invocation.items() if k != "model"})
    if params:
        fields["params"] = params
    # token counts: one pass over the attributes, the first alias of each count wins
    counts: dict[str, tuple[int, str]] = {}
    for key in a.values:
        alias = _COUNT_ALIASES.get(key)
        if alias is not None and (alias[0] not in counts or alias[1] < counts[alias[0]][0]):
            counts[alias[0]] = (alias[1], key)
    found = {name: a.number(key) for name, (_, key) in counts.items()}
    for name in _TOKENS:
        fields[name] = found.pop(name, None)
    usage = {k: v for k, v in found.items() if v is not None}
    if usage:
        meta["usage"] = usage
    reasons = a.get("gen_ai.response.finish_reasons")
    if reasons is not None:
        meta["finish_reasons"] = reasons if isinstance(reasons, list) else [reasons]
    response_id = a.get("gen_ai.response.id")
    if response_id is not None:
        meta["response_id"] = response_id
    tools = a.get("gen_ai.tool.definitions", "llm.tools")
    if tools is not None:
        meta["tool_definitions"] = _json(tools)
    # messages: JSON attributes first, then the flattened dialects, then events
    system = _messages_from_json(a.get("gen_ai.system_instructions"))
    attr_in = _messages_from_json(a.get("gen_ai.input.messages"))
    attr_out = _messages_from_json(a.get("gen_ai.output.messages"))
    # the flattened dialects cost a regex per attribute: only where JSON messages are absent
    flat = _indexed(a, _FLAT) if attr_in is None or attr_out is None else {}
    oi = _indexed(a, _OPENINFERENCE) if attr_in is None or attr_out is None else {}
    if attr_in is None and flat.get("gen_ai.prompt"):
        attr_in = [_flat_message(m, "flat") for _, m in sorted(flat["gen_ai.prompt"].items())]
    if attr_out is None and flat.get("gen_ai.completion"):
        attr_out = [_flat_message(m, "flat") for _, m in sorted(flat["gen_ai.completion"].items())]
    if attr_in is None and oi.get("input_messages"):
        attr_in = [
            _flat_message(m, "openinference") for _, m in sorted(oi["input_messages"].items())
        ]
    if attr_out is None and oi.get("output_messages"):
        attr_out = [
            _flat_message(m, "openinference") for _, m in sorted(oi["output_messages"].items())
        ]
    messages = (system or []) + (attr_in if attr_in is not None else inputs)
    outs = attr_out if attr_out is not None else outputs
    for i, m in enumerate(outs):
        if i == 0 and "finish_reason" in m and "finish_reasons" not in meta:
            meta["finish_reasons"] = [m["finish_reason"] for m in outs if "finish_reason" in m]
    if messages:
        fields["messages"] = messages
    else:
        raw = a.get("input.value")
        fields["prompt"] = raw if isinstance(raw, str) else ""  # content not captured: ""
    output = _output_text(outs)
    if output is None:
        raw = a.get("output.value")
        output = raw if isinstance(raw, str) else None
    fields["output"] = output
    if len(outs) > 1 or any(m.get("tool_calls") for m in outs):
        meta["output_messages"] = outs
    for key in ("input.mime_type", "output.mime_type"):
        a.get(key)


def _step_fields(kind: str, a: _Attrs, fields, meta) -> None:
    """A tool execution or a retrieval: its input as the prompt, its result as the output."""
    if kind == "tool":
        name = a.get("gen_ai.tool.name", "tool.name")
        meta["tool"] = {
            k: v
            for k, v in {
                "name": name,
                "call_id": a.get("gen_ai.tool.call.id", "tool_call.id"),
                "type": a.get("gen_ai.tool.type"),
                "description": a.get("gen_ai.tool.description", "tool.description"),
            }.items()
            if v is not None
        }
        args = a.get("gen_ai.tool.call.arguments", "tool.parameters", "input.value")
        result = a.get("gen_ai.tool.call.result", "output.value")
    else:
        args = a.get("gen_ai.retrieval.query", "input.value")
        docs = _indexed(a, re.compile(r"^(retrieval\.documents)\.(\d+)\.document\.(.+)$"))
        documents = [d for _, d in sorted(docs.get("retrieval.documents", {}).items())]
        if documents:
            meta["documents"] = documents
        result = a.get("output.value")
        if result is None and documents:
            result = "\n\n".join(str(d.get("content", "")) for d in documents)
    fields["prompt"] = args if isinstance(args, str) else json.dumps(args) if args else ""
    if result is not None:
        fields["output"] = result if isinstance(result, str) else json.dumps(result)
