"""The Python API as the README shows it: sessions, chains, scores, prompts, tracing."""

from __future__ import annotations

import asyncio
import decimal
import uuid

import pytest

import promptlake
from promptlake import Generation, NotFoundError, ValidationError


def test_issue_example_end_to_end(lake: promptlake.Lake) -> None:
    proj = lake.project("support-bot")
    assert lake.project("support-bot") is proj  # created once, then reused
    with proj.session(end_user_id="u-42", tags=["beta"]) as s:
        g1 = s.log(
            prompt="What is RLS?",
            output="Row-level security.",
            model="gpt-4o",
            params={"temperature": 0.2},
            prompt_tokens=12,
            completion_tokens=80,
            latency_ms=950,
        )
        g2 = s.log(
            messages=[
                {"role": "user", "content": "What is RLS?"},
                {"role": "assistant", "content": "Row-level security."},
                {"role": "user", "content": "In Postgres?"},
            ],
            output="Policies on tables.",
            model="gpt-4o",
            parent=g1,
        )
    score = proj.score(g2, "helpfulness", 0.8, source="human", author="alice")
    synthetic = proj.log(prompt="Q", output="A", origin="synthetic", generator="llama-3-70b")

    assert isinstance(g1, Generation) and isinstance(g1.id, uuid.UUID)
    assert (g1.seq, g2.seq) == (0, 1)
    assert g2.parent_id == g1.id and g2.session_id == g1.session_id == s.id
    assert g1.total_tokens == 92
    assert score.value == 0.8 and score.data_type == "numeric" and score.author == "alice"
    assert synthetic.origin == "synthetic" and synthetic.generator == "llama-3-70b"

    stored = proj.generation(g1.id)
    assert stored.model == "gpt-4o" and stored.params == {"temperature": 0.2}
    assert stored.latency_ms == 950 and stored.content_hash == g1.content_hash
    assert [g.id for g in proj.history(s.id)] == [g1.id, g2.id]
    _, rows = proj.query(
        "SELECT end_user_id, tags, ended_at IS NOT NULL FROM sessions WHERE id = :id", {"id": s.id}
    )
    assert rows == [("u-42", ["beta"], True)]


def test_client_supplied_id_makes_logging_idempotent(project) -> None:
    gid = uuid.uuid4()
    first = project.log(id=gid, prompt="p", output="o", cost_usd=0.0012)
    again = project.log(id=gid, prompt="p", output="o", cost_usd=0.0012)
    assert first.id == again.id == gid
    _, rows = project.query("SELECT count(*), max(cost_usd) FROM generations")
    assert rows == [(1, decimal.Decimal("0.00120000"))]


def test_resumed_session_continues_its_positions(project) -> None:
    with project.session() as s:
        s.log(prompt="1", output="a")
    resumed = project.session(id=s.id)
    assert resumed.log(prompt="2", output="b").seq == 1


def test_parent_from_another_project_is_rejected(lake, dbq) -> None:
    other = lake.project("other").log(prompt="x", output="y")
    with pytest.raises(ValidationError) as caught:
        lake.project("mine").log(prompt="a", output="b", parent=other)
    assert caught.value.field == "parent"
    assert str(other.id) in str(caught.value)
    _, rows = dbq("SELECT count(*) FROM generations")
    assert rows == [(1,)]


def test_scores_of_each_type_and_bad_scores(project) -> None:
    g = project.log(prompt="p", output="o")
    assert project.score(g, "correct", True, source="model").data_type == "boolean"
    assert project.score(g.id, "tone", "polite", source="user").value == "polite"
    assert project.score(str(g.id), "stars", 4, source="user").value == 4.0
    for value, field in [(float("nan"), "value"), (float("inf"), "value"), ([1], "value")]:
        with pytest.raises(ValidationError) as caught:
            project.score(g, "x", value)
        assert caught.value.field == field
    with pytest.raises(ValidationError, match="source"):
        project.score(g, "x", 1.0, source="oracle")
    with pytest.raises(ValidationError, match="generation"):
        project.score(uuid.uuid4(), "x", 1.0)
    _, rows = project.query("SELECT count(*) FROM scores")
    assert rows == [(3,)]


def test_prompt_registry_versions_and_labels(project) -> None:
    v1 = project.prompts.register("summarize", "Summarize: {text}", labels=["production"])
    same = project.prompts.register("summarize", "Summarize: {text}")
    v2 = project.prompts.register("summarize", "Summarize in {n} words: {text}")
    assert (v1.version, same.id, v2.version) == (1, v1.id, 2)
    assert v2.variables == ("n", "text")
    production = project.prompts.get("summarize", label="production")
    assert production.id == v1.id and production.render(text="abc") == "Summarize: abc"
    assert project.prompts.get("summarize").id == v2.id  # latest by default
    moved = project.prompts.set_label("summarize", "production", 2)
    assert moved.labels == ("production",)
    assert project.prompts.get("summarize", label="production").version == 2
    assert [v.version for v in project.prompts.versions("summarize")] == [1, 2]
    with pytest.raises(ValidationError, match="n: has no value"):
        v2.render(text="x")
    with pytest.raises(ValidationError, match="extra: is not a variable"):
        v1.render(text="x", extra=1)
    with pytest.raises(NotFoundError):
        project.prompts.get("summarize", label="staging")
    g = project.log(prompt=v1.render(text="t"), output="o", prompt_version=v1)
    assert project.generation(g.id).prompt_version_id == v1.id


def test_trace_logs_calls_errors_and_coroutines(project) -> None:
    @project.trace(model="my-model")
    def answer(question: str) -> str:
        if question == "boom":
            raise RuntimeError("model unavailable")
        return question.upper()

    @project.trace(name="async-step")
    async def step(x: int, y: int = 2) -> dict:
        return {"sum": x + y}

    assert answer("hello") == "HELLO"
    with pytest.raises(RuntimeError):
        answer("boom")
    assert asyncio.run(step(1)) == {"sum": 3}
    _, rows = project.query(
        "SELECT g.input_text, g.output, g.status, g.error, g.name, m.name, g.latency_ms >= 0"
        " FROM generations g LEFT JOIN models m ON m.id = g.model_id ORDER BY g.created_at"
    )
    assert rows[0] == (
        "hello",
        "HELLO",
        "ok",
        None,
        "test_trace_logs_calls_errors_and_coroutines.<locals>.answer",
        "my-model",
        True,
    )
    assert rows[1][2:4] == ("error", "RuntimeError: model unavailable")
    assert rows[2][:2] == ('{"x": 1}', '{"sum": 3}') and rows[2][4] == "async-step"


def test_settings_are_read_at_call_time(database_url, monkeypatch) -> None:
    monkeypatch.setenv("PROMPTLAKE_DATABASE_URL", database_url)
    monkeypatch.setenv("PROMPTLAKE_MAX_TEXT_BYTES", "10")
    with promptlake.connect() as lake, pytest.raises(ValidationError, match="over the limit"):
        lake.project("p").log(prompt="x" * 11, output="o")
    monkeypatch.setenv("PROMPTLAKE_MAX_TEXT_BYTES", "ten")
    with pytest.raises(promptlake.ConfigurationError, match="PROMPTLAKE_MAX_TEXT_BYTES"):
        promptlake.connect()


def test_unknown_project_without_create(lake) -> None:
    with pytest.raises(NotFoundError, match="no project named"):
        lake.project("nope", create=False)
    assert lake.projects() == []


def test_attachments_are_stored_with_their_hash(project) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    g = project.log(
        prompt="describe",
        output="a picture",
        attachments=[
            {"kind": "image", "mime_type": "image/png", "data": png},
            {"kind": "audio", "mime_type": "audio/wav", "uri": "s3://b/k.wav"},
        ],
    )
    _, rows = project.query(
        "SELECT kind, size_bytes, encode(sha256, 'hex'), data IS NOT NULL, uri FROM attachments"
        " WHERE generation_id = :g ORDER BY kind",
        {"g": g.id},
    )
    import hashlib

    assert rows == [
        ("audio", None, None, False, "s3://b/k.wav"),
        ("image", len(png), hashlib.sha256(png).hexdigest(), True, None),
    ]
