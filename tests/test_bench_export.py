"""The export benchmark: it exports what it loaded, reports every figure, and cleans up.

No timing is asserted (shared machines): only structure and counts."""

from __future__ import annotations

from promptlake.bench.export import PROJECT, format_report, run_export_bench


def test_export_bench_reports_and_leaves_no_trace(lake, dbq) -> None:
    result = run_export_bench(lake, rows=300, repeats=1, pandas_rows=50)
    assert result["rows"] == result["exported_rows"] == 300
    for key in ("copy_rows_per_s", "export_rows_per_s", "pandas_rows_per_s", "export_vs_copy"):
        assert result[key] > 0, key
    assert "x COPY" in format_report(result)
    assert dbq("SELECT count(*) FROM projects WHERE name = :n", {"n": PROJECT})[1] == [(0,)]
    assert dbq("SELECT count(*) FROM generations")[1] == [(0,)]
