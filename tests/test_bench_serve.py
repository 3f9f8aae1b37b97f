"""promptlake bench serve on a small workload: the figures exist and nothing is lost."""

from __future__ import annotations

from promptlake.bench.serve import format_report, run_serve_bench


def test_bench_serve_small(lake, dbq) -> None:
    result = run_serve_bench(lake, spans=300, exporters=2, batch=50, kill_trials=1, repeats=1)
    assert result["writer_per_s"] > 0 and result["otlp_spans_per_s"] > 0
    assert result["otlp_acknowledged"] == result["otlp_stored"] == 300
    assert result["otlp_errors"] == 0
    assert 0 < result["export_p50_ms"] <= result["export_p99_ms"]
    (trial,) = result["kill_trials"]
    assert trial["lost"] == 0 and trial["duplicated"] == 0
    assert trial["stored_after_resend"] == trial["spans"]
    report = format_report(result)
    assert "x the writer" in report and "0 lost" in report
    # the scratch projects are gone
    assert dbq("SELECT count(*) FROM projects WHERE name LIKE 'bench-serve-%'")[1] == [(0,)]
