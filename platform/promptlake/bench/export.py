"""How fast a dataset export runs, measured against raw ``COPY … TO STDOUT`` in the same run.

``N`` realistic generations (the ingest bench's workload: ~2 KB of text, chained turns,
10% synthetic) are loaded into a fresh project with a score on every other row. Then,
alternating in ABBA order and keeping each method's best run (noise on a shared host only
slows a run down):

``copy``
    the export's own ``COPY (SELECT …) TO STDOUT`` over the same selection, reading the
    bytes and dropping them: the practical ceiling of getting the rows out;
``export``
    ``proj.datasets.export(path)``: the filtered selection, the same COPY, parsing into
    typed Arrow columns and writing the Parquet file (what the ``export`` stage does);
``pandas``
    ``pandas.read_sql`` of the same SELECT (a peer baseline: what a notebook would do),
    on a slice of the rows because it is several times slower.

With ``dvc=True`` it also times a full ``dvc repro`` of the top-level ``dvc.yaml`` on
the loaded project in a temporary git repository (``dataset.mlflow`` off, so the figure
is the pipeline's own time).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..datasets import export as exporter
from ..datasets.params import parse
from . import drop_projects
from .ingest import make_workload

if TYPE_CHECKING:
    from ..client import Lake, Project

PROJECT = "bench-export"
ROOT = Path(__file__).resolve().parents[3]


def _load(lake: Lake, rows: int) -> Project:
    project = lake.project(PROJECT)
    project.set_pii_policy(apply_at="export")
    n = 0
    with project.writer(batch_size=5000) as writer:
        for session in make_workload(rows):
            writer.session(id=session.id, end_user_id=session.end_user_id)
            for turn in session.turns:
                gid = writer.log(session=session.id, **turn)
                if n % 2 == 0:
                    writer.score(gid, "helpfulness", (n % 10) / 10, source="model")
                n += 1
    return project


def _time_copy(project: Project, flt: Any) -> tuple[float, int]:
    started = time.perf_counter()
    size = 0
    with project.lake._transaction(project) as conn:
        exporter.select_ids(conn, project, flt)
        with conn.cursor().copy(exporter.copy_query()) as copy:
            for block in copy:
                size += len(block)
    return time.perf_counter() - started, size


def _time_export(project: Project, flt: Any, path: Path) -> float:
    started = time.perf_counter()
    exporter.export(project, flt, path)
    return time.perf_counter() - started


def _time_pandas(project: Project, rows: int) -> float:
    import pandas as pd
    import sqlalchemy as sa

    flt = parse({**_raw(), "export": {**_raw()["export"], "limit": rows}}).export
    started = time.perf_counter()
    with project.lake._sa_transaction(project) as conn:
        exporter.select_ids(conn.connection.driver_connection, project, flt)
        frame = pd.read_sql(sa.text(exporter.select_sql()), conn)
    assert len(frame) == rows
    return time.perf_counter() - started


def _raw() -> dict[str, Any]:
    export = {"project": PROJECT, "statuses": ["ok", "error"]}  # every row loaded
    return {"dataset": {"name": "bench", "mlflow": False}, "export": export}


def _time_dvc(lake: Lake) -> float:
    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        shutil.copy(ROOT / "dvc.yaml", repo)
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        params["export"]["project"] = PROJECT
        params["dataset"].update(name="bench", mlflow=False)
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        bindir = str(Path(sys.executable).parent)
        env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
               "PROMPTLAKE_DATABASE_URL": lake.url, "DVC_NO_ANALYTICS": "1"}  # fmt: skip
        for args in (["git", "init", "-q"], [f"{bindir}/dvc", "init", "-q"]):
            subprocess.run(args, cwd=repo, env=env, check=True, capture_output=True)
        started = time.perf_counter()
        done = subprocess.run(
            [f"{bindir}/dvc", "repro"], cwd=repo, env=env, capture_output=True, text=True
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"dvc repro failed:\n{done.stdout}\n{done.stderr}")
    return seconds


def run_export_bench(
    lake: Lake, rows: int = 100_000, repeats: int = 2, pandas_rows: int = 10_000,
    dvc: bool = False,
) -> dict[str, Any]:  # fmt: skip
    drop_projects(lake, PROJECT)  # what an interrupted run left behind
    started = time.perf_counter()
    project = _load(lake, rows)
    load_seconds = time.perf_counter() - started
    flt = parse(_raw()).export
    copy_times: list[float] = []
    export_times: list[float] = []
    copy_bytes = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.parquet"
        for order in ("copy", "export", "export", "copy") * repeats:
            if order == "copy":
                seconds, copy_bytes = _time_copy(project, flt)
                copy_times.append(seconds)
            else:
                export_times.append(_time_export(project, flt, path))
        parquet_bytes = path.stat().st_size
        exported_rows = exporter.read_parquet(path).num_rows
    pandas_seconds = _time_pandas(project, min(pandas_rows, rows))
    result: dict[str, Any] = {
        "rows": rows,
        "exported_rows": exported_rows,
        "load_seconds": round(load_seconds, 2),
        "copy_rows_per_s": round(rows / min(copy_times)),
        "export_rows_per_s": round(rows / min(export_times)),
        "pandas_rows_per_s": round(min(pandas_rows, rows) / pandas_seconds),
        "copy_mb": round(copy_bytes / 2**20, 1),
        "parquet_mb": round(parquet_bytes / 2**20, 1),
    }
    result["export_vs_copy"] = round(result["export_rows_per_s"] / result["copy_rows_per_s"], 3)
    if dvc:
        result["dvc_repro_seconds"] = round(_time_dvc(lake), 1)
    drop_projects(lake, PROJECT, vacuum="generations, sessions")
    return result


def format_report(result: dict[str, Any]) -> str:
    lines = [
        f"export bench: {result['rows']:,} generations (loaded in {result['load_seconds']} s)",
        f"  raw COPY TO STDOUT  {result['copy_rows_per_s']:>9,} rows/s"
        f"  ({result['copy_mb']} MB of CSV)",
        f"  export to Parquet   {result['export_rows_per_s']:>9,} rows/s"
        f"  ({result['parquet_mb']} MB)  = {result['export_vs_copy']}x COPY (target >= 0.5x)",
        f"  pandas.read_sql     {result['pandas_rows_per_s']:>9,} rows/s  (peer baseline)",
    ]
    if "dvc_repro_seconds" in result:
        lines.append(f"  dvc repro (all six stages): {result['dvc_repro_seconds']} s")
    return "\n".join(lines)
