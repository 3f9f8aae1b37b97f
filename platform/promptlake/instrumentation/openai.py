"""Logging of the official ``openai`` package's calls: chat completions and responses.

``instrument_openai(client, project)`` replaces ``client.chat.completions.create`` and
``client.responses.create`` (on one client, or with the ``openai`` module on the SDK's
classes, for every client) by wrappers that call the original unchanged and log one
generation per call: the input messages, the output text, tool calls, model, the call's
parameters, token usage (cached and reasoning tokens in ``metadata.usage``), latency
(and time to first token for streams), finish reasons, the response id, and errors.

What the caller gets is what the SDK returned: the same objects, the same exceptions
(an API error is logged with ``status="error"`` and re-raised as it was). A stream is the
SDK's own ``Stream`` / ``AsyncStream`` object, whose iterator is wrapped: it yields the
same chunks, and the generation is logged once, when the stream ends, is closed, or fails.
A failure to *log* never reaches the caller: it is reported with ``logging`` and counted
in :attr:`Instrumentation.failures`.

The sink (``project``) is anything with ``log(**fields)``: a ``Project``, a ``Session``,
a background logger (``proj.logger()``, which does not wait for the database) or one of
its sessions. From async clients, a sink with ``alog`` is awaited; another one is called
in a worker thread, so the event loop never waits for a database commit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

_NOT_PARAMS = {
    "messages",
    "input",
    "model",
    "stream",
    "extra_headers",
    "extra_query",
    "extra_body",
    "timeout",
    "instructions",
}


@dataclass
class Instrumentation:
    """The handle ``instrument`` returns: ``uninstrument()`` restores the SDK's methods."""

    logged: int = 0
    failures: int = 0  # generations that could not be logged (see the log)
    _restore: list[Callable[[], None]] = field(default_factory=list)

    def uninstrument(self) -> None:
        while self._restore:
            self._restore.pop()()


def instrument_openai(
    client: Any,
    project: Any,
    *,
    name: str | None = None,
    tags: list[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Instrumentation:
    """Log every ``chat.completions.create`` and ``responses.create`` call of ``client``
    (an ``OpenAI`` / ``AsyncOpenAI`` instance, or the ``openai`` module: all clients) into
    ``project``. ``name``, ``tags`` and ``metadata`` are added to every generation."""
    from ..errors import Problem, ValidationError

    if not callable(getattr(project, "log", None)):
        raise ValidationError([Problem("project", "must be a Project, Session or logger")])
    handle = Instrumentation()
    context = _Context(project, handle, name, list(tags or []), dict(metadata or {}))
    targets = _targets(client)
    if not targets:
        raise ValidationError(
            [
                Problem(
                    "client",
                    "must be an openai.OpenAI or AsyncOpenAI client, or the openai"
                    f" module; got {type(client).__name__}",
                )
            ]
        )
    for owner, api, is_async, on_class in targets:
        original = owner.__dict__.get("create") if on_class else owner.create
        if getattr(original, "__promptlake__", False):
            continue  # instrumented already
        make = _async_wrapper if is_async else _sync_wrapper
        wrapper = make(original, api, context)
        wrapper.__promptlake__ = True  # type: ignore[attr-defined]
        owner.create = wrapper

        def restore(owner: Any = owner, original: Any = original, on_class: bool = on_class):
            if on_class:
                owner.create = original
            else:
                owner.__dict__.pop("create", None)

        handle._restore.append(restore)
    return handle


def _targets(client: Any) -> list[tuple[Any, str, bool, bool]]:
    import openai
    from openai.resources.chat.completions import AsyncCompletions, Completions
    from openai.resources.responses import AsyncResponses, Responses

    if client is openai:
        return [
            (Completions, "chat", False, True),
            (AsyncCompletions, "chat", True, True),
            (Responses, "responses", False, True),
            (AsyncResponses, "responses", True, True),
        ]
    if isinstance(client, openai.OpenAI | openai.AsyncOpenAI):
        is_async = isinstance(client, openai.AsyncOpenAI)
        return [
            (client.chat.completions, "chat", is_async, False),
            (client.responses, "responses", is_async, False),
        ]
    return []


@dataclass
class _Context:
    sink: Any
    handle: Instrumentation
    name: str | None
    tags: list[str]
    metadata: dict[str, Any]

    def fields(self, api: str, kwargs: Mapping[str, Any], result: dict[str, Any]) -> dict:
        metadata = {"provider": "openai", "api": api, **self.metadata, **result.pop("metadata")}
        fields = {
            "name": self.name or f"openai.{'chat.completions' if api == 'chat' else 'responses'}",
            "model": result.pop("model", None) or _plain(kwargs.get("model")),
            "params": {
                k: _plain(v) for k, v in kwargs.items() if k not in _NOT_PARAMS and not _omitted(v)
            },
            "metadata": metadata,
            "tags": self.tags or None,
            **_inputs(api, kwargs),
            **result,
        }
        if kwargs.get("stream"):
            fields["params"]["stream"] = True
        return {k: v for k, v in fields.items() if v is not None}

    def record(self, fields: dict[str, Any]) -> None:
        try:
            self.sink.log(**fields)
            self.handle.logged += 1
        except Exception:
            self.handle.failures += 1
            log.exception("promptlake: could not log an openai call")

    async def arecord(self, fields: dict[str, Any]) -> None:
        try:
            alog = getattr(self.sink, "alog", None)
            if alog is not None:
                await alog(**fields)
            else:
                await asyncio.to_thread(self.sink.log, **fields)
            self.handle.logged += 1
        except Exception:
            self.handle.failures += 1
            log.exception("promptlake: could not log an openai call")


# -- wrappers --------------------------------------------------------------------------


def _sync_wrapper(original: Callable, api: str, context: _Context) -> Callable:
    def create(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            result = original(*args, **kwargs)
        except Exception as exc:
            context.record(context.fields(api, kwargs, _error(exc, started)))
            raise
        if kwargs.get("stream") and hasattr(result, "_iterator"):
            acc = _Accumulator(api, started)
            result._iterator = _iterate(result._iterator, acc, context, kwargs)
            close = result.close

            def closing() -> None:
                try:
                    close()
                finally:
                    _finish(acc, context, kwargs, closed=True)

            result.close = closing
            return result
        if kwargs.get("stream"):
            _unwrappable(context, result)
        else:
            context.record(context.fields(api, kwargs, _from_response(api, result, started)))
        return result

    return create


def _async_wrapper(original: Callable, api: str, context: _Context) -> Callable:
    async def create(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            result = await original(*args, **kwargs)
        except Exception as exc:
            await context.arecord(context.fields(api, kwargs, _error(exc, started)))
            raise
        if kwargs.get("stream") and hasattr(result, "_iterator"):
            acc = _Accumulator(api, started)
            result._iterator = _aiterate(result._iterator, acc, context, kwargs)
            close = result.close

            async def closing() -> None:
                try:
                    await close()
                finally:
                    await _afinish(acc, context, kwargs, closed=True)

            result.close = closing
            return result
        if kwargs.get("stream"):
            _unwrappable(context, result)
        else:
            fields = context.fields(api, kwargs, _from_response(api, result, started))
            await context.arecord(fields)
        return result

    return create


def _unwrappable(context: _Context, result: Any) -> None:
    """A stream of an SDK version whose stream object has no ``_iterator`` to wrap: handed
    to the caller untouched, and counted as a failure to log (never silently)."""
    context.handle.failures += 1
    log.warning(
        "promptlake: cannot log this openai stream (%s has no _iterator; another"
        " SDK version?); the call was not logged",
        type(result).__name__,
    )


def _iterate(iterator: Any, acc: _Accumulator, context: _Context, kwargs: Mapping) -> Any:
    try:
        for chunk in iterator:
            acc.add(chunk)
            yield chunk
        acc.ended = True
    except Exception as exc:
        acc.failed(exc)
        raise
    finally:  # ended, failed, or closed (GeneratorExit) mid-way
        _finish(acc, context, kwargs, closed=not acc.ended)


async def _aiterate(iterator: Any, acc: _Accumulator, context: _Context, kwargs: Mapping) -> Any:
    try:
        async for chunk in iterator:
            acc.add(chunk)
            yield chunk
        acc.ended = True
    except Exception as exc:
        acc.failed(exc)
        raise
    finally:
        await _afinish(acc, context, kwargs, closed=not acc.ended)


def _finish(acc: _Accumulator, context: _Context, kwargs: Mapping, closed: bool) -> None:
    if not acc.logged:
        acc.logged = True
        context.record(context.fields(acc.api, kwargs, acc.result(closed)))


async def _afinish(acc: _Accumulator, context: _Context, kwargs: Mapping, closed: bool) -> None:
    if not acc.logged:
        acc.logged = True
        await context.arecord(context.fields(acc.api, kwargs, acc.result(closed)))


# -- what a call becomes -----------------------------------------------------------------


def _omitted(value: Any) -> bool:
    return type(value).__name__ in ("Omit", "NotGiven")


def _plain(value: Any) -> Any:
    """JSON-able values of what the caller passed (SDK models, iterables, TypedDicts)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if not _omitted(v)}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return str(value)


def _text(content: Any) -> Any:
    """Message content as stored: text stays text, content parts stay a JSON list."""
    return _plain(content)


def _inputs(api: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    if api == "chat":
        messages = [_message(m) for m in _plain(kwargs.get("messages")) or []]
        return {"messages": messages or None, "prompt": None if messages else ""}
    instructions = kwargs.get("instructions")
    given = kwargs.get("input")
    messages = []
    if isinstance(instructions, str):
        messages.append({"role": "system", "content": instructions})
    if isinstance(given, str):
        messages.append({"role": "user", "content": given})
    elif given is not None and not _omitted(given):
        messages += [_item(i) for i in _plain(given)]
    return {"messages": messages} if messages else {"prompt": ""}


def _message(message: Any) -> dict[str, Any]:
    if not isinstance(message, dict):
        return {"role": "user", "content": _plain(message)}
    out = dict(message)
    out.setdefault("content", None)
    return out


def _item(item: Any) -> dict[str, Any]:
    """A responses input item as a chat message (tool calls and their outputs included)."""
    if not isinstance(item, dict):
        return {"role": "user", "content": item}
    if "role" in item:
        return {**item, "content": item.get("content")}
    kind = item.get("type")
    if kind == "function_call_output":
        return {"role": "tool", "content": item.get("output"), "tool_call_id": item.get("call_id")}
    if kind == "function_call":
        call = {
            "id": item.get("call_id"),
            "type": "function",
            "function": {"name": item.get("name"), "arguments": item.get("arguments")},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call]}
    return {"role": str(kind or "item"), "content": item}


def _error(exc: Exception, started: float) -> dict[str, Any]:
    metadata: dict[str, Any] = {"error_type": type(exc).__name__}
    status = getattr(exc, "status_code", None)
    if status is not None:
        metadata["status_code"] = status
    if getattr(exc, "request_id", None):
        metadata["request_id"] = exc.request_id  # type: ignore[attr-defined]
    if getattr(exc, "code", None):
        metadata["error_code"] = str(exc.code)  # type: ignore[attr-defined]
    return {
        "status": "error",
        "error": f"{type(exc).__name__}: {exc}"[:10_000],
        "latency_ms": (time.perf_counter() - started) * 1000,
        "metadata": metadata,
    }


def _usage_chat(usage: Any, metadata: dict[str, Any]) -> dict[str, Any]:
    if usage is None:
        return {}
    details: dict[str, Any] = {"total_tokens": getattr(usage, "total_tokens", None)}
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    if prompt_details is not None:
        details["cached_tokens"] = getattr(prompt_details, "cached_tokens", None)
    if completion_details is not None:
        details["reasoning_tokens"] = getattr(completion_details, "reasoning_tokens", None)
    metadata["usage"] = {k: v for k, v in details.items() if v is not None}
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}


def _usage_responses(usage: Any, metadata: dict[str, Any]) -> dict[str, Any]:
    if usage is None:
        return {}
    details: dict[str, Any] = {"total_tokens": getattr(usage, "total_tokens", None)}
    input_details = getattr(usage, "input_tokens_details", None)
    output_details = getattr(usage, "output_tokens_details", None)
    if input_details is not None:
        details["cached_tokens"] = getattr(input_details, "cached_tokens", None)
    if output_details is not None:
        details["reasoning_tokens"] = getattr(output_details, "reasoning_tokens", None)
    metadata["usage"] = {k: v for k, v in details.items() if v is not None}
    return {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens}


def _from_response(api: str, response: Any, started: float) -> dict[str, Any]:
    latency = (time.perf_counter() - started) * 1000
    if api == "chat":
        return _from_chat(response, latency)
    return _from_responses(response, latency)


def _from_chat(completion: Any, latency: float) -> dict[str, Any]:
    metadata: dict[str, Any] = {"response_id": completion.id}
    if getattr(completion, "system_fingerprint", None):
        metadata["system_fingerprint"] = completion.system_fingerprint
    if getattr(completion, "service_tier", None):
        metadata["service_tier"] = completion.service_tier
    choices = completion.choices or []
    metadata["finish_reasons"] = [c.finish_reason for c in choices]
    output = None
    if choices:
        message = choices[0].message
        output = message.content
        if message.tool_calls:
            metadata["tool_calls"] = [_plain(t) for t in message.tool_calls]
        if getattr(message, "refusal", None):
            metadata["refusal"] = message.refusal
    if len(choices) > 1:
        metadata["choices"] = [c.message.content for c in choices]
    return {
        "model": completion.model,
        "output": output,
        "latency_ms": latency,
        "metadata": metadata,
        **_usage_chat(completion.usage, metadata),
    }


def _from_responses(response: Any, latency: float) -> dict[str, Any]:
    metadata: dict[str, Any] = {"response_id": response.id, "response_status": response.status}
    calls = [_plain(item) for item in response.output or [] if item.type == "function_call"]
    if calls:
        metadata["tool_calls"] = calls
    incomplete = getattr(response, "incomplete_details", None)
    if incomplete is not None:
        metadata["incomplete_details"] = _plain(incomplete)
    out: dict[str, Any] = {
        "model": response.model,
        "output": response.output_text or None,
        "latency_ms": latency,
        "metadata": metadata,
    }
    if response.status == "failed" or getattr(response, "error", None):
        out["status"] = "error"
        out["error"] = json.dumps(_plain(response.error)) if response.error else "failed"
    out.update(_usage_responses(response.usage, metadata))
    return out


class _Accumulator:
    """What a stream's chunks add up to, as far as the caller read it."""

    def __init__(self, api: str, started: float) -> None:
        self.api = api
        self.started = started
        self.first: float | None = None
        self.ended = False
        self.logged = False
        self.chunks = 0
        self.text: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish: list[str] = []
        self.model: str | None = None
        self.id: str | None = None
        self.usage: Any = None
        self.final: Any = None  # responses: the completed response object
        self.exception: Exception | None = None

    def add(self, chunk: Any) -> None:
        self.chunks += 1
        if self.first is None:
            self.first = time.perf_counter()
        if self.api == "chat":
            self._add_chat(chunk)
        else:
            self._add_event(chunk)

    def _add_chat(self, chunk: Any) -> None:
        self.model = getattr(chunk, "model", None) or self.model
        self.id = getattr(chunk, "id", None) or self.id
        if getattr(chunk, "usage", None) is not None:
            self.usage = chunk.usage
        for choice in chunk.choices or []:
            if choice.index != 0:
                continue
            delta = choice.delta
            if delta is not None and delta.content:
                self.text.append(delta.content)
            for call in (delta.tool_calls if delta is not None else None) or []:
                slot = self.tool_calls.setdefault(
                    call.index,
                    {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
                )
                if call.id:
                    slot["id"] = call.id
                if call.function is not None:
                    slot["function"]["name"] += call.function.name or ""
                    slot["function"]["arguments"] += call.function.arguments or ""
            if choice.finish_reason:
                self.finish.append(choice.finish_reason)
                self.ended = True

    def _add_event(self, event: Any) -> None:
        kind = getattr(event, "type", "")
        if kind == "response.output_text.delta":
            self.text.append(event.delta)
        elif kind in ("response.completed", "response.failed", "response.incomplete"):
            self.final = event.response
            self.ended = True
        elif kind == "response.created":
            self.id = event.response.id
            self.model = event.response.model
        elif kind == "error":
            self.exception = RuntimeError(getattr(event, "message", "stream error"))
            self.ended = True

    def failed(self, exc: Exception) -> None:
        self.exception = exc

    def result(self, closed: bool) -> dict[str, Any]:
        now = time.perf_counter()
        if self.final is not None:
            out = _from_responses(self.final, (now - self.started) * 1000)
        else:
            metadata: dict[str, Any] = {"response_id": self.id}
            if self.finish:
                metadata["finish_reasons"] = self.finish
            if self.tool_calls:
                metadata["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
            out = {
                "model": self.model,
                "output": "".join(self.text) or None,
                "latency_ms": (now - self.started) * 1000,
                "metadata": metadata,
            }
            out.update(_usage_chat(self.usage, metadata))
        metadata = out["metadata"]
        metadata["stream"] = True
        metadata["chunks"] = self.chunks
        if self.first is not None:
            metadata["time_to_first_token_ms"] = round((self.first - self.started) * 1000, 3)
        if self.exception is not None:
            out["status"] = "error"
            out["error"] = f"{type(self.exception).__name__}: {self.exception}"[:10_000]
        elif closed and not self.ended:
            metadata["closed_early"] = True  # the caller stopped reading: a partial output
        return {k: v for k, v in out.items() if v is not None}
