"""Bad input gets a clear error naming the field, and nothing else is lost."""

from __future__ import annotations

import datetime as dt

import pytest

from promptlake import ValidationError

GOOD = {"prompt": "What is 2 + 2?", "output": "4"}

BAD_CASES = [
    ({"prompt": "a\x00b"}, "prompt", "NUL byte at character 1"),
    ({"output": "fine\x00"}, "output", "NUL byte"),
    ({"output": "lone \udcff surrogate"}, "output", "not valid UTF-8"),
    ({"prompt": b"\xff\xfe bytes"}, "prompt", "not valid UTF-8 (byte 0)"),
    ({"latency_ms": float("nan")}, "latency_ms", "finite"),
    ({"latency_ms": float("inf")}, "latency_ms", "finite"),
    ({"latency_ms": -3}, "latency_ms", "negative"),
    ({"cost_usd": float("-inf")}, "cost_usd", "finite"),
    ({"prompt_tokens": -1}, "prompt_tokens", "negative"),
    ({"completion_tokens": 2.5}, "completion_tokens", "whole number"),
    ({"prompt_tokens": True}, "prompt_tokens", "whole number"),
    ({"origin": "imagined"}, "origin", "must be one of real, synthetic"),
    ({"origin": "synthetic"}, "generator", "lineage"),
    ({"origin": "synthetic", "generator": "  "}, "generator", "lineage"),
    ({"generator": "gpt-4"}, "generator", "only synthetic rows"),
    ({"metadata": {"when": dt.datetime(2024, 1, 1)}}, "metadata", "$.when is a datetime"),
    ({"metadata": {"score": float("nan")}}, "metadata", "$.score is nan"),
    ({"metadata": {1: "x"}}, "metadata", "non-text key"),
    ({"metadata": ["not", "an", "object"]}, "metadata", "must be a JSON object"),
    ({"metadata": {"k": "v\x00"}}, "metadata $.k", "NUL byte"),
    ({"params": "temperature=1"}, "params", "JSON object"),
    ({"messages": []}, "messages", "non-empty list"),
    ({"messages": [{"content": "no role"}]}, "messages[0].role", "required"),
    ({"messages": ["just text"]}, "messages[0]", "role and content"),
    ({"tags": "one-string"}, "tags", "list of strings"),
    ({"status": "meh"}, "status", "one of ok, error"),
    ({"created_at": "yesterday"}, "created_at", "ISO 8601"),
    ({"parent": "not-a-uuid"}, "parent", "UUID"),
    ({"temperature": 0.3}, "temperature", "not a field"),
]


@pytest.mark.parametrize(("change", "field", "reason"), BAD_CASES)
def test_single_log_rejects_with_field_and_reason(project, change, field, reason) -> None:
    fields = {**GOOD, **change}
    with pytest.raises(ValidationError) as caught:
        project.log(**fields)
    problem = caught.value.problems[0]
    assert problem.field == field
    assert reason in problem.reason
    _, rows = project.query("SELECT count(*) FROM generations")
    assert rows == [(0,)]


def test_missing_input_and_all_problems_reported_together(project) -> None:
    with pytest.raises(ValidationError) as caught:
        project.log(output="o", latency_ms=-1, origin="x")
    fields = {p.field for p in caught.value.problems}
    assert fields == {"prompt", "latency_ms", "origin"}


def test_oversized_text_uses_configured_limit(database_url, monkeypatch) -> None:
    import promptlake

    monkeypatch.setenv("PROMPTLAKE_DATABASE_URL", database_url)
    monkeypatch.setenv("PROMPTLAKE_MAX_TEXT_BYTES", "1000")
    with promptlake.connect() as lake:
        proj = lake.project("p")
        proj.log(prompt="é" * 500, output="ok")  # exactly 1000 bytes
        with pytest.raises(ValidationError, match="1002 bytes, over the limit of 1000"):
            proj.log(prompt="é" * 501, output="ok")
        with pytest.raises(ValidationError, match="metadata"):
            proj.log(prompt="p", output="o", metadata={"blob": "x" * 2000})


@pytest.mark.parametrize(("change", "field", "reason"), BAD_CASES)
def test_writer_keeps_the_good_records_around_a_bad_one(project, change, field, reason) -> None:
    with project.writer(batch_size=100) as w:
        w.log(prompt="before", output="1")
        bad_id = w.log(**{**GOOD, **change})
        w.log(prompt="after", output="2")
    assert bad_id is None
    assert w.stats.stored == 2
    [rejection] = w.rejected
    assert rejection.item == "record 2"
    assert rejection.problems[0].field == field and reason in rejection.problems[0].reason
    _, rows = project.query("SELECT input_text FROM generations ORDER BY input_text")
    assert rows == [("after",), ("before",)]


def test_strict_writer_raises_with_the_item(project) -> None:
    with project.writer(strict=True) as w, pytest.raises(ValidationError, match="record 1: prompt"):
        w.log(prompt="\x00", output="o")


def test_score_and_session_inputs_are_checked(project) -> None:
    g = project.log(**GOOD)
    with pytest.raises(ValidationError, match="name: must not be empty"):
        project.score(g, " ", 1.0)
    with pytest.raises(ValidationError, match="comment: contains a NUL"):
        project.score(g, "ok", 1.0, comment="\x00")
    with pytest.raises(ValidationError, match="end_user_id"):
        project.session(end_user_id="u\x00")
    with pytest.raises(ValidationError, match="project"):
        project.lake.project("")
