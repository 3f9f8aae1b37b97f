"""promptlake serve: OTLP/HTTP from the real OpenTelemetry SDK and exporter, OTLP/JSON built
by hand, the native JSON batches, and the HTTP errors, all on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import time
import uuid

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from promptlake.server.app import ServerConfig
from promptlake.server.jobs import conversation_session_id, span_generation_id
from promptlake.server.run import ThreadedServer

CHAT_IN = [
    {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
    {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
]
CHAT_OUT = [
    {
        "role": "assistant",
        "parts": [
            {
                "type": "tool_call",
                "id": "call_1",
                "name": "get_weather",
                "arguments": {"city": "Paris"},
            },
        ],
        "finish_reason": "tool_calls",
    }
]


@pytest.fixture
def server(lake):
    with ThreadedServer(lake, ServerConfig(max_body_bytes=256 * 1024)) as running:
        yield running


@pytest.fixture
def writer_key(project) -> str:
    return project.keys.create("writer", name="tests").secret


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _exporter(server, key: str, **options) -> OTLPSpanExporter:
    return OTLPSpanExporter(
        endpoint=server.url + "/v1/traces", headers=_auth(key), timeout=30, **options
    )


def _record(build) -> list:
    """Spans made by ``build(tracer)`` with the real SDK, captured in memory."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    build(provider.get_tracer("tests", "1.0"))
    provider.shutdown()
    return list(memory.get_finished_spans())


def _ids(span) -> tuple[str, str]:
    ctx = span.get_span_context()
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def _gid(project, span) -> uuid.UUID:
    return span_generation_id(project.id, *_ids(span), span.start_time)


def _agent_trace(tracer) -> None:
    with tracer.start_as_current_span("invoke_agent planner"):
        with (
            tracer.start_as_current_span(
                "chat gpt-4o",
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.response.model": "gpt-4o-2024-08-06",
                    "gen_ai.request.temperature": 0.2,
                    "gen_ai.request.max_tokens": 300,
                    "gen_ai.request.top_p": 0.9,
                    "gen_ai.usage.input_tokens": 120,
                    "gen_ai.usage.output_tokens": 30,
                    "gen_ai.usage.cache_read.input_tokens": 64,
                    "gen_ai.usage.reasoning_tokens": 12,
                    "gen_ai.response.finish_reasons": ["tool_calls"],
                    "gen_ai.response.id": "chatcmpl-42",
                    "gen_ai.conversation.id": "conv-7",
                    "gen_ai.input.messages": json.dumps(CHAT_IN),
                    "gen_ai.output.messages": json.dumps(CHAT_OUT),
                    "server.address": "api.openai.com",
                    "app.feature": "weather",
                },
            ),
            tracer.start_as_current_span(
                "chat summarizer",
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.input.messages": json.dumps(CHAT_IN[1:]),
                },
            ),
        ):
            pass
        with tracer.start_as_current_span(
            "execute_tool get_weather",
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "get_weather",
                "gen_ai.tool.call.id": "call_1",
                "gen_ai.tool.call.arguments": '{"city": "Paris"}',
                "gen_ai.tool.call.result": '{"temp_c": 18}',
            },
        ):
            pass
        with tracer.start_as_current_span(
            "chat gpt-4o",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.conversation.id": "conv-7",
            },
        ) as failing:
            failing.set_status(Status(StatusCode.ERROR, "rate limited by provider"))


def test_sdk_export_stores_generations_with_everything_mapped(server, project, writer_key, dbq):
    spans = _record(_agent_trace)
    by_name = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    exporter = _exporter(server, writer_key)
    assert exporter.export(spans) is SpanExportResult.SUCCESS

    chat = project.generation(_gid(project, by_name["chat gpt-4o"][0]))
    assert chat.model == "gpt-4o-2024-08-06"
    assert chat.params == {"temperature": 0.2, "max_tokens": 300, "top_p": 0.9}
    assert (chat.prompt_tokens, chat.completion_tokens) == (120, 30)
    assert chat.metadata["usage"] == {"cached_input_tokens": 64, "reasoning_tokens": 12}
    assert chat.metadata["finish_reasons"] == ["tool_calls"]
    assert chat.metadata["response_id"] == "chatcmpl-42"
    assert chat.metadata["provider"] == "openai"
    assert chat.metadata["request_model"] == "gpt-4o"
    assert chat.input_messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
    ]
    calls = chat.metadata["output_messages"][0]["tool_calls"]
    assert calls == [{"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}]
    assert "get_weather" in chat.output  # the tool call is the output
    span = by_name["chat gpt-4o"][0]
    assert chat.latency_ms == pytest.approx((span.end_time - span.start_time) / 1e6)
    # every attribute no mapping read is kept
    assert chat.metadata["attributes"] == {
        "server.address": "api.openai.com",
        "app.feature": "weather",
    }
    assert chat.metadata["otel"]["trace_id"], chat.metadata["otel"]["span_id"] == _ids(span)
    assert chat.session_id == conversation_session_id(project.id, "conv-7")

    inner = project.generation(_gid(project, by_name["chat summarizer"][0]))
    assert inner.parent_id == chat.id  # nearest model-call ancestor
    tool = project.generation(_gid(project, by_name["execute_tool get_weather"][0]))
    assert tool.metadata["otel"]["kind"] == "tool"
    assert tool.metadata["tool"] == {"name": "get_weather", "call_id": "call_1"}
    assert (tool.input_text, tool.output) == ('{"city": "Paris"}', '{"temp_c": 18}')
    failed = project.generation(_gid(project, by_name["chat gpt-4o"][1]))
    assert (failed.status, failed.error) == ("error", "rate limited by provider")
    assert failed.input_text == ""  # content not captured: stored, not refused
    # the agent span is no generation; the session holds both conv-7 calls
    _, rows = dbq("SELECT count(*) FROM generations")
    assert rows[0][0] == 4
    assert {g.id for g in project.history(chat.session_id)} == {chat.id, failed.id}

    # a retried export (same spans) stores nothing twice; gzip works the same way
    assert _exporter(server, writer_key, compression=Compression.Gzip).export(spans) is (
        SpanExportResult.SUCCESS
    )
    assert dbq("SELECT count(*) FROM generations")[1][0][0] == 4


def test_pii_policy_applies_to_spans(server, project, writer_key):
    project.set_pii_policy({"EMAIL": "redact"})

    def build(tracer):
        with tracer.start_as_current_span(
            "chat",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "m",
                "gen_ai.prompt.0.role": "user",
                "gen_ai.prompt.0.content": "mail jane@example.com",
                "gen_ai.completion.0.content": "ok, jane@example.com",
            },
        ):
            pass

    spans = _record(build)
    assert _exporter(server, writer_key).export(spans) is SpanExportResult.SUCCESS
    stored = project.generation(_gid(project, spans[0]))
    assert stored.input_messages == [{"role": "user", "content": "mail <EMAIL>"}]
    assert stored.output == "ok, <EMAIL>"
    assert "jane@example.com" not in json.dumps(stored.metadata)


def _json_span(trace: str, span: str, **extra) -> dict:
    return {
        "traceId": trace,
        "spanId": span,
        "name": extra.pop("name", "chat"),
        "kind": 3,
        "startTimeUnixNano": "1764806400000000000",
        "endTimeUnixNano": "1764806401500000000",
        **extra,
    }


def _attrs(values: dict) -> list[dict]:
    out = []
    for key, value in values.items():
        if isinstance(value, bool):
            out.append({"key": key, "value": {"boolValue": value}})
        elif isinstance(value, int):
            out.append({"key": key, "value": {"intValue": str(value)}})
        elif isinstance(value, float):
            out.append({"key": key, "value": {"doubleValue": value}})
        else:
            out.append({"key": key, "value": {"stringValue": value}})
    return out


def _json_body(*spans: dict) -> dict:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": _attrs({"service.name": "checkout-ts"})},
                "scopeSpans": [
                    {
                        "scope": {"name": "openinference.instrumentation.openai"},
                        "spans": list(spans),
                    }
                ],
            }
        ]
    }


TRACE = "5b8efff798038103d269b633813fc60c"
START = 1764806400000000000


def test_otlp_json_hex_ids_integer_enums_older_and_openinference_spans(server, project, writer_key):
    old = _json_span(
        TRACE,
        "eee19b7ec3c1b174",
        attributes=_attrs(
            {
                "gen_ai.system": "anthropic",
                "gen_ai.request.model": "claude-3-5-sonnet",
                "gen_ai.prompt.0.role": "user",
                "gen_ai.prompt.0.content": "Hello",
                "gen_ai.completion.0.role": "assistant",
                "gen_ai.completion.0.content": "Hi!",
                "gen_ai.completion.0.finish_reason": "end_turn",
                "gen_ai.usage.prompt_tokens": 5,
                "gen_ai.usage.completion_tokens": 2,
                "gen_ai.usage.cache_read_input_tokens": 3,
            }
        ),
        status={"code": 2, "message": "overloaded"},
    )
    oi = _json_span(
        TRACE,
        "eee19b7ec3c1b175",
        parentSpanId="eee19b7ec3c1b174",
        name="ChatCompletion",
        attributes=_attrs(
            {
                "openinference.span.kind": "LLM",
                "llm.model_name": "gpt-4o-mini",
                "llm.invocation_parameters": json.dumps(
                    {"temperature": 0.7, "model": "gpt-4o-mini"}
                ),
                "llm.input_messages.0.message.role": "user",
                "llm.input_messages.0.message.content": "2+2?",
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.content": "4",
                "llm.token_count.prompt": 9,
                "llm.token_count.completion": 1,
                "llm.token_count.completion_details.reasoning": 0,
                "session.id": "s-oi",
                "tag.tags": "not-a-list",
            }
        ),
    )
    events = _json_span(
        TRACE,
        "eee19b7ec3c1b176",
        name="chat events",
        attributes=_attrs({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gemini-2.0"}),
        events=[
            {
                "name": "gen_ai.user.message",
                "timeUnixNano": "1764806400000000001",
                "attributes": _attrs({"content": "Tell me a joke"}),
            },
            {
                "name": "gen_ai.choice",
                "timeUnixNano": "1764806401000000000",
                "attributes": _attrs(
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": json.dumps({"content": "Knock knock."}),
                    }
                ),
            },
            {"name": "custom.event", "attributes": _attrs({"x": 1})},
        ],
    )
    other = _json_span(
        TRACE, "eee19b7ec3c1b177", name="GET /api", attributes=_attrs({"http.method": "GET"})
    )
    response = httpx.post(
        server.url + "/v1/traces",
        json=_json_body(old, oi, events, other),
        headers=_auth(writer_key),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {}  # full success: no partialSuccess

    g_old = project.generation(span_generation_id(project.id, TRACE, "eee19b7ec3c1b174", START))
    assert (g_old.model, g_old.status, g_old.error) == ("claude-3-5-sonnet", "error", "overloaded")
    assert g_old.metadata["provider"] == "anthropic"
    assert g_old.metadata["usage"] == {"cached_input_tokens": 3}
    assert g_old.metadata["finish_reasons"] == ["end_turn"]
    assert g_old.input_messages == [{"role": "user", "content": "Hello"}]
    assert (g_old.output, g_old.prompt_tokens, g_old.completion_tokens) == ("Hi!", 5, 2)
    assert g_old.latency_ms == pytest.approx(1500.0)
    assert g_old.metadata["otel"]["resource"] == {"service.name": "checkout-ts"}

    g_oi = project.generation(span_generation_id(project.id, TRACE, "eee19b7ec3c1b175", START))
    assert (g_oi.model, g_oi.params, g_oi.output) == ("gpt-4o-mini", {"temperature": 0.7}, "4")
    assert g_oi.input_messages == [{"role": "user", "content": "2+2?"}]
    assert g_oi.parent_id == g_old.id
    assert g_oi.metadata["usage"] == {"reasoning_tokens": 0}
    assert g_oi.session_id == conversation_session_id(project.id, "s-oi")
    assert g_oi.metadata["attributes"] == {"tag.tags": "not-a-list"}  # not a list: kept

    g_ev = project.generation(span_generation_id(project.id, TRACE, "eee19b7ec3c1b176", START))
    assert g_ev.input_messages == [{"role": "user", "content": "Tell me a joke"}]
    assert g_ev.output == "Knock knock."
    assert [e["name"] for e in g_ev.metadata["events"]] == ["custom.event"]
    with pytest.raises(promptlake_not_found()):
        project.generation(span_generation_id(project.id, TRACE, "eee19b7ec3c1b177", START))


def promptlake_not_found():
    from promptlake import NotFoundError

    return NotFoundError


def test_partial_success_names_spans_it_could_not_store(server, project, writer_key, dbq):
    good = _json_span(
        TRACE,
        "aaaaaaaaaaaaaaa1",
        attributes=_attrs(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "m",
                "gen_ai.input.messages": json.dumps([{"role": "user", "content": "ok"}]),
            }
        ),
    )
    bad = _json_span(
        TRACE,
        "aaaaaaaaaaaaaaa2",
        name="chat bad",
        attributes=_attrs(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "m",
                "gen_ai.input.messages": json.dumps(
                    [{"role": "user", "content": "nul \u0000 here"}]
                ),
            }
        ),
    )
    response = httpx.post(
        server.url + "/v1/traces", json=_json_body(good, bad), headers=_auth(writer_key)
    )
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == 1
    assert "aaaaaaaaaaaaaaa2" in partial["errorMessage"]
    assert "NUL" in partial["errorMessage"]
    assert dbq("SELECT count(*) FROM generations")[1][0][0] == 1


def test_bad_requests_are_refused_and_store_nothing(server, project, writer_key, dbq):
    url, auth = server.url + "/v1/traces", _auth(writer_key)
    proto = {**auth, "Content-Type": "application/x-protobuf"}
    cases = [
        (httpx.post(url, content=b"\x0a\xff\xff\xff", headers=proto), 400, "protobuf"),
        (
            httpx.post(url, content=b"{nope", headers={**auth, "Content-Type": "application/json"}),
            400,
            "not JSON",
        ),
        (
            httpx.post(url, json=_json_body(_json_span("xyz", "aaaaaaaaaaaaaaa1")), headers=auth),
            400,
            "traceId",
        ),
        (httpx.post(url, json={"resourceSpans": "x"}, headers=auth), 400, "OTLP"),
        (
            httpx.post(url, content=b"{}", headers={**auth, "Content-Type": "text/plain"}),
            415,
            "Content-Type",
        ),
        (httpx.post(url, content=b"x" * 300_000, headers=proto), 413, "limit"),
        # a gzip bomb: 40 KB on the wire, far more inflated
        (
            httpx.post(
                url,
                content=gzip.compress(b"\0" * 5_000_000),
                headers={**proto, "Content-Encoding": "gzip"},
            ),
            413,
            "inflates",
        ),
        (
            httpx.post(url, content=b"not gzip", headers={**proto, "Content-Encoding": "gzip"}),
            400,
            "gzip",
        ),
        (httpx.post(url, content=b"", headers={**proto, "Content-Encoding": "br"}), 400, "br"),
        (
            httpx.post(
                server.url + "/v1/generations",
                content=b"[]",
                headers={**auth, "Content-Type": "application/x-protobuf"},
            ),
            415,
            "application/json",
        ),
        (
            httpx.post(server.url + "/v1/generations", json={"rows": []}, headers=auth),
            400,
            "generations",
        ),
    ]
    for response, status, words in cases:
        assert response.status_code == status, response.text
        assert words in response.json()["error"]
    assert dbq("SELECT count(*) FROM generations")[1][0][0] == 0


def test_gzip_json_export_is_stored(server, project, writer_key):
    body = _json_body(
        _json_span(
            TRACE,
            "bbbbbbbbbbbbbbb1",
            attributes=_attrs(
                {"gen_ai.operation.name": "text_completion", "gen_ai.request.model": "m"}
            ),
        )
    )
    response = httpx.post(
        server.url + "/v1/traces",
        content=gzip.compress(json.dumps(body).encode()),
        headers={
            **_auth(writer_key),
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        },
    )
    assert response.status_code == 200, response.text
    assert (
        project.generation(span_generation_id(project.id, TRACE, "bbbbbbbbbbbbbbb1", START)).model
        == "m"
    )


def test_keys_missing_wrong_revoked_and_roles(server, project, writer_key, dbq):
    url = server.url + "/v1/traces"
    body = _json_body(
        _json_span(
            TRACE,
            "ccccccccccccccc1",
            attributes=_attrs({"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}),
        )
    )
    assert httpx.post(url, json=body).status_code == 401
    assert httpx.post(url, json=body, headers={"Authorization": "Basic x"}).status_code == 401
    wrong = writer_key[:-4] + "AAAA"
    response = httpx.post(url, json=body, headers=_auth(wrong))
    assert (response.status_code, response.json()["error"]) == (401, "unknown API key")
    analyst = project.keys.create("analyst").secret
    response = httpx.post(url, json=body, headers=_auth(analyst))
    assert response.status_code == 403 and "analyst key may not write" in response.json()["error"]
    revoked = project.keys.create("writer").secret
    project.keys.revoke(revoked[:12])
    response = httpx.post(url, json=body, headers=_auth(revoked))
    assert response.status_code == 401 and "revoked" in response.json()["error"]
    assert dbq("SELECT count(*) FROM generations")[1][0][0] == 0

    # the writer key writes but cannot read; the analyst key reads
    assert httpx.post(url, json=body, headers=_auth(writer_key)).status_code == 200
    gid = span_generation_id(project.id, TRACE, "ccccccccccccccc1", START)
    read = server.url + f"/v1/generations/{gid}"
    assert httpx.get(read, headers=_auth(writer_key)).status_code == 403
    got = httpx.get(read, headers=_auth(analyst))
    assert got.status_code == 200 and got.json()["model"] == "m"
    viewer = project.keys.create("viewer").secret
    assert httpx.get(read, headers=_auth(viewer)).status_code == 403
    usage = httpx.get(server.url + "/v1/usage", headers=_auth(viewer))
    assert usage.status_code == 200 and usage.json()[0]["calls"] == 1
    # the key acts as its own principal, under row-level security
    made = {k.prefix: k for k in project.keys.list()}
    assert made[writer_key[:12]].principal == f"key:{writer_key[:12]}"
    assert dbq(
        "SELECT principal, role FROM project_members WHERE principal = :p",
        {"p": f"key:{writer_key[:12]}"},
    )[1] == [(f"key:{writer_key[:12]}", "writer")]


def test_key_principal_must_hold_the_role(lake, project):
    from promptlake import PermissionDeniedError, ValidationError

    project.grant("bob", "analyst")
    with pytest.raises(ValidationError, match="'bob' is analyst"):
        project.keys.create("writer", principal="bob")
    made = project.keys.create("analyst", principal="bob")
    assert made.key.principal == "bob" and made.secret.startswith("plk_")
    stored = lake.query("SELECT key_hash FROM api_keys", project=project)[1]
    assert made.secret.encode() not in stored[0][0]  # only the hash
    other = lake.__class__(lake.url, principal="bob", migrate=False)
    try:
        with pytest.raises(PermissionDeniedError):
            other.project(project.name, create=False).keys.create("writer")
        assert other.project(project.name, create=False).keys.list() == []  # RLS: admins only
    finally:
        other.close()


def test_rate_limit_per_key(server, project):
    slow = project.keys.create("writer", rate_per_second=1.0).secret
    body = _json_body()
    codes = [
        httpx.post(server.url + "/v1/traces", json=body, headers=_auth(slow)) for _ in range(4)
    ]
    assert [c.status_code for c in codes[:2]] == [200, 200]  # the bucket holds 2
    assert codes[-1].status_code == 429 and int(codes[-1].headers["Retry-After"]) >= 1


def test_json_batches_report_each_bad_item_and_keep_the_good(server, project, writer_key, dbq):
    sid = str(uuid.uuid4())
    good_id = str(uuid.uuid4())
    body = {
        "sessions": [{"id": sid, "end_user_id": "u-1"}],
        "generations": [
            {
                "id": good_id,
                "prompt": "q",
                "output": "a",
                "model": "gpt-4o",
                "session": sid,
                "params": {"temperature": 0},
                "prompt_tokens": 3,
            },
            {"prompt": "q", "latency_ms": -1},
            "not an object",
            {"prompt": "q", "colour": "red"},
            {"messages": [{"role": "user", "content": "hi"}], "parent": good_id},
        ],
    }
    response = httpx.post(server.url + "/v1/generations", json=body, headers=_auth(writer_key))
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["accepted"] == 2 and out["ids"][0] == good_id
    errors = {e["index"]: e["errors"] for e in out["rejected"]}
    assert set(errors) == {1, 2, 3}
    assert errors[1][0]["field"] == "latency_ms"
    assert errors[3] == [{"field": "colour", "reason": "is not a field of a generation"}]
    again = httpx.post(server.url + "/v1/generations", json=body, headers=_auth(writer_key))
    assert again.json()["accepted"] >= 1
    assert dbq("SELECT count(*) FROM generations WHERE id = :i", {"i": good_id})[1][0][0] == 1

    scores = [
        {"generation": good_id, "name": "helpful", "value": 0.9, "source": "user"},
        {"generation": str(uuid.uuid4()), "name": "helpful", "value": 1},
        {"generation": good_id, "name": "helpful"},
    ]
    response = httpx.post(server.url + "/v1/scores", json=scores, headers=_auth(writer_key))
    out = response.json()
    assert out["accepted"] == 1, out
    assert {e["index"] for e in out["rejected"]} == {1, 2}
    assert dbq("SELECT value_numeric FROM scores")[1] == [(0.9,)]
    everything_bad = httpx.post(
        server.url + "/v1/generations", json=[{"nope": 1}], headers=_auth(writer_key)
    )
    assert everything_bad.status_code == 422


def test_health_and_readiness(server):
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(server.url + "/readyz").status_code == 200


def test_sheds_load_with_503_and_retry_after(lake, project, database_url):
    import threading

    import psycopg

    key = project.keys.create("writer").secret
    body = _json_body(
        _json_span(
            TRACE,
            "ddddddddddddddd1",
            attributes=_attrs({"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}),
        )
    )
    second = _json_body(
        _json_span(
            TRACE,
            "ddddddddddddddd2",
            attributes=_attrs({"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}),
        )
    )
    config = ServerConfig(max_pending_items=1)
    with (
        ThreadedServer(lake, config) as server,
        psycopg.connect(database_url.replace("+psycopg", "")) as blocker,
    ):
        blocker.execute("LOCK TABLE generations IN EXCLUSIVE MODE")  # the next flush waits
        first: dict = {}
        waiting = threading.Thread(
            target=lambda: first.setdefault(
                "r",
                httpx.post(server.url + "/v1/traces", json=body, headers=_auth(key), timeout=60),
            )
        )
        waiting.start()
        for _ in range(200):  # until the first request is waiting on its flush
            if any(i.pending for i in server.state.ingestors.values()):
                break
            time.sleep(0.02)
        shed = httpx.post(server.url + "/v1/traces", json=second, headers=_auth(key))
        assert shed.status_code == 503 and int(shed.headers["Retry-After"]) >= 1
        blocker.rollback()  # the lock goes; the first request's flush commits
        waiting.join(60)
    assert first["r"].status_code == 200
    stored = project.query("SELECT metadata->'otel'->>'span_id' FROM generations")[1]
    assert stored == [("ddddddddddddddd1",)]


def test_a_child_whose_clock_ran_behind_its_parent_is_still_chained(server, project, writer_key):
    parent = _json_span(
        TRACE,
        "fffffffffffffff1",
        startTimeUnixNano=str(START + 5_000_000),
        attributes=_attrs({"gen_ai.operation.name": "chat", "gen_ai.request.model": "planner"}),
    )
    child = _json_span(
        TRACE,
        "fffffffffffffff2",
        parentSpanId="fffffffffffffff1",
        attributes=_attrs({"gen_ai.operation.name": "chat", "gen_ai.request.model": "worker"}),
    )
    response = httpx.post(
        server.url + "/v1/traces", json=_json_body(child, parent), headers=_auth(writer_key)
    )
    assert response.status_code == 200 and response.json() == {}
    stored = project.generation(span_generation_id(project.id, TRACE, "fffffffffffffff2", START))
    assert stored.parent_id == span_generation_id(
        project.id, TRACE, "fffffffffffffff1", START + 5_000_000
    )


def test_revoking_a_key_removes_its_own_principal(project, dbq):
    made = project.keys.create("writer")
    own = f"key:{made.key.prefix}"
    assert dbq("SELECT count(*) FROM project_members WHERE principal = :p", {"p": own})[1] == [(1,)]
    revoked = project.keys.revoke(made.secret)
    assert revoked.revoked and revoked.revoked_at is not None
    assert dbq("SELECT count(*) FROM project_members WHERE principal = :p", {"p": own})[1] == [(0,)]
    actions = [(e.action, e.details.get("api_key")) for e in project.audit_log()]
    assert ("grant", made.key.prefix) in actions and ("revoke", made.key.prefix) in actions
