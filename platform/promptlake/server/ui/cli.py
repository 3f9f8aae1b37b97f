"""``promptlake bench ui`` (registered by ``cli.py``): the web UI's server time per page."""

from __future__ import annotations

import json

import click


@click.command(name="ui")
@click.option(
    "--generations",
    default=100_000,
    show_default=True,
    type=click.IntRange(100),
    help="Generations loaded into a scratch project (a scratch embedded server).",
)
@click.option("--turns", default=10, show_default=True, type=click.IntRange(1, 1000),
              help="Chained turns per session.")  # fmt: skip
@click.option("--requests", default=40, show_default=True, type=click.IntRange(5, 10_000),
              help="Timed requests per page (after 3 warm-up ones).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_ui(generations: int, turns: int, requests: int, as_json: bool) -> None:
    """p50/p95 server time of the session, generation, search, project and sessions-list
    pages, and the session page's weight, on a scratch server never your data."""
    from ...bench.ui import format_report, run_ui_bench

    def say(message: str) -> None:
        click.echo(message, err=True)

    result = run_ui_bench(generations, turns, requests, progress=say)
    click.echo(json.dumps(result, indent=2) if as_json else format_report(result))
