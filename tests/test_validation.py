"""Bad input gets a clear error naming the field, and nothing else is lost."""

from __future__ import annotations

import datetime as dt

import pytest

from promptlake import ValidationError

GOOD = {"prompt": "What is 2 + 2?", "output": "4"}


def nested(levels: int) -> dict:
    """``{"a": {"a": ... {}}}``: ``levels`` objects inside one another."""
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


CYCLE: dict = {}
CYCLE["self"] = CYCLE
PLUS_5 = dt.timezone(dt.timedelta(hours=5))
MINUS_5 = dt.timezone(dt.timedelta(hours=-5))

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
    # nesting, numbers and times past what the store (or Python) can hold
    ({"metadata": nested(10_000)}, "metadata", "nested deeper than 100 levels"),
    ({"params": nested(101)}, "params", "nested deeper than 100 levels"),
    ({"lineage": {"steps": [nested(100)]}}, "lineage", "$.steps[0].a"),
    ({"messages": [{"role": "user", "content": nested(150)}]}, "messages", "nested deeper"),
    ({"metadata": CYCLE}, "metadata", "contains itself"),
    ({"metadata": {"n": 10**1001}}, "metadata", "$.n is an integer of more than 1000 digits"),
    ({"metadata": {("a", "b"): 1}}, "metadata", "non-text key ('a', 'b')"),
    ({"metadata": {"\udcff": 1}}, "metadata $ key", "lone surrogate"),
    ({"created_at": 1e15}, "created_at", "out of range"),
    ({"created_at": 1.7e12}, "created_at", "milliseconds? divide by 1000"),
    ({"created_at": -(10**20)}, "created_at", "years 1 to 9999"),
    ({"created_at": 10**5000}, "created_at", "an integer of 16610 bits"),
    ({"created_at": dt.datetime(1, 1, 1, tzinfo=PLUS_5)}, "created_at", "in UTC"),
    ({"created_at": dt.datetime(9999, 12, 31, 23, tzinfo=MINUS_5)}, "created_at", "in UTC"),
    ({"prompt_tokens": 10**5000}, "prompt_tokens", "too large"),
    ({"completion_tokens": 2**31}, "completion_tokens", "the limit is 2147483647"),
    ({"latency_ms": 10**400}, "latency_ms", "too large"),
    ({"cost_usd": 10**400}, "cost_usd", "too large"),
    ({"status": [nested(5000)]}, "status", "one of ok, error"),
    ({"parent": [nested(5000)]}, "parent", "UUID"),
    ({"messages": [[nested(5000)]]}, "messages[0]", "role and content"),
    ({"attachments": [{"uri": "s3://x", "role": 7}]}, "attachments[0].role", "must be text"),
    ({"attachments": [{"uri": "s3://x", "size_bytes": -1}]}, "attachments[0].size_bytes", "neg"),
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


def test_json_at_the_depth_limit_is_stored(project) -> None:
    g = project.log(**GOOD, metadata=nested(100), params={"n": 10**999, "x": [[[1.5]]]})
    _, rows = project.query(
        "SELECT jsonb_path_query_first(metadata, 'strict $.**{99}') IS NOT NULL,"
        " params->>'n' FROM generations WHERE id = :id",
        {"id": g.id},
    )
    assert rows == [(True, "1" + "0" * 999)]


def test_times_at_the_ends_of_the_range_are_stored(project) -> None:
    first = project.log(**GOOD, created_at=dt.datetime(1, 1, 1, tzinfo=MINUS_5))
    last = project.log(**GOOD, created_at="9999-12-31T23:59:59+00:00")
    _, rows = project.query(
        "SELECT extract(year FROM created_at AT TIME ZONE 'UTC')::int FROM generations"
        " WHERE id IN (:a, :b) ORDER BY created_at",
        {"a": first.id, "b": last.id},
    )
    assert rows == [(1,), (9999,)]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda p, g: p.session(metadata=nested(10_000)), "metadata: \\$.a.a"),
        (lambda p, g: p.session(tags=["ok", nested(5000)]), "tags\\[1\\]: must be text"),
        (lambda p, g: p.score(g, "x", 1, metadata=nested(10_000)), "metadata: .*nested deeper"),
        (lambda p, g: p.score(g, "x", 10**400), "value: must be a finite number"),
        (lambda p, g: p.score(g, "x", float("nan")), "value: must be a finite number, got nan"),
        (lambda p, g: p.score([nested(5000)], "x", 1), "generation: must be a UUID"),
        (lambda p, g: p.score(g, "x", 1, source=nested(5000)), "source: must be one of"),
        (lambda p, g: p.session(end_user_id="u", id=nested(5000)), "id: must be a UUID"),
    ],
)
def test_sessions_and_scores_refuse_what_cannot_be_stored(project, call, match) -> None:
    g = project.log(**GOOD)
    with pytest.raises(ValidationError, match=match):
        call(project, g)


def test_writer_sets_bad_sessions_and_scores_aside(project) -> None:
    with project.writer() as w:
        with pytest.raises(ValidationError, match=r"started_at: .* out of range"):
            w.session(started_at=1e15)
        with pytest.raises(ValidationError, match=r"metadata: .*nested deeper"):
            w.session(metadata=nested(10_000))
        gid = w.log(**GOOD)
        assert w.score(gid, "ok", 1.0) is not None
        assert w.score(gid, "big", 10**400) is None
        assert w.score([nested(5000)], "x", 1) is None
        assert w.score(gid, "meta", 1, metadata=nested(10_000)) is None
    assert w.stats.stored == 1 and w.stats.scores_stored == 1
    reasons = [str(p) for r in w.rejected for p in r.problems]
    assert len(reasons) == 3 and "value: must be a finite number" in reasons[0]
    assert w.rejected[1].item.startswith("score for [{'a': {")  # a short label, not a crash


def _deep_json(levels: int) -> str:
    return '{"a": ' * levels + "1" + "}" * levels


def test_import_sets_deep_and_huge_lines_aside_and_keeps_the_rest(project, tmp_path) -> None:
    """One line nested 10,000 deep (Python cannot read it), one nested 150 deep (readable,
    over the limit), one with a 5,000-digit number: each rejected with its line, the
    good lines around them stored."""
    turn = (
        '{{"conversations": [{{"from": "human", "value": "{q}"}},'
        ' {{"from": "gpt", "value": "a"}}]{extra}}}'
    )
    lines = [
        turn.format(q="first", extra=""),
        _deep_json(10_000),
        turn.format(q="deep", extra=', "meta": ' + _deep_json(150)),
        turn.format(q="digits", extra=', "n": ' + "7" * 5_000),
        turn.format(q="last", extra=""),
    ]
    path = tmp_path / "conversations.jsonl"
    path.write_text("\n".join(lines) + "\n")
    report = project.import_file(path, "sharegpt")
    assert report.stored == 2
    reasons = dict(report.rejected)
    assert list(reasons) == ["line 2", "line 3 (turn 1)", "line 4"]
    assert reasons["line 2"] == "json: is nested too deeply to read (about 1000 levels or more)"
    assert reasons["line 3 (turn 1)"].startswith("metadata: $.meta.a.a")
    assert "nested deeper than 100 levels" in reasons["line 3 (turn 1)"]
    assert reasons["line 4"].startswith("json: cannot be read: Exceeds the limit (4300 digits)")
    _, stored = project.query("SELECT input_messages->0->>'content' FROM generations ORDER BY 1")
    assert stored == [("first",), ("last",)]


def test_json_array_reports_what_follows_it(project, tmp_path) -> None:
    """A JSONL file whose first line is an array is read as a JSON array: the lines after
    it are reported as unread, not silently dropped."""
    path = tmp_path / "looks-like-an-array.jsonl"
    path.write_text('[{"instruction": "i", "output": "o"}]\n{"instruction": "j", "output": "p"}\n')
    report = project.import_file(path, "alpaca")
    assert report.stored == 1
    assert report.rejected == [
        (
            "item 1",
            "json: data follows the array (a JSONL file?); the rest of the file cannot be read",
        )
    ]
