"""``promptlake.instrument``: the real ``openai`` package against a fake server on
127.0.0.1; what the caller gets is compared with an uninstrumented client's answer, and
the stored generations with what the caller got."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

import promptlake

openai = pytest.importorskip("openai")

from fake_openai import FakeOpenAI  # noqa: E402

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
RESPONSE_TOOLS = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    yield fake
    fake.close()


def _client(server: FakeOpenAI, cls=None):
    return (cls or openai.OpenAI)(base_url=server.base_url, api_key="test", max_retries=0)


def _stored(project) -> list[promptlake.Generation]:
    _, rows = project.query("SELECT id FROM generations ORDER BY created_at, id")
    return [project.generation(r[0]) for r in rows]


def test_chat_non_streaming_unchanged_and_stored(server, project) -> None:
    plain = _client(server)
    client = _client(server)
    handle = promptlake.instrument(client, project, tags=["t1"])
    kwargs = dict(
        model="gpt-test",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello world"},
        ],
        temperature=0.3,
        seed=7,
    )
    got = client.chat.completions.create(**kwargs)
    expected = plain.chat.completions.create(**kwargs)
    assert type(got) is type(expected)
    assert got.model_dump() == expected.model_dump()
    (g,) = _stored(project)
    assert g.output == got.choices[0].message.content == "echo: hello world"
    assert g.model == got.model == "gpt-test-2024"
    assert g.input_messages == kwargs["messages"]
    assert g.params == {"temperature": 0.3, "seed": 7}
    assert g.prompt_tokens == got.usage.prompt_tokens
    assert g.completion_tokens == got.usage.completion_tokens
    assert g.metadata["usage"] == {
        "total_tokens": got.usage.total_tokens,
        "cached_tokens": 3,
        "reasoning_tokens": 2,
    }
    assert g.metadata["response_id"] == got.id
    assert g.metadata["finish_reasons"] == ["stop"]
    assert g.status == "ok" and g.latency_ms > 0 and g.tags == ["t1"]
    assert g.name == "openai.chat.completions"
    assert handle.logged == 1 and handle.failures == 0


def test_chat_tool_calls(server, project) -> None:
    client = _client(server)
    promptlake.instrument(client, project)
    got = client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "weather in Paris?"}], tools=TOOLS
    )
    call = got.choices[0].message.tool_calls[0]
    (g,) = _stored(project)
    assert g.output is None and got.choices[0].message.content is None
    assert g.metadata["tool_calls"] == [
        {
            "id": call.id,
            "type": "function",
            "function": {"name": "get_weather", "arguments": call.function.arguments},
        }
    ]
    assert g.metadata["finish_reasons"] == ["tool_calls"]
    assert g.params["tools"] == TOOLS
    # the tool's answer goes back as the next turn: stored with its tool message
    follow = [
        {"role": "user", "content": "weather in Paris?"},
        got.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    client.chat.completions.create(model="gpt-test", messages=follow)
    second = _stored(project)[1]
    assert [m["role"] for m in second.input_messages] == ["user", "assistant", "tool"]
    assert second.input_messages[1]["tool_calls"][0]["id"] == call.id


def test_chat_streaming_same_chunks_logged_at_end(server, project) -> None:
    plain = _client(server)
    client = _client(server)
    promptlake.instrument(client, project)
    kwargs = dict(
        model="gpt-test",
        messages=[{"role": "user", "content": "stream this answer"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    stream = client.chat.completions.create(**kwargs)
    assert isinstance(stream, openai.Stream)
    first = next(stream)
    assert _stored(project) == []  # nothing before the stream ends
    chunks = [first, *stream]
    expected = list(plain.chat.completions.create(**kwargs))
    assert [c.model_dump() for c in chunks] == [c.model_dump() for c in expected]
    (g,) = _stored(project)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert g.output == text == "echo: stream this answer"
    usage = chunks[-1].usage
    assert (g.prompt_tokens, g.completion_tokens) == (usage.prompt_tokens, usage.completion_tokens)
    assert g.metadata["stream"] is True and g.metadata["chunks"] == len(chunks)
    assert 0 <= g.metadata["time_to_first_token_ms"] <= g.latency_ms
    assert g.params == {"stream_options": {"include_usage": True}, "stream": True}


def test_chat_streaming_tool_calls_and_early_close(server, project) -> None:
    client = _client(server)
    promptlake.instrument(client, project)
    with client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "weather?"}],
        tools=TOOLS,
        stream=True,
    ) as stream:
        pieces = [c.choices[0].delta.tool_calls for c in stream if c.choices]
    arguments = "".join(p[0].function.arguments or "" for p in pieces if p)
    (g,) = _stored(project)
    assert g.metadata["tool_calls"] == [
        {
            "id": "call_abc123",
            "type": "function",
            "function": {"name": "get_weather", "arguments": arguments},
        }
    ]
    assert arguments == '{"city": "Paris"}'
    # a stream the caller stops reading: logged once, at close, with what was read
    stream = client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "a long answer to cut"}],
        stream=True,
    )
    read = [next(stream), next(stream)]
    stream.close()
    stream.close()
    partial = _stored(project)[1]
    assert partial.output == read[1].choices[0].delta.content
    assert partial.metadata["closed_early"] is True
    assert len(_stored(project)) == 2


@pytest.mark.parametrize("status, error", [(500, "InternalServerError"), (429, "RateLimitError")])
def test_api_errors_logged_and_reraised_unchanged(server, project, status, error) -> None:
    client = _client(server)
    promptlake.instrument(client, project)
    with pytest.raises(getattr(openai, error)) as caught:
        client.chat.completions.create(
            model=f"fail-{status}", messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(getattr(openai, error)) as plain:
        _client(server).chat.completions.create(
            model=f"fail-{status}", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.status_code == plain.value.status_code == status
    assert str(caught.value) == str(plain.value)
    assert caught.value.body == plain.value.body
    (g,) = _stored(project)
    assert g.status == "error" and error in g.error and f"fake failure {status}" in g.error
    assert g.metadata["status_code"] == status and g.metadata["error_type"] == error


def test_responses_api(server, project) -> None:
    plain = _client(server)
    client = _client(server)
    promptlake.instrument(client, project)
    got = client.responses.create(
        model="gpt-r", input="hi there", instructions="be nice", max_output_tokens=50
    )
    assert (
        got.model_dump()
        == plain.responses.create(
            model="gpt-r", input="hi there", instructions="be nice", max_output_tokens=50
        ).model_dump()
    )
    calls = client.responses.create(
        model="gpt-r", tools=RESPONSE_TOOLS, input=[{"role": "user", "content": "weather?"}]
    )
    events = list(client.responses.create(model="gpt-r", input="stream it", stream=True))
    first, tool, streamed = _stored(project)
    assert first.output == got.output_text == "echo: hi there"
    assert first.input_messages == [
        {"role": "system", "content": "be nice"},
        {"role": "user", "content": "hi there"},
    ]
    assert first.params == {"max_output_tokens": 50}
    assert first.prompt_tokens == got.usage.input_tokens
    assert first.metadata["usage"]["cached_tokens"] == 4
    assert first.metadata["usage"]["reasoning_tokens"] == 6
    assert first.name == "openai.responses"
    assert tool.metadata["tool_calls"][0]["call_id"] == calls.output[0].call_id
    final = events[-1].response
    assert streamed.output == final.output_text == "echo: stream it"
    assert streamed.completion_tokens == final.usage.output_tokens
    assert streamed.metadata["chunks"] == len(events)


def test_async_client_into_background_logger(server, project) -> None:
    async def main() -> tuple:
        client = _client(server, openai.AsyncOpenAI)
        with project.logger() as logger:
            promptlake.instrument(client, logger)
            done = await client.chat.completions.create(
                model="gpt-a", messages=[{"role": "user", "content": "async hello"}]
            )
            stream = await client.chat.completions.create(
                model="gpt-a", messages=[{"role": "user", "content": "async stream"}], stream=True
            )
            assert isinstance(stream, openai.AsyncStream)
            chunks = [c async for c in stream]
            events = [
                e
                async for e in await client.responses.create(
                    model="gpt-a", input="async responses", stream=True
                )
            ]
            with pytest.raises(openai.InternalServerError):
                await client.responses.create(model="fail-500", input="x")
        return done, chunks, events

    done, chunks, events = asyncio.run(main())
    stored = {g.input_messages[-1]["content"]: g for g in _stored(project)}
    assert stored["async hello"].output == done.choices[0].message.content
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert stored["async stream"].output == text == "echo: async stream"
    assert stored["async responses"].output == events[-1].response.output_text
    assert stored["x"].status == "error" and stored["x"].metadata["status_code"] == 500


def test_module_instrumentation_and_uninstrument(server, project) -> None:
    handle = promptlake.instrument(openai, project, name="app.chat")
    try:
        client = _client(server)  # made after instrument: covered too
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "a"}])
    finally:
        handle.uninstrument()
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "b"}])
    (g,) = _stored(project)
    assert g.name == "app.chat" and g.input_messages[0]["content"] == "a"
    assert not hasattr(openai.resources.chat.completions.Completions.create, "__promptlake__")


def test_logging_failure_never_reaches_the_caller(server, project, caplog) -> None:
    class Broken:
        def log(self, **fields):
            raise promptlake.DatabaseUnavailableError("down")

    client = _client(server)
    handle = promptlake.instrument(client, Broken())
    got = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "a"}])
    assert got.choices[0].message.content == "echo: a"
    assert handle.failures == 1 and "could not log" in caplog.text


def test_bad_arguments(project) -> None:
    with pytest.raises(promptlake.ValidationError, match="client"):
        promptlake.instrument(object(), project)
    with pytest.raises(promptlake.ValidationError, match="project"):
        promptlake.instrument(openai.OpenAI(api_key="x"), object())
