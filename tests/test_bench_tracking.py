"""The tracking benchmark: every mode stores its rows, figures are reported, nothing stays.

No timing is asserted (shared machines)."""

from __future__ import annotations

import pytest

pytest.importorskip("mlflow", reason="pip install -e '.[tracking]'")

from promptlake.bench.tracking import format_report, run_tracking_bench


def test_tracking_bench_reports_and_cleans_up(lake, dbq, mlflow_store) -> None:
    result = run_tracking_bench(lake, rows=120, repeats=1)
    assert result["rows"] == 120
    for key in ("plain_seconds", "run_seconds", "mlflow_seconds"):
        assert result[key] > 0, key
    assert "target < +5%" in format_report(result)
    assert dbq("SELECT count(*) FROM projects WHERE name LIKE 'bench-tracking-%'")[1] == [(0,)]
    assert dbq("SELECT count(*) FROM generations")[1] == [(0,)]
