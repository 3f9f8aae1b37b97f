"""The analytics views of migration 0005, queried through row-level security
(``proj.query`` / ``proj.sql``) on a small project whose every number is known."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from pathlib import Path

import pytest

import promptlake

D1 = dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.UTC)
D2 = dt.datetime(2026, 1, 6, 9, 0, tzinfo=dt.UTC)
ANALYTICS_VIEWS = ("usage_daily", "score_trends", "session_stats", "duplicate_rates",
                   "synthetic_share", "pii_rates", "run_metrics", "dataset_lineage")  # fmt: skip


@pytest.fixture
def filled(lake, dbq):
    """Six generations over two days and two models, with sessions, prompt versions,
    scores, an error, exact duplicates, a synthetic row, PII and a run."""
    proj = lake.project("analytics")
    v1 = proj.prompts.register("qa", "Answer: {q}")
    v2 = proj.prompts.register("qa", "Answer briefly: {q}")
    run_id = uuid.uuid4()
    dbq("INSERT INTO runs (project_id, id, name) VALUES (:p, :r, 'nightly')",
        {"p": proj.id, "r": run_id})  # fmt: skip
    usage = {"prompt_tokens": 10, "model": "gpt-4o"}
    with proj.session(end_user_id="u1") as s:
        g1 = s.log(prompt="q1", output="a1", completion_tokens=20, cost_usd=0.01, latency_ms=100,
                   prompt_version=v1, run=run_id, created_at=D1, **usage)  # fmt: skip
        g2 = s.log(prompt="q2", output="a2", completion_tokens=20, cost_usd=0.01, latency_ms=200,
                   prompt_version=v1, run=run_id, created_at=D1 + dt.timedelta(seconds=30),
                   **usage)  # fmt: skip
        g3 = s.log(prompt="q1", output="a1", completion_tokens=0, cost_usd=0, latency_ms=300,
                   status="error", error="timeout", prompt_version=v2, run=run_id,
                   created_at=D1 + dt.timedelta(minutes=2), **usage)  # fmt: skip
    with proj.session(end_user_id="u2"):
        pass  # a session without generations
    g4 = proj.log(prompt="mail jane@example.com", output="ok", completion_tokens=20,
                  cost_usd=0.01, latency_ms=400, prompt_version=v2,
                  created_at=D1 + dt.timedelta(hours=1), **usage)  # fmt: skip
    proj.log(prompt="q1", output="a1", model="claude", prompt_tokens=5, completion_tokens=5,
             cost_usd=0.002, latency_ms=1000, origin="synthetic", generator="llama",
             created_at=D2)  # fmt: skip
    proj.log(prompt="q3", output="a3", model="claude", created_at=D2 + dt.timedelta(minutes=1))
    for g, value in ((g1, 0.8), (g2, 0.6), (g3, 0.2), (g4, 0.4)):
        proj.score(g, "helpfulness", value)
    proj.score(g1, "correct", True)
    proj.score(g2, "correct", False)
    version = uuid.uuid4()  # a dataset cut by one run and used by the nightly run
    dbq("INSERT INTO runs (project_id, id, name) VALUES (:p, :r, 'dataset:sft')",
        {"p": proj.id, "r": version})  # fmt: skip
    dbq("INSERT INTO dataset_versions (project_id, id, name, filter, row_count, path, md5,"
        " run_id) VALUES (:p, :v, 'sft', '{}', 4, 'data/split', 'abc.dir', :v)",
        {"p": proj.id, "v": version})  # fmt: skip
    dbq(
        "INSERT INTO run_datasets (project_id, run_id, dataset_version_id, context)"
        " VALUES (:p, :r, :v, 'evaluation')",
        {"p": proj.id, "r": run_id, "v": version},
    )
    # another project's rows must never show up
    other = lake.project("other")
    other.log(prompt="q1", output="a1", model="gpt-4o", created_at=D1, latency_ms=5)
    return proj, run_id


def _rows(proj, sql: str) -> list[dict]:
    columns, rows = proj.query(sql)
    return [dict(zip(columns, r, strict=True)) for r in rows]


def test_usage_daily(filled) -> None:
    proj, _ = filled
    rows = _rows(proj, "SELECT * FROM usage_daily ORDER BY day, model")
    assert [(r["day"], r["model"]) for r in rows] == [
        (dt.date(2026, 1, 5), "gpt-4o"),
        (dt.date(2026, 1, 6), "claude"),
    ]
    d1, d2 = rows
    assert (d1["calls"], d1["errors"], d1["error_rate"]) == (4, 1, 0.25)
    assert (d1["prompt_tokens"], d1["completion_tokens"], d1["total_tokens"]) == (40, 60, 100)
    assert float(d1["cost_usd"]) == pytest.approx(0.03)
    assert d1["latency_p50_ms"] == pytest.approx(250)
    assert d1["latency_p95_ms"] == pytest.approx(385)  # 300 + 0.85 * (400 - 300)
    assert (d2["calls"], d2["errors"], d2["prompt_tokens"], d2["total_tokens"]) == (2, 0, 5, 10)
    assert d2["latency_p50_ms"] == d2["latency_p95_ms"] == 1000  # the call without latency
    # parameters are bound, also through pandas
    df = proj.sql("SELECT sum(calls) AS calls FROM usage_daily WHERE model = :m", {"m": "claude"})
    assert int(df["calls"][0]) == 2


def test_score_trends_per_prompt_version(filled) -> None:
    proj, _ = filled
    rows = _rows(proj, "SELECT * FROM score_trends ORDER BY prompt_version, score")
    got = {(r["prompt"], r["prompt_version"], r["score"]): r for r in rows}
    assert set(got) == {("qa", 1, "correct"), ("qa", 1, "helpfulness"), ("qa", 2, "helpfulness")}
    assert got["qa", 1, "helpfulness"]["mean"] == pytest.approx(0.7)
    assert got["qa", 2, "helpfulness"]["mean"] == pytest.approx(0.3)
    assert got["qa", 2, "helpfulness"]["min"] == pytest.approx(0.2)
    assert got["qa", 1, "correct"]["scores"] == 2
    assert got["qa", 1, "correct"]["mean"] == pytest.approx(0.5)  # booleans count as 0/1


def test_session_stats(filled) -> None:
    proj, _ = filled
    rows = _rows(proj, "SELECT * FROM session_stats ORDER BY end_user_id")
    assert [r["end_user_id"] for r in rows] == ["u1", "u2"]
    u1, u2 = rows
    assert (u1["turns"], u1["errors"], u1["total_tokens"]) == (3, 1, 70)
    assert u1["duration_seconds"] == pytest.approx(120)
    assert u1["ended_at"] is not None
    assert (u2["turns"], u2["duration_seconds"]) == (0, None)


def test_duplicate_synthetic_and_pii_rates(filled) -> None:
    proj, _ = filled
    dup = _rows(proj, "SELECT * FROM duplicate_rates ORDER BY day")
    assert [(r["generations"], r["duplicates"], r["duplicate_rate"]) for r in dup] == [
        (4, 1, 0.25),
        (2, 1, 0.5),
    ]
    syn = _rows(proj, "SELECT * FROM synthetic_share ORDER BY day")
    assert [(r["synthetic"], r["synthetic_share"]) for r in syn] == [(0, 0.0), (1, 0.5)]
    pii = _rows(proj, "SELECT * FROM pii_rates ORDER BY day")
    assert [(r["with_pii"], r["findings"], r["pii_rate"]) for r in pii] == [
        (1, 1, 0.25),
        (0, 0, 0.0),
    ]


def test_run_metrics(filled) -> None:
    proj, run_id = filled
    (row,) = _rows(proj, "SELECT * FROM run_metrics WHERE name = 'nightly'")
    assert row["run_id"] == run_id and row["name"] == "nightly"
    assert (row["generations"], row["errors"], row["total_tokens"]) == (3, 1, 70)
    assert row["error_rate"] == pytest.approx(1 / 3)
    assert float(row["cost_usd"]) == pytest.approx(0.02)
    assert row["latency_p50_ms"] == pytest.approx(200)
    assert row["latency_p95_ms"] == pytest.approx(290)
    assert row["duplicate_rate"] == pytest.approx(1 / 3)
    assert (row["pii_rate"], row["synthetic_share"]) == (0.0, 0.0)


def test_views_span_the_principals_projects_and_fail_closed(filled, lake, monkeypatch) -> None:
    names = lake.projects()
    assert len(names) > 1
    for view in ANALYTICS_VIEWS:
        (everywhere,) = lake.query(f"SELECT count(*) FROM {view}")[1][0]
        each = [lake.query(f"SELECT count(*) FROM {view}", project=n)[1][0][0] for n in names]
        assert everywhere == sum(each), view
    with promptlake.connect(principal="member-of-nothing") as stranger:
        for view in ANALYTICS_VIEWS:
            with pytest.raises(promptlake.NotFoundError, match="member of no project"):
                stranger.query(f"SELECT * FROM {view}")


def test_readme_examples_run_on_every_view(filled) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## SQL analytics", 1)[1].split("\n## ", 1)[0]
    examples = re.findall(r"```sql\n(.*?)```", section, re.S)
    proj, _ = filled
    used = set()
    for example in examples:
        columns, rows = proj.query(example)
        assert columns and rows, example
        used |= set(re.findall(r"FROM (\w+)", example))
    assert used >= set(ANALYTICS_VIEWS)


def test_dataset_lineage(filled) -> None:
    proj, run_id = filled
    rows = _rows(proj, "SELECT * FROM dataset_lineage ORDER BY relation")
    assert [(r["relation"], r["run_name"], r["context"]) for r in rows] == [
        ("produced", "dataset:sft", None), ("used", "nightly", "evaluation")]  # fmt: skip
    assert rows[1]["run_id"] == run_id and {r["md5"] for r in rows} == {"abc.dir"}
