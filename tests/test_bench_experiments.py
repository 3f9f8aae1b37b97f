"""The experiments benchmark: every configuration runs every item, a resumed run runs
none, figures are reported, nothing stays behind. No timing is asserted (shared machines)."""

from __future__ import annotations

from promptlake.bench.experiments import format_report, run_experiments_bench


def test_experiments_bench_reports_and_cleans_up(lake, dbq) -> None:
    result = run_experiments_bench(lake, items=40)
    assert result["items"] == 40 and len(result["configs"]) == 4
    assert all(c["seconds"] > 0 for c in result["configs"])
    assert result["resume_ran"] == 0
    assert "ms/item (target < 5)" in format_report(result)
    assert dbq("SELECT count(*) FROM projects WHERE name LIKE 'bench-experiments-%'")[1] == [(0,)]
    assert dbq("SELECT count(*) FROM experiments")[1] == [(0,)]
    assert dbq("SELECT count(*) FROM generations")[1] == [(0,)]
