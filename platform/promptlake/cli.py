"""The ``promptlake`` command: a thin layer over the library.

Every command parses its options, calls one library function and prints the result; what
it does is documented (and tested) in the library. Errors of ours print as one line on
stderr with exit status 1; usage errors exit 2.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import click

from .errors import PromptLakeError
from .ingest.importers import FORMATS


def _json_default(value: Any) -> Any:
    if isinstance(value, uuid.UUID | dt.datetime | dt.date | decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return repr(value)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=_json_default)
    return str(value)


def print_table(title: str | None, columns: list[str], rows: list[tuple]) -> None:
    """A table on the terminal (rich), plain aligned text when piped. Values are shown as
    they are: stored text like ``[/b]`` is data, never rich markup."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(v if isinstance(v, Text) else Text(_cell(v)) for v in row))
    console = Console(soft_wrap=False)
    if not console.is_terminal:
        console.width = 160  # piped output: do not squeeze columns into 80 characters
    console.print(table)


def _lake():
    from .client import connect

    return connect()


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PromptLakeError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except OSError as exc:  # a path the user gave: missing, unwritable, a directory
            click.echo(f"error: {_os_error(exc)}", err=True)
            sys.exit(1)


def _os_error(exc: OSError) -> str:
    """One line for a failed file operation: the path and the system's reason."""
    if exc.filename is not None and exc.strerror:
        target = f" -> {exc.filename2}" if exc.filename2 is not None else ""
        return f"{exc.filename}{target}: {exc.strerror}"
    return str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="promptlake")
def main() -> None:
    """promptlake: the system of record for prompts and generated outputs, on PostgreSQL.

    With no PROMPTLAKE_DATABASE_URL set, data lives in an embedded PostgreSQL under
    PROMPTLAKE_HOME (default ~/.promptlake), started on first use.
    """


@main.command()
def init() -> None:
    """Start (or reuse) the database, bring its schema up to date, and say where it is."""
    from .db import migrate
    from .db.engine import describe

    lake = _lake()
    with lake:
        click.echo(f"database: {describe(lake.url)}")
        if lake.settings.embedded:
            click.echo(f"embedded server data: {lake.settings.pgdata}")
        click.echo(f"schema revision: {migrate.current_revision(lake.engine)}")
        click.echo(f"principal: {lake.principal} (set PROMPTLAKE_PRINCIPAL to act for another)")


@main.command()
@click.option("--project", default="demo", show_default=True, help="Project to load into.")
def demo(project: str) -> None:
    """Load the bundled sample conversations, score them and print a report.

    Imports the MT-bench questions with GPT-4 reference answers (real prompts, two-turn
    chains) and templated ShareGPT identity conversations (labelled synthetic), adds
    heuristic scores, then prints counts per model, origin, sessions, chain lengths and
    score averages. Safe to run again: nothing is stored twice.
    """
    from .demo import run_demo

    with _lake() as lake:
        click.echo(f"database: {lake!r}")
        for line in run_demo(lake, project):
            click.echo(line)
        _print_stats(lake, project, as_json=False)


@main.command(name="import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), required=True, help="Layout of the file."
)
@click.option("--project", required=True, help="Project to import into (created if new).")
@click.option(
    "--origin",
    type=click.Choice(["real", "synthetic"]),
    default="real",
    show_default=True,
    help="Whether the data came from real users or was generated.",
)
@click.option("--generator", help="For synthetic data: the model or pipeline that made it.")
@click.option("--model", help="Model name for records that do not name one.")
@click.option(
    "--answers",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="mtbench: answer file(s) with the model replies (repeatable).",
)
@click.option(
    "--map",
    "mapping",
    multiple=True,
    metavar="COLUMN=FIELD",
    help="csv: map a column to a generation field, e.g. --map question=prompt.",
)
@click.option("--batch-size", default=5000, show_default=True, type=click.IntRange(1))
@click.option(
    "--no-index", is_flag=True, help="Do not index for search as rows are stored (see embed)."
)
def import_(
    path: Path,
    fmt: str,
    project: str,
    origin: str,
    generator: str | None,
    model: str | None,
    answers: tuple[Path, ...],
    mapping: tuple[str, ...],
    batch_size: int,
    no_index: bool,
) -> None:
    """Import a file of conversations or prompt/response pairs.

    Files are streamed, never read whole. Each rejected record is reported with its line
    (or item) number and reason; the good ones are stored. Re-importing a file stores
    nothing twice. Exit status is 1 when any record was rejected.
    """
    column_map: dict[str, str] = {}
    for item in mapping:
        column, sep, field = item.partition("=")
        if not sep or not column or not field:
            raise click.BadParameter(f"{item!r} is not COLUMN=FIELD", param_hint="--map")
        column_map[column] = field
    with _lake() as lake:
        report = lake.project(project).import_file(
            path,
            fmt,
            origin=origin,
            generator=generator,
            model=model,
            mapping=column_map or None,
            answers=list(answers) or None,
            batch_size=batch_size,
            index=not no_index,
        )
    for item, reason in report.rejected:
        # items of the main file say "line N" / "item N"; others name their own file
        where = f"{path}: {item}" if item.startswith(("line ", "item ")) else item
        click.echo(f"{where}: {reason}", err=True)
    click.echo(
        f"stored {report.stored}, rejected {len(report.rejected)}"
        + (f", already stored {report.duplicates}" if report.duplicates else "")
        + f" ({report.sessions} sessions)"
    )
    sys.exit(1 if report.rejected else 0)


@main.command()
@click.argument("query")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@click.option(
    "--project",
    help="Run in this project's context: row-level security shows only its rows.",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Bind :NAME in the query to VALUE (text), e.g. --param model=gpt-4.",
)
def sql(query: str, fmt: str, project: str | None, params: tuple[str, ...]) -> None:
    """Run a SQL query and print the result as a table, CSV or JSON lines.

    Project-scoped tables (generations, sessions, scores, ...) show rows only inside a
    project: pass --project. Parameters are bound, never pasted into the SQL.
    """
    bound: dict[str, str] = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--param")
        bound[name] = value
    with _lake() as lake:
        columns, rows = lake.query(query, bound, project=project)
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows([_cell(v) for v in row] for row in rows)
    elif fmt == "json":
        for row in rows:
            record = dict(zip(columns, row, strict=True))
            click.echo(json.dumps(record, ensure_ascii=False, default=_json_default))
    else:
        print_table(None, columns, rows)
        click.echo(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")


@main.command()
@click.option("--project", help="Only this project (default: all).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def stats(project: str | None, as_json: bool) -> None:
    """Counts per model, origin, sessions, chain lengths and score averages."""
    with _lake() as lake:
        _print_stats(lake, project, as_json=as_json)


def _print_stats(lake: Any, project: str | None, *, as_json: bool) -> None:
    from .report import stats as build_stats

    sections = build_stats(lake, project)
    if as_json:
        payload = [section.as_dict() for section in sections]
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=_json_default))
        return
    for section in sections:
        print_table(section.title, section.columns, section.rows)


@main.command()
@click.option("--project", required=True, help="Project whose stored rows to anonymize.")
@click.option(
    "--operator",
    "operators",
    multiple=True,
    metavar="TYPE=OP",
    help="Set a new policy first: entity type to redact|mask|pseudonymize|drop|keep,"
    " e.g. --operator EMAIL=redact (repeatable; '*' names every other type).",
)
@click.option(
    "--vault/--no-vault",
    default=False,
    help="With --operator: keep the originals encrypted in the vault.",
)
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1))
def anonymize(project: str, operators: tuple[str, ...], vault: bool, batch_size: int) -> None:
    """Apply the project's PII policy to rows already stored.

    Rows are processed in batches that each commit and are marked with the policy version,
    so an interrupted run picks up where it stopped and a second run changes nothing.
    Admins only; the run is written to the audit log.
    """
    ops: dict[str, str] = {}
    for item in operators:
        entity, sep, op = item.partition("=")
        if not sep or not entity or not op:
            raise click.BadParameter(f"{item!r} is not TYPE=OP", param_hint="--operator")
        ops[entity.strip().upper() if entity != "*" else "*"] = op.strip()
    with _lake() as lake:
        proj = lake.project(project, create=False)
        if ops:
            policy = proj.set_pii_policy(ops, vault=vault)
            click.echo(f"policy version {policy.version}: {policy.operators}")
        with _progress("anonymizing") as advance:
            report = proj.anonymize(batch_size=batch_size, progress=advance)
    click.echo(
        f"policy version {report.policy_version}: {report.rows} rows checked,"
        f" {report.changed} changed, {report.findings} findings; full text recomputed for"
        f" {report.reindexed}, {report.embeddings_dropped} embeddings dropped (promptlake"
        f" embed recomputes them); {report.sessions_changed} sessions and"
        f" {report.scores_changed} scores changed"
    )


@main.command()
@click.option("--project", required=True)
@click.option("--end-user", required=True, help="The end_user_id whose data to erase.")
def erase(project: str, end_user: str) -> None:
    """Erase one end user's sessions, generations, scores, findings and vault entries.

    A keyed hash of the id is kept as a tombstone, so replayed imports or later logging
    for that end user are refused. Admins only; written to the audit log.
    """
    with _lake() as lake:
        report = lake.project(project, create=False).erase(end_user)
    click.echo(str(report))


@main.command()
@click.option("--project", required=True)
@click.option("--principal", required=True, help="A login role or an application principal.")
@click.option("--role", type=click.Choice(["admin", "writer", "analyst", "viewer"]), required=True)
def grant(project: str, principal: str, role: str) -> None:
    """Give a principal a role in a project (admins only; audited).

    admin: everything; writer: ingest only; analyst: read rows, no vault; viewer:
    aggregates only (the project_usage view).
    """
    with _lake() as lake:
        member = lake.project(project, create=False).grant(principal, role)
    click.echo(f"{member.principal} is {member.role} in {project}")


class _progress:
    """A progress bar on a terminal; silence when piped."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.bar: Any = None

    def __enter__(self):
        if not sys.stderr.isatty():
            return lambda done, total: None
        from rich.progress import Progress

        self.bar = Progress(transient=True)
        self.bar.start()
        task = self.bar.add_task(self.what, total=None)

        def advance(done: int, total: int) -> None:
            self.bar.update(task, completed=done, total=total)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


@main.group()
def db() -> None:
    """The database: where it is, whether it runs, stop the embedded server."""


@db.command()
@click.option(
    "--principal",
    help="Print the URL of this principal's own login instead: SQL through it sees exactly"
    " what row-level security lets the principal see, whatever it runs.",
)
@click.option(
    "--mlflow-project",
    metavar="PROJECT",
    help="Print the SQLAlchemy URL of this project's MLflow store instead (for `mlflow ui"
    " --backend-store-uri`; the owner's login: the store has no row-level security).",
)
def url(principal: str | None, mlflow_project: str | None) -> None:
    """Print the database URL, starting the embedded server if needed.

    The URL is in libpq form, so it works with psql, pg_dump and pandas:
    psql "$(promptlake db url --principal alice)". Without --principal it is the owner's
    login (on the embedded server a superuser, past row-level security): for the person
    who owns the data folder only, and said so on stderr.
    """
    if principal is not None or mlflow_project is not None:
        from .client import connect

        with connect(principal=principal) as lake:
            if mlflow_project is None:
                click.echo(lake.login_url())
                return
            from .tracking.runs import default_tracking_uri

            project = lake.project(mlflow_project, create=False)
            click.echo(default_tracking_uri(lake.url, project.id))
        return
    from .config import load_settings
    from .db.engine import resolve_url

    resolved = resolve_url(load_settings())
    click.echo(
        "# the owner's login (past row-level security); for a principal's view use"
        " --principal NAME",
        err=True,
    )
    click.echo(resolved.replace("postgresql+psycopg://", "postgresql://", 1))


@db.command()
def status() -> None:
    """Say where the database is and whether it is running, without starting it.

    For the embedded server: its data folder, process id and socket. For a configured
    PROMPTLAKE_DATABASE_URL: whether it answers, and its PostgreSQL version.
    """
    from .config import load_settings
    from .db import embedded
    from .db.engine import describe

    settings = load_settings()
    if not settings.embedded:
        import sqlalchemy as sa

        click.echo(f"configured: {describe(settings.database_url or '')}")
        engine = sa.create_engine(settings.database_url or "")
        try:
            with engine.connect() as conn:
                version = conn.execute(sa.text("SHOW server_version")).scalar()
            click.echo(f"reachable: yes (PostgreSQL {version})")
        except sa.exc.SQLAlchemyError as exc:
            click.echo(f"reachable: no ({str(exc).splitlines()[0]})")
            sys.exit(1)
        finally:
            engine.dispose()
        return
    state = embedded.status(settings.pgdata)
    click.echo(f"embedded server data: {state.pgdata}")
    if state.running:
        click.echo(f"running: yes (pid {state.pid}, socket in {state.socket_dir})")
    else:
        click.echo("running: no (it starts on first use, e.g. `promptlake init`)")


@db.command()
def stop() -> None:
    """Stop the embedded server. Its data stays; it starts again on next use.

    Only for the embedded server: a configured PROMPTLAKE_DATABASE_URL is not ours to stop.
    """
    from .config import load_settings
    from .db import embedded

    settings = load_settings()
    if not settings.embedded:
        raise click.UsageError("PROMPTLAKE_DATABASE_URL is set: there is no embedded server")
    if embedded.stop(settings.pgdata):
        click.echo(f"stopped the embedded server in {settings.pgdata}")
    else:
        click.echo("the embedded server was not running")


@db.command(name="dump")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def db_dump(path: Path) -> None:
    """Back up the whole database to PATH (pg_dump custom format)."""
    from .config import load_settings
    from .db.backup import dump
    from .db.engine import resolve_url

    written = dump(resolve_url(load_settings()), path)
    click.echo(f"wrote {written} ({written.stat().st_size:,} bytes)")


@db.command(name="forget-key")
@click.option(
    "--yes",
    is_flag=True,
    help="Confirm: the store's pseudonyms, vault and tombstones"
    " were made with the old key and stay so.",
)
def db_forget_key(yes: bool) -> None:
    """Let the store accept a new master key (a deliberate, lossy reset).

    A store records the fingerprint of the master key it was written with and refuses to
    start with another one. Only when the old key is lost for good: after this, the next
    start creates or accepts a new key; values pseudonymized before keep their old
    pseudonyms (the same value will get a different one from now on), vault entries made
    with the old key can no longer be revealed, and end users erased before are no longer
    recognised when logged again. Restoring the key file from a backup is always better.
    """
    if not yes:
        raise click.UsageError("this cannot be undone: pass --yes to forget the master key")
    import psycopg

    from .config import load_settings
    from .db.engine import resolve_url

    dsn = resolve_url(load_settings()).replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn) as conn:
        gone = conn.execute("DELETE FROM lake_keys WHERE purpose = 'master'").rowcount
    click.echo("forgot the master key's fingerprint" if gone else "no master key was recorded")


@db.command(name="restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="Overwrite a database that already has data.")
def db_restore(path: Path, replace: bool) -> None:
    """Restore a backup made by `promptlake db dump` (one transaction: all or nothing)."""
    from .config import load_settings
    from .db.backup import restore
    from .db.engine import resolve_url

    restore(resolve_url(load_settings()), path, replace=replace)
    click.echo(f"restored {path}")


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def replay(paths: tuple[Path, ...]) -> None:
    """Store records that writers journaled while the database was unavailable.

    With no PATHS, every journal under PROMPTLAKE_HOME/journal. Idempotent: records
    already stored are skipped; each file is removed once all its records are stored.
    """
    from .ingest.journal import replay as replay_journals

    with _lake() as lake:
        report = replay_journals(lake, list(paths) or None)
    for problem in report.rejected:
        click.echo(problem, err=True)
    click.echo(
        f"replayed {report.files} journal files: stored {report.stored}, already stored"
        f" {report.duplicates}, scores {report.scores}, rejected {len(report.rejected)};"
        f" removed {len(report.removed)} files"
        + (f"; removed {report.erased} records of erased end users" if report.erased else "")
    )
    sys.exit(1 if report.rejected else 0)


@main.group()
def bench() -> None:
    """Benchmarks that print ratios against a baseline measured in the same run."""


@bench.command(name="ingest")
@click.option(
    "--rows",
    default=20000,
    show_default=True,
    type=click.IntRange(100),
    help="Generations for the bulk writer and the raw COPY baseline.",
)
@click.option(
    "--single-rows",
    default=500,
    show_default=True,
    type=click.IntRange(10),
    help="Generations logged one call at a time.",
)
@click.option(
    "--policy-baseline/--no-policy-baseline",
    default=True,
    show_default=True,
    help="Also time the writer with no PII policy, to price the default one.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_ingest(rows: int, single_rows: int, policy_baseline: bool, as_json: bool) -> None:
    """Writer vs raw binary COPY vs single log() calls, on ~2 KB generations; the writer
    under the default PII policy vs with none."""
    from .bench.ingest import format_report, run_ingest_bench

    with _lake() as lake:
        result = run_ingest_bench(
            lake, rows=rows, single_rows=single_rows, policy_baseline=policy_baseline
        )
    click.echo(json.dumps(result, indent=2) if as_json else format_report(result))


@bench.command(name="rls")
@click.option(
    "--rows",
    default=50_000,
    show_default=True,
    type=click.IntRange(100),
    help="Generations in the queried project (as many again in another).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_rls(rows: int, as_json: bool) -> None:
    """Row-level security overhead on a typical analyst query, against the owner's query."""
    from .bench.rls import format_report, run_rls_bench

    with _lake() as lake:
        result = run_rls_bench(lake, rows=rows)
    click.echo(json.dumps(result, indent=2) if as_json else format_report(result))


@bench.command(name="pii")
@click.option(
    "--docs",
    default=2000,
    show_default=True,
    type=click.IntRange(10),
    help="Generated ~1 KB documents with planted PII and look-alikes.",
)
@click.option("--no-presidio", is_flag=True, help="Skip the Presidio comparison.")
@click.option(
    "--corpus",
    type=click.Choice(["generated", "realistic"]),
    default="generated",
    show_default=True,
    help="generated: the documented formats; realistic: Faker text in many locales (needs faker).",
)
@click.option(
    "--extras",
    is_flag=True,
    help="Also measure the phonenumbers library on phones and, on the realistic corpus,"
    " Presidio + spaCy NER on names and locations (the ner extra).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_pii(docs: int, no_presidio: bool, corpus: str, extras: bool, as_json: bool) -> None:
    """Built-in PII detector vs Presidio pattern-only: docs/s, ratio, precision/recall."""
    from .bench.pii import format_report, run_pii_bench

    result = run_pii_bench(
        docs=docs, include_presidio=not no_presidio, corpus=corpus, extras=extras
    )
    click.echo(json.dumps(result, indent=2) if as_json else format_report(result))


@bench.command(name="durability")
@click.option("--rows", default=100_000, show_default=True, type=click.IntRange(1000))
@click.option("--trials", default=20, show_default=True, type=click.IntRange(1))
@click.option("--writers", default=8, show_default=True, type=click.IntRange(2))
@click.option("--journal-rows", default=100_000, show_default=True, type=click.IntRange(100))
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_durability(
    rows: int, trials: int, writers: int, journal_rows: int, as_json: bool
) -> None:
    """Crash trials (kill -9 mid-ingest), concurrent writers, journal replay.

    Runs on a scratch embedded server of its own, never on your data.
    """
    from .bench.durability import format_report, run_durability_bench

    def say(message: str) -> None:
        click.echo(message, err=True)

    result = run_durability_bench(rows, trials, writers, journal_rows, progress=say)
    click.echo(json.dumps(result, indent=2) if as_json else format_report(result))


@bench.command(name="logging")
@click.option(
    "--sessions",
    default=250,
    show_default=True,
    type=click.IntRange(1),
    help="Sessions (of 20 turns) through proj.logger() from --threads threads.",
)
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1))
@click.option(
    "--single-sessions",
    default=25,
    show_default=True,
    type=click.IntRange(1),
    help="Sessions through Session.log (and proj.logger() from one thread).",
)
@click.option(
    "--mlflow-sessions",
    default=10,
    show_default=True,
    type=click.IntRange(0),
    help="Sessions through MLflow synchronous tracing (0: skip MLflow).",
)
@click.option(
    "--trials",
    default=3,
    show_default=True,
    type=click.IntRange(0),
    help="kill -9 trials of a process logging through proj.logger().",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_logging(sessions: int, threads: int, single_sessions: int, mlflow_sessions: int,
                  trials: int, as_json: bool) -> None:  # fmt: skip
    """Non-blocking proj.logger() vs Session.log vs MLflow synchronous tracing (same data,
    one run), and kill -9 trials of the logger. MLflow gets a database of its own."""
    from .bench.logger import format_report, run_logging_bench

    def say(message: str) -> None:
        click.echo(message, err=True)

    with _lake() as lake:
        result = run_logging_bench(lake, sessions, threads, single_sessions, mlflow_sessions,
                                   trials, progress=say)  # fmt: skip
    click.echo(json.dumps(result, indent=2) if as_json else format_report(result))


@main.command(name="dedup")
@click.option("--project", required=True, help="Project to deduplicate (never across projects).")
@click.option(
    "--method",
    type=click.Choice(["exact", "minhash", "semantic"]),
    default="minhash",
    show_default=True,
    help="exact: same normalized text; minhash: word 5-gram Jaccard; semantic: embedding cosine.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1, min_open=True),
    help="Least similarity of a duplicate (minhash default 0.8, semantic 0.95).",
)
@click.option(
    "--field",
    type=click.Choice(["content", "input", "output"]),
    default="content",
    show_default=True,
    help="What to compare: the input, the output, or both.",
)
@click.option("--within-origin", is_flag=True, help="Never pair real with synthetic rows.")
@click.option("--embedder", help="Semantic only: which stored embeddings to compare.")
@click.option("--rebuild", is_flag=True, help="Forget stored clusters; recompute from scratch.")
@click.option("--dry-run", is_flag=True, help="Report without storing (what analysts may do).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def dedup_(
    project: str,
    method: str,
    threshold: float | None,
    field: str,
    within_origin: bool,
    embedder: str | None,
    rebuild: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Find duplicate generations within a project and record them as clusters.

    Runs are incremental: only generations not checked before (or whose text changed)
    are compared, and a second run changes nothing. Each cluster's representative is its
    earliest generation; exports keep rows whose dedup_members.cluster_id is NULL or
    their own id. Storing needs an admin.
    """
    with _lake() as lake:
        proj = lake.project(project, create=False)
        with _progress("signing") as advance:
            report = proj.dedup(
                method, threshold, field=field, within_origin=within_origin,
                embedder=embedder, rebuild=rebuild, store=not dry_run, progress=advance,
            )  # fmt: skip
    if as_json:
        click.echo(
            json.dumps(report.to_dict(), ensure_ascii=False, indent=2, default=_json_default)
        )
    else:
        click.echo(str(report))


def _selection(project: Any, terms: tuple[str, ...], option: str) -> Any:
    """``KEY=VALUE`` terms -> a dedup Selection; ``dataset=VERSION:SPLIT`` takes a split's
    generations from a recorded dataset version."""
    from .dedup import Selection

    fields: dict[str, Any] = {}
    for term in terms:
        key, sep, value = term.partition("=")
        if not sep or not value:
            raise click.BadParameter(f"{term!r} is not KEY=VALUE", param_hint=option)
        if key == "tag":
            fields.setdefault("tags", []).append(value)
        elif key in ("origin", "model"):
            fields[key] = value
        elif key in ("run", "session"):
            try:
                fields[key] = uuid.UUID(value)
            except ValueError:
                raise click.BadParameter(f"{key} must be a UUID", param_hint=option) from None
        elif key == "dataset":
            ref, _, split = value.rpartition(":")
            if not ref or split not in ("train", "validation", "test"):
                raise click.BadParameter("dataset=VERSION:train|validation|test", param_hint=option)
            fields["ids"] = project.datasets.items(ref)[split]
        else:
            raise click.BadParameter(
                f"unknown key {key!r} (origin, tag, model, run, session, dataset)",
                param_hint=option,
            )
    return Selection(**fields)


@main.command()
@click.option("--project", required=True)
@click.option(
    "--suspects",
    "suspect_terms",
    multiple=True,
    metavar="KEY=VALUE",
    help="Rows to check (all terms must hold; none: every row): origin=, tag=, model=, run=,"
    " session=, dataset=VERSION:SPLIT.",
)
@click.option(
    "--references",
    "reference_terms",
    multiple=True,
    required=True,
    metavar="KEY=VALUE",
    help="Rows that must not leak into the suspects, e.g. tag=eval or dataset=sft:test.",
)
@click.option("--threshold", default=0.8, show_default=True, type=click.FloatRange(0, 1))
@click.option(
    "--field", type=click.Choice(["content", "input", "output"]), default="input",
    show_default=True,
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the report with every match.")
def contamination(
    project: str, suspect_terms: tuple[str, ...], reference_terms: tuple[str, ...],
    threshold: float, field: str, as_json: bool,
) -> None:  # fmt: skip
    """Which suspect rows near-duplicate reference rows (word 5-gram Jaccard).

    \b
    Examples:
      promptlake contamination --project p --suspects origin=synthetic --references tag=eval
      promptlake contamination --project p --suspects dataset=sft:train \\
          --references dataset=sft:test
    """
    with _lake() as lake:
        proj = lake.project(project, create=False)
        report = proj.contamination(
            _selection(proj, suspect_terms, "--suspects"),
            _selection(proj, reference_terms, "--references"),
            threshold=threshold, field=field,
        )  # fmt: skip
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, default=_json_default))
        return
    click.echo(str(report))
    for match in report.matches[:10]:
        click.echo(f"  {match.suspect_id} ~ {match.reference_id}  J={match.similarity:.3f}")


@bench.command(name="dedup")
@click.option(
    "--docs",
    default=20_000,
    show_default=True,
    type=click.IntRange(200),
    help="Generated ~800-character documents, with planted near-duplicates.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_dedup(docs: int, as_json: bool) -> None:
    """MinHash dedup: docs/s, recall at Jaccard >= 0.85, precision, brute-force check."""
    from .bench.dedup import format_report, run_dedup_bench

    with _lake() as lake:
        result = run_dedup_bench(lake, docs=docs)
    click.echo(json.dumps(result, indent=2) if as_json else format_report(result))


@main.command(name="embed")
@click.option("--project", required=True, help="Project whose generations to index.")
@click.option(
    "--embedder",
    default="hashing-384",
    show_default=True,
    help="hashing-384 (dependency-free, lexical) or all-MiniLM-L6-v2 (extra `embeddings`).",
)
@click.option(
    "--language",
    default="english",
    show_default=True,
    help="Text search configuration for full text; 'none' skips full-text indexing.",
)
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1))
@click.option("--no-index", is_flag=True, help="Do not build the embedder's HNSW index.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def embed_(
    project: str, embedder: str, language: str, batch_size: int, no_index: bool, as_json: bool
) -> None:
    """Backfill search indexes: embeddings of rows that lack one (each distinct text once),
    full text, then an HNSW index per embedder. Interrupted runs resume. Needs an admin;
    the HNSW index is built with the database login, which owns the schema."""
    with _lake() as lake:
        proj = lake.project(project, create=False)
        with _progress("indexing") as advance:
            report = proj.embed(
                embedder, language=None if language == "none" else language,
                batch_size=batch_size, build_index=not no_index, progress=advance,
            )  # fmt: skip
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else str(report))


@main.command(name="search")
@click.argument("query")
@click.option("--project", required=True)
@click.option(
    "--mode", type=click.Choice(["hybrid", "text", "vector"]), default="hybrid", show_default=True
)
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--embedder", help="For vector/hybrid: the embedder (default: the stored one).")
@click.option("--language", default="english", show_default=True)
@click.option("--model", help="Only generations of this model.")
@click.option("--origin", type=click.Choice(["real", "synthetic"]))
@click.option("--end-user", help="Only generations of this end user's sessions.")
@click.option("--tag", "tags", multiple=True, help="Only generations with this tag (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def search_(
    query: str, project: str, mode: str, k: int, embedder: str | None, language: str,
    model: str | None, origin: str | None, end_user: str | None, tags: tuple[str, ...],
    as_json: bool,
) -> None:  # fmt: skip
    """Search a project's generations: full text, vector, or both fused (RRF)."""
    with _lake() as lake:
        proj = lake.project(project, create=False)
        hits = proj.search(
            query, k, mode=mode, embedder=embedder, language=language, model=model,
            origin=origin, end_user=end_user, tags=list(tags) or None,
        )  # fmt: skip
    _print_hits(hits, f"{len(hits)} results ({mode})", as_json)
    if getattr(hits, "note", None):
        click.echo(f"note: {hits.note}", err=True)


@main.command(name="similar")
@click.argument("generation")
@click.option("--project", required=True)
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--embedder", help="Whose stored vector to use (default: the generation's only one).")
@click.option("--model", help="Only generations of this model.")
@click.option("--origin", type=click.Choice(["real", "synthetic"]))
@click.option("--end-user", help="Only generations of this end user's sessions.")
@click.option("--tag", "tags", multiple=True, help="Only generations with this tag (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def similar_(
    generation: str, project: str, k: int, embedder: str | None, model: str | None,
    origin: str | None, end_user: str | None, tags: tuple[str, ...], as_json: bool,
) -> None:  # fmt: skip
    """Generations nearest to GENERATION (an id) by its stored embedding, itself left out:
    "find generations like this failing one". Nothing is re-embedded."""
    with _lake() as lake:
        proj = lake.project(project, create=False)
        hits = proj.similar(
            generation, k, embedder=embedder, model=model, origin=origin, end_user=end_user,
            tags=list(tags) or None,
        )  # fmt: skip
    _print_hits(hits, f"{len(hits)} generations like {generation}", as_json)


def _print_hits(hits: list, title: str, as_json: bool) -> None:
    if as_json:
        payload = [h.to_dict() for h in hits]
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=_json_default))
        return
    print_table(
        title,
        ["generation", "score", "text rank", "distance", "model", "snippet"],
        [(h.generation_id, round(h.score, 5), _digits(h.text_rank), _digits(h.vector_distance),
          h.model, _highlighted(" ".join(h.snippet.split())[:160])) for h in hits],
    )  # fmt: skip


def _highlighted(snippet: str) -> Any:
    """A snippet's ``<b>``…``</b>`` marks (from ``ts_headline``) as bold text."""
    from rich.text import Text

    text = Text()
    for n, part in enumerate(re.split(r"</?b>", snippet)):
        text.append(part, style="bold" if n % 2 else "")
    return text


def _digits(value: float | None) -> str | None:
    """A rank or distance for a table: four significant digits (``--json`` has them all)."""
    return None if value is None else f"{value:.4g}"


@bench.command(name="search")
@click.option(
    "--rows",
    default=100_000,
    show_default=True,
    type=click.IntRange(200),
    help="Generated generations (text and 384-d embeddings).",
)
@click.option("--queries", default=50, show_default=True, type=click.IntRange(5))
@click.option(
    "--vectors",
    default="text",
    show_default=True,
    type=click.Choice(["text", "clustered"]),
    help="hashing-384 vectors of the generated text, or random vectors around 200 centres.",
)
@click.option(
    "--minilm-texts",
    default=2000,
    show_default=True,
    type=click.IntRange(0),
    help="Also time MiniLM on this many texts (extra `embeddings`; 0 skips).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_search(rows: int, queries: int, vectors: str, minilm_texts: int, as_json: bool) -> None:
    """Search: HNSW build, recall@10, p50/p95 of text/vector/hybrid/filtered, ingest on/off,
    MiniLM embeddings/s."""
    from .bench.search import format_report, run_search_bench

    def say(message: str) -> None:
        click.echo(message, err=True)

    with _lake() as lake:
        result = run_search_bench(
            lake, rows=rows, queries=queries, vectors=vectors, minilm_texts=minilm_texts,
            progress=say,
        )  # fmt: skip
    click.echo(json.dumps(result, indent=2) if as_json else format_report(result))


@bench.command(name="export")
@click.option("--rows", default=100_000, show_default=True, type=click.IntRange(100))
@click.option("--pandas-rows", default=10_000, show_default=True, type=click.IntRange(10))
@click.option("--dvc", "with_dvc", is_flag=True, help="Also time a full `dvc repro` on the rows.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_export(rows: int, pandas_rows: int, with_dvc: bool, as_json: bool) -> None:
    """Dataset export: Parquet rows/s vs raw COPY TO STDOUT and pandas.read_sql."""
    from .bench.export import format_report, run_export_bench

    with _lake() as lake:
        result = run_export_bench(lake, rows=rows, pandas_rows=pandas_rows, dvc=with_dvc)
    click.echo(json.dumps(result, indent=2) if as_json else format_report(result))


@bench.command(name="tracking")
@click.option("--rows", default=10_000, show_default=True, type=click.IntRange(100))
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_tracking(rows: int, repeats: int, as_json: bool) -> None:
    """Time a tracked run adds to a logging job (runs row, DB metrics, MLflow)."""
    from .bench.tracking import format_report, run_tracking_bench

    with _lake() as lake:
        result = run_tracking_bench(lake, rows=rows, repeats=repeats)
    click.echo(json.dumps(result, indent=2) if as_json else format_report(result))


@bench.command(name="experiments")
@click.option("--items", default=500, show_default=True, type=click.IntRange(10))
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_experiments(items: int, as_json: bool) -> None:
    """Per-item overhead of proj.experiments.run against calling the task in a loop."""
    from .bench.experiments import format_report, run_experiments_bench

    with _lake() as lake:
        result = run_experiments_bench(lake, items=items)
    click.echo(json.dumps(result, indent=2) if as_json else format_report(result))


@bench.command(name="entities")
@click.option("--texts", default=3000, show_default=True, type=click.IntRange(10),
              help="~2 KB texts to time each extractor on.")  # fmt: skip
@click.option("--rows", default=20_000, show_default=True, type=click.IntRange(0),
              help="Generations of the project the graph queries run on (0: skip).")  # fmt: skip
@click.option("--queries", default=200, show_default=True, type=click.IntRange(1))
@click.option("--no-spacy", is_flag=True, help="Skip the NER extra.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_entities(texts: int, rows: int, queries: int, no_spacy: bool, as_json: bool) -> None:
    """Entity extraction generations/s, precision/recall per kind, graph query p50."""
    from .bench.entities import format_report, run_entities_bench

    with _lake() as lake:
        result = run_entities_bench(lake, texts=texts, rows=rows, queries=queries,
                                    spacy=not no_spacy)  # fmt: skip
    click.echo(json.dumps(result, indent=2) if as_json else format_report(result))


def _register_subcommands() -> None:
    from .datasets.cli import dataset
    from .experiments.cli import experiment, trends
    from .server.cli import bench_serve, keys, serve
    from .server.ui.cli import bench_ui

    main.add_command(dataset)
    main.add_command(experiment)
    main.add_command(trends)
    main.add_command(serve)
    main.add_command(keys)
    bench.add_command(bench_serve)
    bench.add_command(bench_ui)
    from .graph.cli import entities, lineage

    main.add_command(entities)
    main.add_command(lineage)


_register_subcommands()

if __name__ == "__main__":  # pragma: no cover
    main()
