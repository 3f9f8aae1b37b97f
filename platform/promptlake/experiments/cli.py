"""``promptlake experiment run|compare|list|show`` and ``promptlake trends``: the shell's
face of :mod:`promptlake.experiments`, each a thin call of one library function."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys

import click

from ..cli import _json_default, _lake, print_table


def _fmt(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _interval(i: dict) -> str:
    if i["estimate"] is None:
        return ""
    if i["low"] is None:
        return _fmt(i["estimate"])
    return f"{_fmt(i['estimate'])} [{_fmt(i['low'])}, {_fmt(i['high'])}]"


def _short(text: str | None, width: int = 70) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@click.group()
def experiment() -> None:
    """Run tasks over dataset versions, score and compare them.

    \b
      run --project P --dataset REF --task module:function [--scorer NAME ...]
      compare A B --project P
      list --project P, show NAME --project P
    """


@experiment.command(name="run")
@click.option("--project", required=True)
@click.option("--dataset", required=True, help="Dataset version: id, name, or name@md5.")
@click.option("--task", "task_spec", required=True, help="module:function taking an Item.")
@click.option(
    "--scorer",
    "scorers",
    multiple=True,
    help="exact_match, contains, regex:PAT, json_valid, json_schema:FILE, length,"
    " words, refusal, similarity, bleu, chrf, rouge1/2/L, or module:function"
    " (repeatable).",
)
@click.option("--name", help="Experiment name (rerunning a name resumes it).")
@click.option("--split", type=click.Choice(["train", "validation", "test"]))
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1))
@click.option("--retries", default=2, show_default=True, type=click.IntRange(0))
@click.option("--model", help="The model the task calls (recorded on the run).")
@click.option("--no-tracking", is_flag=True, help="Record in the database only (no MLflow).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def run_command(
    project: str,
    dataset: str,
    task_spec: str,
    scorers: tuple[str, ...],
    name: str | None,
    split: str | None,
    concurrency: int,
    retries: int,
    model: str | None,
    no_tracking: bool,
    as_json: bool,
) -> None:
    """Run TASK on every item of a dataset version; resumable by --name."""
    from .scorers import load_callable

    if os.getcwd() not in sys.path:  # tasks live in the user's modules, like `python -m`
        sys.path.insert(0, os.getcwd())
    task = load_callable(task_spec, "task")
    with _lake() as lake:
        report = lake.project(project, create=False).experiments.run(
            dataset,
            task,
            list(scorers),
            name=name,
            split=split,
            concurrency=concurrency,
            retries=retries,
            model=model,
            tracking=not no_tracking,
        )
    out = report.to_dict()
    if as_json:
        click.echo(json.dumps(out, indent=2, default=_json_default))
        return
    click.echo(
        f"{out['experiment']}: {out['items']} items, {out['ran']} run, "
        f"{out['skipped']} already done, {out['errors']} failed ({out['elapsed_s']} s)"
    )
    print_table(
        None,
        ["score", "mean [95% CI]", "n"],
        [(k, _interval(v), v["n"]) for k, v in out["scores"].items()],
    )


@experiment.command(name="compare")
@click.argument("a")
@click.argument("b")
@click.option("--project", required=True)
@click.option("--score", "scores", multiple=True, help="Only this score (repeatable).")
@click.option("--regressions", default=5, show_default=True, type=click.IntRange(0))
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare_command(
    a: str, b: str, project: str, scores: tuple[str, ...], regressions: int, as_json: bool
) -> None:
    """Compare experiment B with A item by item (wins are per item)."""
    with _lake() as lake:
        result = lake.project(project, create=False).experiments.compare(
            a, b, scores=list(scores) or None, regressions=regressions
        )
    out = result.to_dict()
    if as_json:
        click.echo(json.dumps(out, indent=2, default=_json_default))
        return
    rows = [
        (
            name,
            _interval(s["a"]),
            _interval(s["b"]),
            _interval(s["difference"]),
            f"{s['a_wins']}/{s['b_wins']}/{s['ties']}",
            f"{s['sign_p']:.2g}",
            f"{s['wilcoxon_p']:.2g}",
            s["better"] or "-",
        )
        for name, s in out["scores"].items()
    ]
    print_table(
        f"A = {out['a']['name']}   B = {out['b']['name']}",
        [
            "score",
            "A mean [CI]",
            "B mean [CI]",
            "B - A [CI]",
            "A wins/B wins/ties",
            "sign p",
            "wilcoxon p",
            "better",
        ],
        rows,
    )
    if out["regressions"]:
        print_table(
            "B's worst regressions",
            ["score", "A", "B", "input", "A output", "B output"],
            [
                (
                    r["score"],
                    _fmt(r["value_a"]),
                    _fmt(r["value_b"]),
                    _short(r["input"]),
                    _short(r["output_a"]),
                    _short(r["output_b"]),
                )
                for r in out["regressions"]
            ],
        )
    if any(out["errors"].values()):
        click.echo(f"failed items: A {out['errors']['a']}, B {out['errors']['b']}")


@experiment.command(name="list")
@click.option("--project", required=True)
@click.option("--json", "as_json", is_flag=True)
def list_command(project: str, as_json: bool) -> None:
    """The project's experiments, newest first."""
    with _lake() as lake:
        found = lake.project(project, create=False).experiments.list()
    if as_json:
        click.echo(json.dumps([e.__dict__ for e in found], indent=2, default=_json_default))
        return
    print_table(
        None,
        ["name", "id", "status", "split", "model", "task", "created"],
        [
            (
                e.name,
                str(e.id)[:13],
                e.status,
                e.split or "all",
                e.model,
                e.task,
                e.created_at.strftime("%Y-%m-%d %H:%M"),
            )
            for e in found
        ],
    )


@experiment.command(name="show")
@click.argument("ref")
@click.option("--project", required=True)
def show_command(ref: str, project: str) -> None:
    """Items, errors and score means of one experiment."""
    from .runner import experiment_scores
    from .stats import bootstrap_mean

    with _lake() as lake:
        proj = lake.project(project, create=False)
        e = proj.experiments.get(ref)
        _, counts = proj.query(
            "SELECT status, count(*) FROM experiment_items WHERE experiment_id = :e"
            " GROUP BY 1 ORDER BY 1",
            {"e": e.id},
        )
        scores = experiment_scores(proj, e.id)
    click.echo(
        f"{e.name} ({e.id}) {e.status}; dataset version {e.dataset_version_id}"
        f" split {e.split or 'all'}; task {e.task}; MLflow run {e.mlflow_run_id}"
    )
    click.echo("items: " + ", ".join(f"{s} {n}" for s, n in counts))
    print_table(
        None,
        ["score", "mean [95% CI]", "n"],
        [
            (k, _interval(bootstrap_mean([v for _, v in pairs]).to_dict()), len(pairs))
            for k, pairs in scores.items()
        ],
    )


@click.command()
@click.option("--project", required=True)
@click.option("--score", required=True, help="Score name to follow.")
@click.option("--by", default="day", show_default=True, type=click.Choice(["day", "week"]))
@click.option("--model", help="Only this model.")
@click.option("--since", type=click.DateTime(), help="From this date (UTC), inclusive.")
@click.option("--until", type=click.DateTime(), help="Until this date (UTC), exclusive.")
@click.option(
    "--window",
    default=7,
    show_default=True,
    type=click.IntRange(1),
    help="Previous points pooled as the baseline of the drop test.",
)
@click.option(
    "--alpha",
    default=0.01,
    show_default=True,
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
)
@click.option(
    "--min-drop",
    default=0.0,
    show_default=True,
    type=float,
    help="Smallest fall of the mean worth flagging.",
)
@click.option("--json", "as_json", is_flag=True)
def trends(
    project: str,
    score: str,
    by: str,
    model: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    window: int,
    alpha: float,
    min_drop: float,
    as_json: bool,
) -> None:
    """A score and usage per model and prompt version over time; flags significant drops."""
    utc = dt.UTC
    with _lake() as lake:
        report = lake.project(project, create=False).experiments.trends(
            score,
            by=by,
            model=model,
            since=since and since.replace(tzinfo=utc),
            until=until and until.replace(tzinfo=utc),
            window=window,
            alpha=alpha,
            min_drop=min_drop,
        )
    out = report.to_dict()
    if as_json:
        click.echo(json.dumps(out, indent=2, default=_json_default))
        return
    print_table(
        f"{score} by {by}",
        [
            "period",
            "model",
            "prompt",
            "calls",
            "errors",
            "tokens",
            "cost",
            "p50 ms",
            f"{score} [95% CI]",
            "n",
            "baseline",
            "drop p",
            "alert",
        ],
        [
            (
                p["period"],
                p["model"],
                p["prompt_version"],
                p["calls"],
                f"{p['error_rate']['estimate']:.1%}",
                p["total_tokens"],
                f"{p['cost_usd']:.4f}",
                _fmt(p["latency_p50_ms"], 0),
                _interval(p["score"]),
                p["score"]["n"],
                _fmt(p["baseline"]),
                "" if p["drop_p"] is None else f"{p['drop_p']:.2g}",
                "DROP" if p["flagged"] else "",
            )
            for p in out["points"]
        ],
    )
    if out["alerts"]:
        click.echo(f"{len(out['alerts'])} significant drop(s) at alpha {alpha}")
