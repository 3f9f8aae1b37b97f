"""The durability benchmark runs end to end on a small scale and reports no loss."""

from __future__ import annotations

from promptlake.bench.durability import format_report, run_durability_bench


def test_durability_bench_small() -> None:
    result = run_durability_bench(rows=3000, trials=1, writers=2, journal_rows=500)
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert result["trials"][0]["stored"] == 3000
    assert result["journal"]["stored"] == 500
    assert result["concurrency"]["many_rows_per_s"] > 0
    assert "journal replay" in format_report(result)
