"""Commands of the server: ``promptlake serve``, ``promptlake keys create|list|revoke`` and
``promptlake bench serve`` (registered by ``cli.py``)."""

from __future__ import annotations

import json

import click

from ..cli import _lake, print_table

ROLES = click.Choice(["writer", "analyst", "viewer", "admin"])


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind (0.0.0.0 to listen on every interface).",
)
@click.option("--port", default=4318, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--max-body-mb",
    default=16.0,
    show_default=True,
    type=click.FloatRange(0.001),
    help="Largest request body, decompressed (413 beyond).",
)
@click.option(
    "--rate",
    default=200.0,
    show_default=True,
    type=click.FloatRange(0.001),
    help="Requests per second per API key, unless the key sets its own (429 beyond).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def serve(host: str, port: int, max_body_mb: float, rate: float, log_level: str) -> None:
    """Serve OTLP/HTTP traces (POST /v1/traces) and JSON batches (POST /v1/generations,
    /v1/scores) to clients with an API key; /healthz and /readyz for probes."""
    from . import serve as run

    run(
        host,
        port,
        log_level=log_level,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        rate_per_second=rate,
    )


@click.group()
def keys() -> None:
    """API keys of promptlake serve (a project's admins make and revoke them)."""


@keys.command(name="create")
@click.option("--project", required=True)
@click.option("--role", required=True, type=ROLES, help="What requests with the key may do.")
@click.option("--principal", help="Who the key acts as (default: a principal of its own).")
@click.option("--name", help="What the key is for.")
@click.option(
    "--rate", type=click.FloatRange(0.001), help="Requests per second (default: the server's)."
)
def keys_create(
    project: str, role: str, principal: str | None, name: str | None, rate: float | None
) -> None:
    """Make a key and print it (once: only its hash is stored)."""
    with _lake() as lake:
        made = lake.project(project, create=False).keys.create(
            role, principal=principal, name=name, rate_per_second=rate
        )
    click.echo(made.secret)
    click.echo(
        f"{made.key.prefix}: {role} of {project!r} as {made.key.principal!r}."
        " Keep the key: it is not shown again.",
        err=True,
    )


@keys.command(name="list")
@click.option("--project", required=True)
@click.option("--json", "as_json", is_flag=True)
def keys_list(project: str, as_json: bool) -> None:
    """The project's keys: prefix, role, principal, created, revoked."""
    with _lake() as lake:
        found = lake.project(project, create=False).keys.list()
    rows = [
        (k.prefix, k.role, k.principal, k.name, k.rate_per_second, k.created_at, k.revoked_at)
        for k in found
    ]
    columns = ["prefix", "role", "principal", "name", "rate", "created_at", "revoked_at"]
    if as_json:
        click.echo(json.dumps([dict(zip(columns, r, strict=True)) for r in rows], default=str))
    else:
        print_table(f"API keys of {project}", columns, rows)


@keys.command(name="revoke")
@click.argument("key")
@click.option("--project", required=True)
def keys_revoke(key: str, project: str) -> None:
    """Revoke KEY (its prefix, or the whole key): requests with it get 401."""
    with _lake() as lake:
        revoked = lake.project(project, create=False).keys.revoke(key)
    click.echo(f"revoked {revoked.prefix} ({revoked.role} as {revoked.principal!r})")


@click.command(name="serve")
@click.option(
    "--spans",
    default=20_000,
    show_default=True,
    type=click.IntRange(100),
    help="Model-call spans exported to the server (and written by the bulk writer).",
)
@click.option(
    "--exporters",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Concurrent OTLP exporters.",
)
@click.option(
    "--batch",
    default=512,
    show_default=True,
    type=click.IntRange(1),
    help="Spans per export request.",
)
@click.option(
    "--kill-trials",
    default=2,
    show_default=True,
    type=click.IntRange(0, 20),
    help="Trials of kill -9 mid-load (a server subprocess on a scratch database).",
)
@click.option(
    "--repeats",
    default=2,
    show_default=True,
    type=click.IntRange(1, 10),
    help="Alternating writer / OTLP runs; the best of each counts.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_serve(
    spans: int, exporters: int, batch: int, kill_trials: int, repeats: int, as_json: bool
) -> None:
    """OTLP spans/s stored end to end vs the bulk writer; export p99 under load; kill -9."""
    from ..bench.serve import format_report, run_serve_bench

    with _lake() as lake:
        result = run_serve_bench(
            lake,
            spans=spans,
            exporters=exporters,
            batch=batch,
            kill_trials=kill_trials,
            repeats=repeats,
        )
    click.echo(json.dumps(result, indent=2) if as_json else format_report(result))
