"""What a tracked run adds to a logging job: ``with proj.run(...)`` around the bulk writer.

The same job (N generations of the ingest bench's workload through ``proj.writer()``)
runs alternately without a run (``plain``), inside ``proj.run(..., tracking=False)``
(``run``: the ``runs`` row and the metrics computed in the database), and inside a tracked
``proj.run`` (``mlflow``: plus the MLflow run, its params and metrics), in ABBA-style
rotation, each into a fresh project after a ``CHECKPOINT``, the projects deleted and the
tables vacuumed after each rotation (where the login may); each figure is the best of its
repeats, and the overhead is the ratio to ``plain``. MLflow is imported and its store opened before
timing: that one-off cost per process (seconds) is reported apart.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from . import as_login, drop_projects
from .ingest import make_workload, write_workload

if TYPE_CHECKING:
    from ..client import Lake

PREFIX = "bench-tracking-"


def _job(lake: Lake, name: str, sessions: list, mode: str) -> float:
    project = lake.project(name)
    project.set_pii_policy(apply_at="export")  # the same work in every mode
    as_login(lake, "CHECKPOINT")  # where the login may: no checkpoint left over mid-job
    started = time.perf_counter()
    if mode == "plain":
        _write(project, sessions)
    else:
        with project.run("bench", model="bench-model", params={"rows": len(sessions)},
                         tracking=mode == "mlflow"):  # fmt: skip
            _write(project, sessions)
    return time.perf_counter() - started


def _write(project: Any, sessions: list) -> None:
    with project.writer(batch_size=5000, index=False) as writer:  # what a run adds, alone
        write_workload(writer, sessions)


def run_tracking_bench(lake: Lake, rows: int = 10_000, repeats: int = 3) -> dict[str, Any]:
    from ..tracking.runs import _mlflow_client, default_tracking_uri

    drop_projects(lake, PREFIX)
    started = time.perf_counter()
    warmup = lake.project(f"{PREFIX}warmup")
    _mlflow_client(default_tracking_uri(lake.url, warmup.id))  # import mlflow, open a store
    first_use = time.perf_counter() - started
    times: dict[str, list[float]] = {"plain": [], "run": [], "mlflow": []}
    order = ["plain", "run", "mlflow", "mlflow", "run", "plain"]
    for i in range(repeats):
        for j, mode in enumerate(order if i % 2 == 0 else order[::-1]):
            # fresh ids per job: every job stores all its rows
            sessions = make_workload(rows, seed=1000 * i + j)
            times[mode].append(_job(lake, f"{PREFIX}{i}-{j}", sessions, mode))
        drop_projects(lake, PREFIX, vacuum="generations, sessions")
    best = {mode: min(t) for mode, t in times.items()}
    return {
        "rows": rows,
        "plain_seconds": round(best["plain"], 3),
        "run_seconds": round(best["run"], 3),
        "mlflow_seconds": round(best["mlflow"], 3),
        "run_overhead": round(best["run"] / best["plain"] - 1, 4),
        "mlflow_overhead": round(best["mlflow"] / best["plain"] - 1, 4),
        "mlflow_first_use_seconds": round(first_use, 2),
    }


def format_report(result: dict[str, Any]) -> str:
    return "\n".join([
        f"tracking bench: a logging job of {result['rows']:,} generations (best of repeats)",
        f"  no run                 {result['plain_seconds']:.3f} s",
        f"  proj.run, no MLflow    {result['run_seconds']:.3f} s"
        f"  ({result['run_overhead']:+.1%})",
        f"  proj.run with MLflow   {result['mlflow_seconds']:.3f} s"
        f"  ({result['mlflow_overhead']:+.1%}, target < +5%)",
        f"  first MLflow use in a process (import, open store): "
        f"{result['mlflow_first_use_seconds']} s, once",
    ])  # fmt: skip
