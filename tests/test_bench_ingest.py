"""The ingest benchmark: it stores exactly what it times, reports it, and leaves no trace.

No timing is asserted: the machines are small and shared, so only structure and counts are.
"""

from __future__ import annotations

import json

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


def test_bench_stores_every_row_and_cleans_up(lake: promptlake.Lake) -> None:
    lines: list[str] = []
    before = set(lake.projects())

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

    # the bench projects and everything in them are gone
    assert set(lake.projects()) == before
    _, rows = lake.query(
        "SELECT (SELECT count(*) FROM generations), (SELECT count(*) FROM sessions),"
        " (SELECT count(*) FROM models), (SELECT count(*) FROM projects"
        "  WHERE name LIKE 'bench-ingest-%')"
    )
    assert rows == [(0, 0, 0, 0)]


def test_bench_without_single_rows(lake: promptlake.Lake) -> None:
    result = run_ingest_bench(lake, rows=120, single_rows=0, repeats=1)
    assert result["rows_per_s"]["single"] is None
    assert result["stored"] == {"copy": [120], "writer": [120], "single": []}
    assert "session.log()" not in format_report(result)
    assert not any(name.startswith("bench-ingest-") for name in lake.projects())
