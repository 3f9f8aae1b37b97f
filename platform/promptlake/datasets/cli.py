"""``promptlake dataset …``: the DVC pipeline's stages and the recorded versions.

The stage commands are what ``dvc.yaml`` runs; each reads ``params.yaml`` (``--params``)
and the previous stage's file, and prints one line of what it did. ``list``, ``show``
and ``diff`` read the versions recorded in the database.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..cli import _json_default, _lake, _progress, print_table

PARAMS = click.option(
    "--params",
    "params_path",
    default="params.yaml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Pipeline parameters (see params.yaml at the top of the repository).",
)


def _params(path: Path):
    from .params import load

    return load(path)


@click.group()
def dataset() -> None:
    """Cut versioned datasets (the stages of dvc.yaml) and inspect recorded versions.

    \b
    Pipeline (run by `dvc repro`, in this order):
      export -> dedup -> anonymize -> split -> stats -> record
    Inspection:
      list, show VERSION, diff A B
    """


@dataset.command()
@PARAMS
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--project", help="Overrides export.project (no params file needed with it).")
@click.option("--model", "models", multiple=True, help="Only this model (repeatable).")
@click.option("--origin", "origins", multiple=True, type=click.Choice(["real", "synthetic"]))
@click.option("--status", "statuses", multiple=True, type=click.Choice(["ok", "error"]))
@click.option("--tag", "tags", multiple=True, help="Rows with any of these tags (repeatable).")
@click.option("--since", help="ISO date or time, inclusive.")
@click.option("--until", help="ISO date or time, exclusive.")
@click.option("--min-score", "min_scores", multiple=True, metavar="NAME=VALUE",
              help="Mean score NAME at least VALUE (repeatable).")  # fmt: skip
@click.option("--limit", type=click.IntRange(1))
@click.option("--entity", "entities", multiple=True,
              help="Rows mentioning this entity (name, alias or id; repeatable: any).")  # fmt: skip
def export(
    params_path: Path, out: Path, project: str | None, models: tuple[str, ...],
    origins: tuple[str, ...], statuses: tuple[str, ...], tags: tuple[str, ...],
    since: str | None, until: str | None, min_scores: tuple[str, ...], limit: int | None,
    entities: tuple[str, ...],
) -> None:  # fmt: skip
    """Generations matching the `export` filter -> one Parquet file (ordered by id).

    The filter is the `export` section of the params file; each option given here
    replaces that key (with --project, the params file is optional)."""
    from .params import parse, read_raw
    from .pipeline import run_export

    overrides: dict[str, object] = {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in (("project", project), ("models", models), ("origins", origins),
                           ("statuses", statuses), ("tags", tags), ("since", since),
                           ("until", until), ("limit", limit), ("entities", entities))
        if value not in (None, ())
    }  # fmt: skip
    if min_scores:
        scores = {}
        for item in min_scores:
            name, sep, value = item.partition("=")
            try:
                scores[name] = float(value)
            except ValueError:
                sep = ""
            if not sep or not name:
                raise click.BadParameter(f"{item!r} is not NAME=NUMBER", param_hint="--min-score")
        overrides["min_scores"] = scores
    if project and not params_path.exists():
        raw: dict = {"dataset": {"name": "export"}, "export": {}}
    else:
        raw = read_raw(params_path)
    section = raw.get("export") or {}
    if isinstance(section, dict):  # otherwise parse() says what is wrong with it
        raw["export"] = {**section, **overrides}
    params = parse(raw)
    with _lake() as lake, _progress("exporting") as advance:
        report = run_export(lake, params, out, progress=advance)
    click.echo(f"{report} at {report.rows_per_second:,.0f} rows/s")


@dataset.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@PARAMS
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="JSON report.")
def dedup(source: Path, params_path: Path, out: Path, report: Path | None) -> None:
    """Drop exact and near-duplicate rows (first of each group kept)."""
    from .pipeline import run_dedup

    result = run_dedup(_params(params_path), source, out, report)
    d = result.to_dict()
    click.echo(
        f"kept {d['rows_out']:,} of {d['rows_in']:,} rows ({d['exact_removed']:,} exact and"
        f" {d['near_removed']:,} near duplicates removed)"
    )


@dataset.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@PARAMS
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="JSON report.")
def anonymize(source: Path, params_path: Path, out: Path, report: Path | None) -> None:
    """Replace PII in prompts, messages and outputs (the project's policy by default)."""
    from .pipeline import run_anonymize

    params = _params(params_path)
    with _lake() as lake, _progress("anonymizing") as advance:
        result = run_anonymize(lake, params, source, out, report, progress=advance)
    found = ", ".join(f"{k} {v}" for k, v in sorted(result.findings.items())) or "none"
    click.echo(f"{result.rows_changed:,} of {result.rows:,} rows changed; findings: {found}")


@dataset.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@PARAMS
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
def split(source: Path, params_path: Path, out: Path) -> None:
    """Deterministic train/validation/test files (by content hash; see split params)."""
    from .pipeline import run_split

    result = run_split(_params(params_path), source, out)
    counts = ", ".join(f"{k} {v:,}" for k, v in result.counts.items())
    click.echo(f"{counts}; synthetic dropped by the cap: {result.dropped_synthetic:,}")


@dataset.command()
@click.argument("splits", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--report",
    "reports",
    multiple=True,
    metavar="NAME=PATH",
    help="A stage report to fold into the metrics (repeatable).",
)
@click.option("--metrics", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--plots", required=True, type=click.Path(file_okay=False, path_type=Path))
def stats(splits: Path, reports: tuple[str, ...], metrics: Path, plots: Path) -> None:
    """DVC metrics (JSON) and plot data (CSV) of the splits."""
    from .pipeline import run_stats

    named = {}
    for item in reports:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise click.BadParameter(f"{item!r} is not NAME=PATH", param_hint="--report")
        named[name] = path
    result = run_stats(splits, named, metrics, plots)
    click.echo(f"{result['rows']:,} rows; metrics in {metrics}, plot data in {plots}")


@dataset.command()
@click.argument("splits", type=click.Path(exists=True, file_okay=False, path_type=Path))
@PARAMS
@click.option(
    "--lock",
    default="dvc.lock",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where DVC recorded the md5 of SPLITS.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Version JSON.")
def record(splits: Path, params_path: Path, lock: Path, out: Path | None) -> None:
    """Record the cut in the database (dataset_versions, dataset_items, MLflow run)."""
    from .pipeline import run_record

    with _lake() as lake:
        version, created = run_record(lake, _params(params_path), splits, lock, out)
    what = "recorded" if created else "already recorded"
    click.echo(f"{what} {version.name} {version.id} md5 {version.md5} ({version.row_count:,} rows)")


def _project_name(project: str | None) -> str:
    if project:
        return project
    if Path("params.yaml").exists():
        return _params(Path("params.yaml")).export.project
    raise click.UsageError("--project is required (no params.yaml here to take it from)")


PROJECT = click.option("--project", help="Project (default: export.project of ./params.yaml).")
AS_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@dataset.command(name="list")
@PROJECT
@click.option("--name", help="Only versions of this dataset.")
@AS_JSON
def list_(project: str | None, name: str | None, as_json: bool) -> None:
    """Recorded dataset versions, newest first."""
    with _lake() as lake:
        found = lake.project(_project_name(project), create=False).datasets.list(name)
    if as_json:
        payload = [vars(v) for v in found]
        click.echo(json.dumps(payload, indent=2, default=_json_default))
        return
    print_table(
        f"{len(found)} dataset versions",
        ["id", "name", "rows", "train", "validation", "test", "md5", "git", "created"],
        [(v.id, v.name, v.row_count, v.split_counts.get("train"),
          v.split_counts.get("validation"), v.split_counts.get("test"), v.md5,
          (v.git_rev or "")[:10], v.created_at.strftime("%Y-%m-%d %H:%M")) for v in found],
    )  # fmt: skip


@dataset.command()
@click.argument("version")
@PROJECT
@AS_JSON
def show(version: str, project: str | None, as_json: bool) -> None:
    """One version: filter, parameters, counts, md5, and the runs that used it."""
    with _lake() as lake:
        proj = lake.project(_project_name(project), create=False)
        v = proj.datasets.get(version)
        _, runs = proj.query(
            "SELECT relation, run_name, mlflow_run_id, context, linked_at FROM dataset_lineage"
            " WHERE dataset_version_id = :v ORDER BY linked_at",
            {"v": v.id},
        )
    if as_json:
        payload = {
            **vars(v),
            "lineage": [
                dict(zip(("relation", "run", "mlflow_run_id", "context", "at"), r, strict=True))
                for r in runs
            ],
        }
        click.echo(json.dumps(payload, indent=2, default=_json_default))
        return
    click.echo(f"{v.name}  {v.id}")
    click.echo(f"  md5 {v.md5} ({v.path}), git {v.git_rev or '-'}, by {v.created_by}")
    click.echo(f"  created {v.created_at:%Y-%m-%d %H:%M:%S %Z}, {v.row_count:,} rows: "
               + ", ".join(f"{k} {n:,}" for k, n in v.split_counts.items()))  # fmt: skip
    click.echo(f"  filter {json.dumps(v.filter, sort_keys=True)}")
    click.echo(f"  params {json.dumps(v.params, sort_keys=True)}")
    for relation, run, mlflow_id, context, at in runs:
        click.echo(f"  {relation} by run {run!r} (MLflow {mlflow_id or '-'})"
                   f"{f' as {context}' if context else ''} at {at:%Y-%m-%d %H:%M}")  # fmt: skip


@dataset.command()
@click.argument("a")
@click.argument("b")
@PROJECT
@AS_JSON
def diff(a: str, b: str, project: str | None, as_json: bool) -> None:
    """Rows added, removed and moved between versions A and B."""
    with _lake() as lake:
        d = lake.project(_project_name(project), create=False).datasets.diff(a, b)
    if as_json:
        click.echo(json.dumps(d.to_dict(), indent=2))
        return
    click.echo(f"{d.a.name} {d.a.id} ({d.a.row_count:,} rows) -> {d.b.name} {d.b.id}"
               f" ({d.b.row_count:,} rows)")  # fmt: skip
    click.echo("  added:   " + (", ".join(f"{k} {n:,}" for k, n in d.added.items()) or "none"))
    click.echo("  removed: " + (", ".join(f"{k} {n:,}" for k, n in d.removed.items()) or "none"))
    click.echo(f"  moved between splits: {d.moved:,}; unchanged: {d.unchanged:,}")
