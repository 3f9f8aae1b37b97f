"""Runs: ``proj.run`` records a ``runs`` row, tags what is logged inside with it, and
writes params and database-computed metrics to a real MLflow store, read back with
``MlflowClient``. Skipped when MLflow (the ``tracking`` extra) is not installed."""

from __future__ import annotations

import datetime as dt
import re
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

import promptlake

pytest.importorskip(
    "mlflow", reason="MLflow is not installed: pip install -e '.[tracking]' to run these tests"
)

from mlflow.tracking import MlflowClient

from promptlake.tracking import runs as tracking_runs

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def test_run_tags_generations_and_logs_metrics_to_mlflow(lake, project, dbq, mlflow_store):
    other = lake.project("other")
    before = project.log(prompt="before", output="x", model="gpt-4o")
    with project.run("nightly-eval", model="gpt-4o", params={"temperature": 0.2}) as run:
        g1 = project.log(prompt="q1", output="a1", model="gpt-4o", prompt_tokens=10,
                         completion_tokens=5, cost_usd=0.01, latency_ms=100,
                         created_at=T0)  # fmt: skip
        project.log(prompt="q1", output="a1", model="gpt-4o", prompt_tokens=10,
                    completion_tokens=5, cost_usd=0.01, latency_ms=300, status="error",
                    error="timeout", created_at=T0 + dt.timedelta(seconds=1))  # fmt: skip
        with project.session(end_user_id="u") as s:
            s.log(prompt="mail jane@example.com", output="ok", model="gpt-4o", latency_ms=200,
                  created_at=T0 + dt.timedelta(seconds=2))  # fmt: skip
        with project.writer() as w:
            w.log(prompt="syn", output="s", model="gpt-4o", origin="synthetic",
                  generator="llama", latency_ms=400,
                  created_at=T0 + dt.timedelta(seconds=3))  # fmt: skip
        explicit = uuid.uuid4()
        dbq("INSERT INTO runs (project_id, id, name) VALUES (:p, :r, 'other-run')",
            {"p": project.id, "r": explicit})  # fmt: skip
        project.log(prompt="elsewhere", output="x", run=explicit)  # an explicit run wins
        other.log(prompt="other project", output="x")  # not this project's run
        project.score(g1, "helpfulness", 0.5)
        project.score(g1, "correct", True)
    after = project.log(prompt="after", output="x")

    _, rows = dbq("SELECT run_id, count(*) FROM generations GROUP BY 1 ORDER BY 2 DESC")
    assert dict(rows) == {run.id: 4, None: 3, explicit: 1}
    assert project.generation(before.id).run_id is None
    assert project.generation(after.id).run_id is None

    _, (row,) = dbq(
        "SELECT status, ended_at IS NOT NULL, mlflow_run_id, params, metadata FROM runs"
        " WHERE id = :r", {"r": run.id},
    )  # fmt: skip
    assert row[:3] == ("finished", True, run.mlflow_run_id)
    assert row[3] == {"temperature": 0.2}
    expected = {
        "generations": 4, "errors": 1, "error_rate": 0.25, "prompt_tokens": 20,
        "completion_tokens": 10, "total_tokens": 30, "cost_usd": 0.02, "latency_p50_ms": 250,
        "latency_p95_ms": 385, "duplicate_rate": 0.25, "pii_rate": 0.25,
        "synthetic_share": 0.25, "score.helpfulness": 0.5, "score.correct": 1.0,
    }  # fmt: skip
    assert row[4]["metrics"] == pytest.approx(expected)
    assert run.metrics == pytest.approx(expected)

    # read back from MLflow, in its own database
    assert f"/mlflow_{project.id.hex}?" in run.tracking_uri  # the project's own store
    client = MlflowClient(tracking_uri=run.tracking_uri)
    got = client.get_run(run.mlflow_run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "nightly-eval"
    assert got.data.params == {"model": "gpt-4o", "temperature": "0.2"}
    assert got.data.metrics == pytest.approx(expected)
    assert got.data.tags["promptlake.run_id"] == str(run.id)
    assert client.get_experiment(got.info.experiment_id).name == "promptlake/test-project"
    _, app_tables = dbq(
        "SELECT count(*) FROM pg_tables WHERE tablename IN ('latest_metrics', 'metrics')"
    )
    # MLflow's tables are not in the application database (whose `experiments` is ours)
    assert app_tables == [(0,)]


def test_failed_block_marks_the_run_failed(project, dbq, mlflow_store) -> None:
    with pytest.raises(RuntimeError, match="boom"), project.run("broken") as run:
        project.log(prompt="q", output="a", latency_ms=10)
        raise RuntimeError("boom")
    _, rows = dbq("SELECT status FROM runs WHERE id = :r", {"r": run.id})
    assert rows == [("failed",)]
    got = MlflowClient(tracking_uri=run.tracking_uri).get_run(run.mlflow_run_id)
    assert got.info.status == "FAILED"
    assert got.data.metrics["generations"] == 1


def test_tracking_uri_override_and_database_only_runs(project, dbq, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with project.run("db-only", tracking=False) as run:
        project.log(prompt="q", output="a")
    assert run.mlflow_run_id is None and run.metrics["generations"] == 1
    assert not (tmp_path / "mlflow.db").exists()
    with project.run("sqlite") as run:
        project.log(prompt="q2", output="a2")
    assert run.tracking_uri.startswith("sqlite:")
    got = MlflowClient(tracking_uri=run.tracking_uri).get_run(run.mlflow_run_id)
    assert got.data.metrics["generations"] == 1
    tracking_runs._clients.clear()
    _, rows = dbq("SELECT count(*) FROM runs WHERE mlflow_run_id IS NOT NULL")
    assert rows == [(1,)]


def test_default_store_refuses_the_application_database() -> None:
    url = sa.engine.URL.create("postgresql+psycopg", database="mlflow_x")
    with pytest.raises(Exception, match="must not be"):
        tracking_runs.default_tracking_uri(url.render_as_string(), uuid.uuid4())


def test_readme_run_example(project, mlflow_store) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Runs and MLflow", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```py\n(.*?)```", section, re.S)
    records = [{"prompt": f"q{i}", "output": f"a{i}", "model": "gpt-4o"} for i in range(20)]
    namespace = {"proj": project, "records": records}
    exec(compile(block, "README.md", "exec"), namespace)
    run = namespace["run"]
    assert run.metrics["generations"] == 20
    got = MlflowClient(tracking_uri=run.tracking_uri).get_run(run.mlflow_run_id)
    assert got.data.params == {"model": "gpt-4o", "temperature": "0.2"}


def test_writers_record_runs_without_misleading_metrics(project, database_url, monkeypatch):
    project.grant("job-writer", "writer")
    monkeypatch.setenv("PROMPTLAKE_DATABASE_URL", database_url)
    with promptlake.connect(principal="job-writer") as lake:
        proj = lake.project(project.name, create=False)
        with proj.run("nightly", tracking=False) as run:
            proj.log(prompt="q", output="a")
    assert run.status == "finished" and run.metrics == {}  # RLS hides the rows from writers
    assert tracking_runs.run_metrics(project, run.id)["generations"] == 1  # the admin sees them


def test_missing_mlflow_fails_before_anything_is_recorded(project, dbq, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)  # as if not installed
    monkeypatch.setattr(tracking_runs, "_clients", {})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///unused.db")
    with pytest.raises(promptlake.PromptLakeError, match=r"promptlake\[tracking\]"):
        project.run("no-mlflow").__enter__()
    assert dbq("SELECT count(*) FROM runs")[1] == [(0,)]


def test_each_project_has_its_own_mlflow_store_and_params_are_anonymized(
    lake, database_url, admin_url, monkeypatch, mlflow_store
) -> None:
    a, b = lake.project("mlflow-a"), lake.project("mlflow-b")
    with a.run("tune for ann@example.com", params={"contact": "ann@example.com", "lr": 0.1}) as ra:
        a.log(prompt="q", output="a")
    with b.run("b-run", params={"lr": 0.2}) as rb:
        b.log(prompt="q", output="a")
    assert ra.tracking_uri != rb.tracking_uri
    client_b = MlflowClient(tracking_uri=rb.tracking_uri)
    names = {e.name for e in client_b.search_experiments()}
    assert names == {"promptlake/mlflow-b", "Default"}
    assert not client_b.search_runs([e.experiment_id for e in client_b.search_experiments()],
                                    filter_string="params.contact != ''")  # fmt: skip
    got = MlflowClient(tracking_uri=ra.tracking_uri).get_run(ra.mlflow_run_id)
    assert "ann@example.com" not in repr(got.data.params) + got.info.run_name
    assert got.data.params["lr"] == "0.1"
    # a principal's own login cannot read the store's tables
    b.grant("b-analyst", "analyst")
    monkeypatch.setenv("PROMPTLAKE_DATABASE_URL", database_url)
    with promptlake.connect(principal="b-analyst") as analyst:
        login = sa.engine.make_url(analyst.login_url())
    store = sa.engine.make_url(ra.tracking_uri)
    dsn = login.set(database=store.database).render_as_string(hide_password=False)
    import psycopg

    with psycopg.connect(dsn) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT * FROM experiments")
