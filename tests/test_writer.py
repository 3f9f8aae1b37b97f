"""The bulk writer: COPY batches, idempotent retries, references checked per record."""

from __future__ import annotations

import uuid

import pytest

from promptlake.ids import uuid7


def _count(project, table: str = "generations") -> int:
    _, rows = project.query(
        f"SELECT count(*) FROM {table} WHERE project_id = :p", {"p": project.id}
    )
    return rows[0][0]


def _records(n: int, session=None) -> list[dict]:
    return [
        {
            "id": uuid7(),
            "prompt": f"question {i}",
            "output": f"answer {i}",
            "model": f"m{i % 3}",
            "prompt_tokens": i,
            "completion_tokens": 2 * i,
            "latency_ms": 10.5,
            "session": session,
        }
        for i in range(n)
    ]


def test_batches_are_flushed_and_counted(project) -> None:
    with project.writer(batch_size=100) as w:
        sid = w.session(end_user_id="bulk-user")
        for record in _records(250, session=sid):
            w.log(**record)
        assert _count(project) == 200  # two full batches already flushed
    assert w.stats.stored == 250 and w.stats.rejected == [] and w.stats.duplicates == 0
    _, rows = project.query(
        "SELECT min(seq), max(seq), count(DISTINCT model_id), sum(total_tokens)"
        " FROM generations WHERE session_id = :s",
        {"s": sid},
    )
    assert rows == [(0, 249, 3, sum(3 * i for i in range(250)))]


def test_retrying_a_batch_stores_nothing_twice(project) -> None:
    records = _records(500)
    with project.writer() as w:
        for r in records:
            w.log(**r)
    # the retry overlaps: 300 already stored, 200 new
    retry = records[200:] + _records(200)
    with project.writer() as again:
        for r in retry:
            again.log(**r)
    assert (again.stats.stored, again.stats.duplicates) == (200, 300)
    assert _count(project) == 700


def test_parents_across_batches_and_in_the_same_batch(project) -> None:
    with project.writer(batch_size=3) as w:
        previous = None
        for i in range(10):
            previous = w.log(prompt=f"turn {i}", output="ok", parent=previous)
    assert w.stats.stored == 10
    _, rows = project.query(
        "WITH RECURSIVE c AS (SELECT id, 1 AS depth FROM generations WHERE parent_id IS NULL"
        " UNION ALL SELECT g.id, c.depth + 1 FROM generations g JOIN c ON g.parent_id = c.id)"
        " SELECT max(depth) FROM c"
    )
    assert rows == [(10,)]


def test_unknown_parent_and_its_descendants_are_rejected(lake) -> None:
    other = lake.project("other").log(prompt="other project", output="x")
    project = lake.project("mine")
    with project.writer(batch_size=100) as w:
        orphan = w.log(prompt="a", output="b", parent=uuid.uuid4(), item="line 1")
        w.log(prompt="c", output="d", parent=orphan, item="line 2")
        w.log(prompt="e", output="f", parent=other.id, item="line 3")
        w.log(prompt="g", output="h", item="line 4")
    assert w.stats.stored == 1
    reasons = {r.item: str(r) for r in w.rejected}
    assert "is not a generation of project 'mine'" in reasons["line 1"]
    assert "was rejected in this batch" in reasons["line 2"]
    assert "is not a generation of project 'mine'" in reasons["line 3"]


def test_unknown_session_prompt_version_and_run_are_rejected(project) -> None:
    with project.writer() as w:
        w.log(prompt="a", output="b", session=uuid.uuid4())
        w.log(prompt="a", output="b", prompt_version=uuid.uuid4())
        w.log(prompt="a", output="b", run=uuid.uuid4())
    assert [r.problems[0].field for r in w.rejected] == ["session", "prompt_version", "run"]
    assert _count(project) == 0


def test_one_bad_record_in_a_thousand(project) -> None:
    records = _records(1000)
    records[517]["latency_ms"] = float("nan")
    with project.writer(batch_size=1000) as w:
        for r in records:
            w.log(**r)
    assert w.stats.stored == 999
    assert [(r.item, r.problems[0].field) for r in w.rejected] == [("record 518", "latency_ms")]


def test_database_refusal_is_isolated_by_bisection(project, database_url) -> None:
    """A row that passes validation but breaks a database rule costs only itself."""
    import psycopg

    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        conn.execute(
            "ALTER TABLE generations ADD CONSTRAINT ck_generations_test_no_forbidden"
            " CHECK (output <> 'forbidden')"
        )
    with project.writer(batch_size=64) as w:
        for i in range(64):
            w.log(prompt=f"q{i}", output="forbidden" if i in (5, 40) else "fine")
    assert w.stats.stored == 62
    assert sorted(r.item for r in w.rejected) == ["record 41", "record 6"]
    assert all("refused by the database" in str(r) for r in w.rejected)


def test_scores_in_bulk_and_for_unknown_generations(project) -> None:
    with project.writer() as w:
        gid = w.log(prompt="p", output="o")
        w.score(gid, "helpful", 1.0, source="model", id=uuid.UUID(int=1))
        w.score(gid, "helpful", 1.0, source="model", id=uuid.UUID(int=1))  # same id twice
        w.score(uuid.uuid4(), "helpful", 0.0, item="score line 3")
        w.score(gid, "helpful", float("nan"), item="score line 4")
    assert w.stats.scores_stored == 1
    assert sorted(r.item for r in w.rejected) == ["score line 3", "score line 4"]
    assert _count(project, "scores") == 1


def test_records_logged_before_an_exception_are_still_written(project) -> None:
    with pytest.raises(RuntimeError), project.writer() as w:
        w.log(prompt="kept", output="yes")
        raise RuntimeError("caller failed")
    assert _count(project) == 1


def test_chunked_flush_stores_what_one_statement_stores(lake, database_url, monkeypatch) -> None:
    """A flush longer than STAGE_CHUNK anonymizes and hashes its rows chunk by chunk while
    the chunk before is inserted: the same rows, text, hashes, findings, duplicates and
    rejections as one COPY and INSERT of the whole batch."""
    import psycopg

    from promptlake.ingest import writer as writer_module

    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        conn.execute(
            "ALTER TABLE generations ADD CONSTRAINT ck_generations_test_no_forbidden"
            " CHECK (output <> 'forbidden')"
        )
    records = [
        {
            "id": uuid7(),
            "prompt": f"mail user{i}@example.com, card 4111 1111 1111 1111" if i % 3 == 0 else "q",
            "output": "forbidden" if i == 23 else f"a{i}",
            "model": "m",
        }
        for i in range(50)
    ]
    results = {}
    for chunk in (1000, 7):
        monkeypatch.setattr(writer_module, "STAGE_CHUNK", chunk)
        project = lake.project(f"chunk-{chunk}")
        project.set_pii_policy({"EMAIL": "redact", "CREDIT_CARD": "redact"})
        with project.writer(batch_size=30) as first:
            for record in records[:20]:
                first.log(**record)
        with project.writer(batch_size=40) as w:  # 20 stored before, one refused
            for record in records:
                w.log(**record)
        _, rows = project.query(
            "SELECT id, input_text, output, input_hash, content_hash, pii_policy_version"
            " FROM generations WHERE project_id = :p ORDER BY id",
            {"p": project.id},
        )
        _, findings = project.query(
            "SELECT generation_id, field, entity_type, start_offset, end_offset"
            " FROM pii_findings WHERE project_id = :p ORDER BY 1, 2, 4",
            {"p": project.id},
        )
        stats = (w.stats.stored, w.stats.duplicates, [r.item for r in w.rejected])
        results[chunk] = ([tuple(r) for r in rows], [tuple(f) for f in findings], stats)
    assert results[7] == results[1000]
    rows, findings, stats = results[7]
    assert stats == (29, 20, ["record 24"])
    assert len(rows) == 49 and not any("@" in row[1] for row in rows)
    assert len(findings) == 2 * 17
