"""``promptlake bench logging``: its figures come from stored counts, on tiny sizes here."""

from __future__ import annotations

from promptlake.bench.logger import format_report, make_sessions, run_logging_bench


def test_workload_shape() -> None:
    sessions = make_sessions(3, seed=5)
    assert len(sessions) == 3 and all(len(turns) == 20 for turns in sessions)
    assert {len(t["prompt"]) for s in sessions for t in s} == {1000}
    assert {len(t["output"]) for s in sessions for t in s} == {1200}
    assert make_sessions(3, seed=5) == sessions


def test_bench_runs_end_to_end(lake, mlflow_database) -> None:
    import os

    before = os.environ.get("MLFLOW_TRACKING_URI")
    result = run_logging_bench(
        lake, sessions=4, threads=4, single_sessions=2, mlflow_sessions=1, trials=1
    )
    assert result["logger"]["generations"] == 80
    assert result["session_log"]["generations"] == 40
    assert result["mlflow"]["generations"] == 20
    assert result["kill"]["lost"] == 0 and result["kill"]["duplicated"] == 0
    assert result["kill"]["acknowledged"] >= 200
    assert result["ratios"]["logger_stored_vs_session_log"] > 0
    report = format_report(result)
    assert "MLflow sync tracing" in report and "kill -9 trials: 1" in report
    assert lake.projects() == []  # the bench's projects are gone
    assert os.environ.get("MLFLOW_TRACKING_URI") == before  # later proj.run calls unaffected
