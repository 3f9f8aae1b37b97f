"""The ingest benchmark: it stores exactly what it times, reports it, and leaves no trace.

No timing is asserted: the machines are small and shared, so only structure and counts are.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

import promptlake
from promptlake.bench.ingest import format_report, make_workload, run_ingest_bench


def test_workload_is_reproducible_and_realistic() -> None:
    first, again = make_workload(300, seed=7), make_workload(300, seed=7)
    turns = [t for s in first for t in s.turns]
    assert len(turns) == 300
    assert [t["id"] for t in turns] == [t["id"] for s in again for t in s.turns]
    assert make_workload(300, seed=8)[0].turns[0]["id"] != turns[0]["id"]
    assert any(t.get("origin") == "synthetic" for t in turns)
    chained = [t for t in turns if "parent" in t]
    assert chained and all(t["seq"] > 0 for t in chained)
    assert all(2 <= len(t["messages"]) <= 4 for t in turns)


def _as_login(database_url: str, query: str) -> list[tuple]:
    """Ground truth: the database's login, which row-level security does not filter."""
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            return [tuple(r) for r in conn.execute(sa.text(query))]
    finally:
        engine.dispose()


COUNTS = (
    "SELECT (SELECT count(*) FROM projects), (SELECT count(*) FROM sessions),"
    " (SELECT count(*) FROM generations), (SELECT count(*) FROM models),"
    " (SELECT count(*) FROM projects WHERE name LIKE 'bench-ingest-%')"
)


def test_bench_stores_every_row_and_cleans_up(lake: promptlake.Lake, database_url: str) -> None:
    lake.project("bystander").log(prompt="kept", output="as it was", model="m")
    before = _as_login(database_url, COUNTS)
    lines: list[str] = []

    result = run_ingest_bench(
        lake, rows=2000, single_rows=50, seed=1, progress=lines.append, batch_size=700
    )

    assert result["rows"] == 2000 and result["single_rows"] == 50
    assert result["stored"] == {"copy": [2000, 2000], "writer": [2000, 2000], "single": [50]}
    assert [(r["method"], r["repeat"]) for r in result["runs"]] == [
        ("copy", 1),
        ("writer", 1),
        ("writer", 2),
        ("copy", 2),
        ("single", 1),
    ]
    assert all(r["stored"] == r["rows"] for r in result["runs"])
    rates = result["rows_per_s"]
    assert set(rates) == {"copy", "writer", "single"}
    assert all(rate > 0 for rate in rates.values())
    assert result["writer_vs_copy"] == round(rates["writer"] / rates["copy"], 3)
    assert result["meets_target"] == (rates["writer"] / rates["copy"] >= result["target"])
    assert 1500 < result["text_bytes_per_row"] < 2600
    assert result["bytes_per_row"] > 500
    json.dumps(result)  # the CLI prints it with --json

    report = format_report(result)
    assert "raw binary COPY" in report and "project.writer()" in report
    assert "session.log()" in report and "writer / COPY" in report
    assert any("removed 5 bench projects" in line for line in lines)

    # the bench projects and everything in them are gone; the bystander is untouched
    assert _as_login(database_url, COUNTS) == before
    assert before[0][:4] == (1, 0, 1, 1)
    assert not any(name.startswith("bench-ingest-") for name in lake.projects())


def test_bench_without_single_rows(lake: promptlake.Lake, database_url: str) -> None:
    result = run_ingest_bench(lake, rows=120, single_rows=0, repeats=1)
    assert result["rows_per_s"]["single"] is None
    assert result["stored"] == {"copy": [120], "writer": [120], "single": []}
    assert "session.log()" not in format_report(result)
    assert _as_login(database_url, COUNTS)[0] == (0, 0, 0, 0, 0)


def test_bench_prices_the_default_pii_policy(lake: promptlake.Lake) -> None:
    result = run_ingest_bench(lake, rows=600, single_rows=0, batch_size=300, repeats=2,
                              policy_baseline=True)  # fmt: skip
    methods = [(r["method"], r["repeat"]) for r in result["runs"]]
    assert methods == [("copy", 1), ("writer", 1), ("nopolicy", 1), ("nopolicy", 2),
                       ("writer", 2), ("copy", 2)]  # fmt: skip
    assert all(r["stored"] == 600 for r in result["runs"])
    policy = result["policy"]
    assert policy["writer_no_policy_rows_per_s"] > 0 and policy["default_vs_no_policy"] > 0
    assert "writer without a PII policy" in format_report(result)
