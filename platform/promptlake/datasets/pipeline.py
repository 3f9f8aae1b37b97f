"""The stages of the top-level ``dvc.yaml``, one function each (``promptlake dataset …``).

``export`` → ``dedup`` → ``anonymize`` → ``split`` → ``stats`` → ``record``. Every stage
reads ``params.yaml`` (only its own section matters to DVC, which lists it under the
stage's ``params``), reads the previous stage's file and writes its own. The dedup and
anonymize stages also write a small JSON report that ``stats`` folds into the metrics.
``record`` runs last because it needs the md5 DVC wrote to ``dvc.lock`` for the splits.

The project is opened by name from the export filter; the database is whatever
``promptlake.connect()`` finds (``PROMPTLAKE_DATABASE_URL`` or the embedded server under
``PROMPTLAKE_HOME``), as for every other command.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..db.models import DATASET_SPLITS
from . import export as exporter
from . import registry, stats, transform
from .params import PipelineParams

if TYPE_CHECKING:
    from ..client import Lake, Project

Progress = Callable[[int, int], None] | None


def _project(lake: Lake, params: PipelineParams) -> Project:
    return lake.project(params.export.project, create=False)


def _write_report(path: str | Path | None, report: dict[str, Any]) -> None:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")


def run_export(lake: Lake, params: PipelineParams, out: str | Path, progress: Progress = None):
    return exporter.export(_project(lake, params), params.export, out, progress=progress)


def run_dedup(params: PipelineParams, source: str | Path, out: str | Path, report: str | Path):
    table, result = transform.dedup_table(exporter.read_parquet(source), params.dedup)
    exporter.write_parquet(table, out)
    _write_report(report, result.to_dict())
    return result


def run_anonymize(
    lake: Lake,
    params: PipelineParams,
    source: str | Path,
    out: str | Path,
    report: str | Path,
    progress: Progress = None,
):
    table, result = transform.anonymize_table(
        _project(lake, params),
        exporter.read_parquet(source),
        dict(params.anonymize.operators),
        progress=progress,
    )
    exporter.write_parquet(table, out)
    _write_report(report, result.to_dict())
    return result


def split_paths(directory: str | Path) -> dict[str, Path]:
    return {split: Path(directory) / f"{split}.parquet" for split in DATASET_SPLITS}


def run_split(params: PipelineParams, source: str | Path, out_dir: str | Path):
    splits, result = transform.split_table(exporter.read_parquet(source), params.split)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for split, path in split_paths(out_dir).items():
        exporter.write_parquet(splits[split], path)
    return result


def run_stats(
    splits_dir: str | Path,
    reports: dict[str, str | Path],
    metrics: str | Path,
    plots: str | Path,
) -> dict[str, Any]:
    splits = {s: exporter.read_parquet(p) for s, p in split_paths(splits_dir).items()}
    folded = {}
    for name, path in sorted(reports.items()):
        try:
            folded[name] = json.loads(Path(path).read_text())
        except FileNotFoundError:
            continue
    return stats.write(splits, folded, metrics, plots)


def run_record(
    lake: Lake,
    params: PipelineParams,
    splits_dir: str | Path,
    lock: str | Path,
    out: str | Path | None = None,
) -> tuple[registry.DatasetVersion, bool]:
    md5 = registry.lock_md5(lock, Path(splits_dir).as_posix())
    split_ids = {
        split: exporter.read_parquet(path).column("id").to_pylist()
        for split, path in split_paths(splits_dir).items()
    }
    version, created = registry.record(
        _project(lake, params),
        params,
        split_ids,
        md5=md5,
        path=Path(splits_dir).as_posix(),
        git_rev=registry.git_revision(Path(lock).parent),
    )
    _write_report(
        out,
        {"id": str(version.id), "name": version.name, "md5": version.md5,
         "rows": version.row_count, "splits": version.split_counts,
         "mlflow_run_id": version.mlflow_run_id},
    )  # fmt: skip
    return version, created
