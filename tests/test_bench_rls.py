"""The row-level security benchmark runs, agrees with the owner's answer, and cleans up."""

from __future__ import annotations

from promptlake.bench.rls import format_report, run_rls_bench


def test_rls_bench_small(lake, dbq) -> None:
    result = run_rls_bench(lake, rows=300, repeats=2)
    assert result["same_answer"] is True and result["groups"] > 0
    assert result["owner_ms"] > 0 and result["rls_ms"] > 0
    assert "overhead" in format_report(result)
    _, left = dbq("SELECT count(*) FROM projects WHERE name LIKE 'bench-rls-%'")
    assert left == [(0,)]
