"""The ``stats`` stage: DVC metrics (JSON) and plot data (CSV) describing a cut.

``dvc metrics show`` / ``dvc metrics diff`` read the JSON (rows and synthetic share per
split, models, mean lengths and tokens, mean of each score, plus what the dedup and
anonymize stages reported); ``dvc plots show`` renders the CSVs (rows per model and
split; output length histogram). Everything is computed from the split files, with
sorted keys and rounded floats, so equal inputs give equal files.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..db.models import DATASET_SPLITS

if TYPE_CHECKING:
    import pyarrow as pa

LENGTH_BINS = (0, 100, 250, 500, 1000, 2000, 4000, 8000)


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), 6) if values else None


def split_metrics(table: pa.Table) -> dict[str, Any]:
    rows = table.num_rows
    origins = table.column("origin").to_pylist()
    outputs = table.column("output").to_pylist()
    scores: dict[str, list[float]] = {}
    for raw in table.column("scores").to_pylist():
        for name, value in (json.loads(raw) if raw else {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                scores.setdefault(name, []).append(float(value))
    return {
        "rows": rows,
        "synthetic_share": round(origins.count("synthetic") / rows, 6) if rows else 0.0,
        "models": len({m for m in table.column("model").to_pylist() if m}),
        "sessions": len({s for s in table.column("session_id").to_pylist() if s}),
        "mean_output_chars": _mean([len(o) for o in outputs if o is not None]),
        "mean_total_tokens": _mean(table.column("total_tokens").to_pylist()),
        "scores": {name: _mean(v) for name, v in sorted(scores.items())},
    }


def compute(splits: dict[str, pa.Table], reports: dict[str, Any]) -> dict[str, Any]:
    metrics: dict[str, Any] = {"splits": {s: split_metrics(splits[s]) for s in DATASET_SPLITS}}
    metrics["rows"] = sum(m["rows"] for m in metrics["splits"].values())
    metrics.update(reports)
    return metrics


def write(
    splits: dict[str, pa.Table],
    reports: dict[str, Any],
    metrics_path: str | Path,
    plots_dir: str | Path,
) -> dict[str, Any]:
    metrics = compute(splits, reports)
    metrics_path = Path(metrics_path)
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    plots = Path(plots_dir)
    plots.mkdir(parents=True, exist_ok=True)
    per_model: dict[tuple[str, str], int] = {}
    lengths: dict[tuple[str, int], int] = {}
    for split in DATASET_SPLITS:
        table = splits[split]
        for model in table.column("model").to_pylist():
            key = (model or "(none)", split)
            per_model[key] = per_model.get(key, 0) + 1
        for output in table.column("output").to_pylist():
            n = len(output or "")
            low = max(b for b in LENGTH_BINS if b <= n)
            lengths[(split, low)] = lengths.get((split, low), 0) + 1
    with (plots / "rows_per_model.csv").open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["model", "split", "rows"])
        for (model, split), n in sorted(per_model.items()):
            w.writerow([model, split, n])
    with (plots / "output_length.csv").open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["split", "chars_from", "rows"])
        for split in DATASET_SPLITS:
            for low in LENGTH_BINS:
                w.writerow([split, low, lengths.get((split, low), 0)])
    return metrics
