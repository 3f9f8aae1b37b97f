"""How fast the bulk writer ingests, measured against the fastest way PostgreSQL can.

The bulk writer (``project.writer()``) promises to log at a large fraction of raw binary
COPY: it validates every record, hashes its content, checks references and isolates bad
rows, and all of that must not cost more than the database itself. This module measures
that promise on realistic rows (about 2 KB of text each) in one run, three ways, each into
its own fresh project:

``copy``
    Raw psycopg binary COPY of pre-built tuples into ``generations`` (sessions COPYed
    alongside), one transaction per batch: the practical ceiling. The tuples come from the
    writer's own :func:`~promptlake.ingest.records.prepare_generation` and
    :func:`~promptlake.ingest.writer.generation_tuple` and go through its ``COPY_SQL`` and
    ``COLUMN_TYPES`` (with the project's PII policy applied as the writer applies it), so
    the baseline stores exactly what the writer stores; building, validating and
    anonymizing them happens before the clock starts. It runs as the login of the lake's
    URL, because PostgreSQL refuses ``COPY FROM`` into a table under row-level security.
``writer``
    ``project.writer(batch_size=...)``: ``session()`` and ``log(**fields)`` per record,
    timed from the first call to the end of the final flush. Validation, the project's
    PII policy (anonymization at ingest), hashing, model lookup, reference checks and the
    writes are all inside the timed region.
``single``
    ``project.session(...)`` then ``session.log(...)`` per record, one transaction each: the
    per-call path, on a smaller number of rows. Opening the sessions is timed too, because
    an application logging call by call pays for it.

Fairness on a small shared machine (2 cores, the server on the same host): the input
records are generated once, before any timing; COPY and the writer alternate in an ABBA
order (``copy, writer, writer, copy`` for two repeats), so neither always runs first or
last and a drift (a growing table, autovacuum, page cache) falls on both; each method's
figure is its best run, because noise on a shared host only ever slows a run down; and a
``CHECKPOINT`` (where the login may issue one) starts every timed run from the same WAL
state, so a checkpoint triggered by the previous run's writes does not land in the middle
of the next one. The generated workload (over a million Python objects for 100k rows) is
moved out of the garbage collector's sight (``gc.freeze``) while the runs are timed: an
application streams its records instead of holding them all, and without the freeze every
full collection would rescan them at the expense of the writer, the method that allocates.
With the ABBA order the baseline gets the very first run, on the smallest table, so any
remaining bias understates the writer rather than flatters it.

Every stored count is verified with ``SELECT count(*)`` before the bench projects are
deleted (``DELETE FROM projects`` cascades), so repeated runs do not grow the database; the
tables are then vacuumed (where the login may), because a bulk load into the free space a
mass delete leaves behind runs several times slower, and the next bench would time that.
"""

from __future__ import annotations

import datetime as dt
import gc
import random
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg

from ..db.engine import make_engine
from ..errors import DatabaseError
from ..ids import uuid7
from ..ingest.records import prepare_generation
from ..ingest.writer import COLUMN_TYPES, COPY_SQL, generation_tuple
from . import as_login

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from ..client import Lake, Project

Progress = Callable[[str], None]

TARGET_RATIO = 0.5
"""The writer should ingest at no less than half the rate of raw binary COPY."""

METHODS = ("copy", "writer", "single")
LABELS = {
    "copy": "raw binary COPY",
    "writer": "project.writer()",
    "single": "session.log()",
}

SESSION_COPY_SQL = (
    "COPY sessions (project_id, id, end_user_id, name, tags, metadata, started_at)"
    " FROM STDIN (FORMAT BINARY)"
)
SESSION_COLUMN_TYPES = ["uuid", "uuid", "text", "text", "text[]", "jsonb", "timestamptz"]

# Prices per 1k prompt / completion tokens, only to make plausible costs.
MODELS: dict[str, tuple[float, float]] = {
    "gpt-4o": (0.0025, 0.01),
    "gpt-4o-mini": (0.00015, 0.0006),
    "claude-3-5-sonnet": (0.003, 0.015),
    "llama-3.1-70b-instruct": (0.00088, 0.00088),
    "mistral-large": (0.002, 0.006),
}
SYSTEM_PROMPTS = (
    "You are a helpful support assistant for an online store. Answer briefly and politely, "
    "cite the relevant policy when you refuse, and never invent order numbers or prices. "
    "If the customer is upset, acknowledge it before answering.",
    "You are a senior software engineer reviewing code. Point out bugs first, then risky "
    "patterns, then style. Quote the lines you mean and propose a concrete fix for each "
    "problem. Keep the review under five hundred words.",
    "You answer questions using only the retrieved context below. If the context does not "
    "contain the answer, say that you do not know. Cite the passage ids you used in square "
    "brackets after each sentence.",
    "You are a writing assistant. Rewrite the user's text to be clear and concise while "
    "keeping its meaning and tone. Do not add facts. Return only the rewritten text.",
)
_VOCABULARY = (
    "the a an of to in for on with by from about as at into over after before under "
    "order refund shipping delivery account password invoice customer product warranty "
    "return policy payment card address email support ticket issue problem answer "
    "request database query index table column row schema migration transaction lock "
    "replica function variable loop error exception test build deploy release version "
    "branch model prompt token context window latency cost evaluation dataset score "
    "label please thanks sorry help need want know think check update change cancel "
    "confirm quickly carefully usually sometimes never always again still already only "
    "also new old large small fast slow simple complex important possible available "
    "correct is are was were be been have has had do does did can could should would "
    "will may it this that these those they we you he she there here when where why how "
    "which what because although while if then else unless until since so but and or not "
    "no yes week day hour minute month year today yesterday tomorrow morning evening "
    "time price plan upgrade subscription trial discount coupon tax fee charge balance "
    "limit server client request response header body status code retry timeout cache "
    "memory user admin team manager engineer developer analyst owner reviewer writer "
    "reader"
)
# numbers as chat text has them (counts, versions, prices, times), none long enough to
# look like a phone, card or account number to the PII detector
_NUMBERS = "1 2 3 5 10 12 30 42 100 250 2024 2025 0.2 3.5 v2 v1.9.0 5% 99.9% $20 14:30 8GB #1207"
_WORDS = _VOCABULARY.split() * 2 + _NUMBERS.split()
_BREAKS = (" ", "\n\n", "\n- ")
_BREAK_WEIGHTS = (8, 1, 1)
_TAGS = ("prod", "beta", "eu", "us", "mobile", "web", "support", "internal")
_NAMES = ("chat.reply", "support.answer", "code.review", "rag.answer", "rewrite")
_REGIONS = ("eu-west-1", "us-east-1", "us-west-2", "ap-south-1")
_APP_VERSIONS = ("1.8.2", "1.9.0", "1.9.1", "2.0.0-rc1")
_GENERATORS = ("llama-3.1-405b-self-instruct", "gpt-4o-distill-v2")
_EPOCH = dt.datetime(2025, 1, 6, 8, 0, tzinfo=dt.UTC)


@dataclass
class BenchSession:
    """One conversation of the generated workload and its turns (``log`` keyword args)."""

    id: uuid.UUID
    end_user_id: str
    started_at: dt.datetime
    turns: list[dict[str, Any]] = field(default_factory=list)


# -- the workload --------------------------------------------------------------------


def make_workload(rows: int, seed: int = 0) -> list[BenchSession]:
    """Sessions of 1-5 chained turns holding exactly ``rows`` generations, reproducible
    from ``seed`` (ids included: version-7 UUIDs drawn from the seeded generator)."""
    rng = random.Random(seed)
    pool = _sentences(rng, 20_000)
    clock_ms = int(_EPOCH.timestamp() * 1000)
    sessions: list[BenchSession] = []
    made = 0
    while made < rows:
        clock_ms += rng.randint(50, 4000)
        session = BenchSession(
            id=_uuid7_at(clock_ms, rng),
            end_user_id=f"u-{rng.randint(1, 5000)}",
            started_at=_at(clock_ms),
        )
        synthetic = rng.random() < 0.10
        model = rng.choice(list(MODELS))
        seed_index = rng.randint(0, 99_999)
        parent: uuid.UUID | None = None
        for seq in range(min(rng.choice((1, 2, 3, 3, 4, 5)), rows - made)):
            clock_ms += rng.randint(2000, 90_000)
            turn = _turn(rng, pool, clock_ms, model, seq, parent)
            if synthetic:
                turn["origin"] = "synthetic"
                turn["generator"] = rng.choice(_GENERATORS)
                turn["lineage"] = {
                    "method": "self-instruct",
                    "pipeline_version": "2.3.1",
                    "seed_index": seed_index,
                }
            session.turns.append(turn)
            parent = turn["id"]
            made += 1
        sessions.append(session)
    return sessions


def _turn(
    rng: random.Random,
    pool: list[str],
    clock_ms: int,
    model: str,
    seq: int,
    parent: uuid.UUID | None,
) -> dict[str, Any]:
    budget = rng.randint(1300, 2600)  # bytes of text in messages and output together
    system = rng.choice(SYSTEM_PROMPTS)
    shape = rng.choice(("system-user", "user-assistant-user", "system-user-assistant-user"))
    roles = shape.split("-")
    spoken = [r for r in roles if r != "system"]
    output_bytes = int(budget * rng.uniform(0.35, 0.55))
    rest = budget - output_bytes - (len(system) if "system" in roles else 0)
    share = max(rest // len(spoken), 60)
    messages = [
        {"role": role, "content": system if role == "system" else _text(rng, share, pool)}
        for role in roles
    ]
    failed = rng.random() < 0.01
    output = None if failed else _text(rng, output_bytes, pool)
    prompt_tokens = sum(len(m["content"]) for m in messages) // 4
    completion_tokens = 0 if output is None else len(output) // 4
    price_in, price_out = MODELS[model]
    fields: dict[str, Any] = {
        "id": _uuid7_at(clock_ms, rng),
        "seq": seq,
        "parent": parent,
        "created_at": _at(clock_ms),
        "name": rng.choice(_NAMES),
        "model": model,
        "messages": messages,
        "output": output,
        "params": {
            "temperature": round(rng.uniform(0.0, 1.2), 2),
            "top_p": rng.choice((1.0, 0.95, 0.9)),
            "max_tokens": rng.choice((256, 512, 1024, 2048)),
        },
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "latency_ms": round(180 + completion_tokens * rng.uniform(8, 30), 1),
        "cost_usd": round(
            prompt_tokens / 1000 * price_in + completion_tokens / 1000 * price_out, 8
        ),
        "tags": rng.sample(_TAGS, rng.randint(0, 3)),
        "metadata": {
            "region": rng.choice(_REGIONS),
            "app_version": rng.choice(_APP_VERSIONS),
            "request_id": f"{rng.getrandbits(64):016x}",
        },
    }
    if parent is None:
        del fields["parent"]
    if failed:
        fields["status"] = "error"
        fields["error"] = "upstream timeout after 30 s"
        del fields["output"]
    return fields


def _text(rng: random.Random, nbytes: int, pool: list[str]) -> str:
    """About ``nbytes`` of text: whole sentences of ``pool`` (72 bytes on average) in
    paragraphs and the odd list, as model output and chat messages have them."""
    sentences = rng.choices(pool, k=nbytes // 72 + 1)
    breaks = rng.choices(_BREAKS, _BREAK_WEIGHTS, k=len(sentences))
    breaks[-1] = ""
    return "".join(s + b for s, b in zip(sentences, breaks, strict=True))


def _sentences(rng: random.Random, count: int) -> list[str]:
    """Sentences of 5-18 words to draw texts from (cheaper than composing every text)."""
    out = []
    for _ in range(count):
        sentence = " ".join(rng.choices(_WORDS, k=rng.randint(5, 18)))
        out.append(sentence[0].upper() + sentence[1:] + rng.choice(".....?!"))
    return out


def _uuid7_at(ms: int, rng: random.Random) -> uuid.UUID:
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rng.getrandbits(12) << 64
    value |= 0b10 << 62 | rng.getrandbits(62)
    return uuid.UUID(int=value)


def _at(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _take(sessions: list[BenchSession], rows: int) -> list[BenchSession]:
    """The leading sessions holding exactly ``rows`` turns (the last one cut short)."""
    out: list[BenchSession] = []
    left = rows
    for session in sessions:
        if left <= 0:
            break
        turns = session.turns[:left]
        out.append(BenchSession(session.id, session.end_user_id, session.started_at, turns))
        left -= len(turns)
    return out


def text_bytes(sessions: list[BenchSession]) -> int:
    """UTF-8 bytes of message contents and outputs: the text payload of the workload."""
    total = 0
    for session in sessions:
        for turn in session.turns:
            total += sum(len(m["content"].encode()) for m in turn["messages"])
            total += len((turn.get("output") or "").encode())
    return total


# -- the three methods ---------------------------------------------------------------


@dataclass
class _Bench:
    lake: Lake
    login: Engine  # the URL's own login: no application role, so no row-level security
    batch_size: int


@contextmanager
def _login(bench: _Bench) -> Iterator[psycopg.Connection]:
    """A connection as the login of the lake's URL, in one transaction."""
    raw = bench.login.raw_connection()
    try:
        conn: psycopg.Connection = raw.driver_connection  # type: ignore[assignment]
        with conn.transaction():
            yield conn
    finally:
        raw.close()


def _time_copy(bench: _Bench, project: Project, sessions: list[BenchSession]) -> float:
    """Pre-build the tuples, then time binary COPY of them, one transaction per batch.

    PostgreSQL refuses ``COPY FROM`` into a table under row-level security, so the
    baseline runs as the URL's login (a superuser for the embedded server), which the
    policies do not apply to: the ceiling the writer's own path is measured against."""
    settings = bench.lake.settings
    # the writer applies the project's PII policy at ingest: so do the pre-built rows
    anonymizer = getattr(project, "_anonymizer", None)
    extra = {"anonymize": anonymizer()} if anonymizer is not None else {}
    with _login(bench) as conn:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO models (project_id, id, name) VALUES (%s, %s, %s)",
                [(project.id, uuid7(), name) for name in MODELS],
            )
        model_ids = dict(
            conn.execute(
                "SELECT name, id FROM models WHERE project_id = %s", (project.id,)
            ).fetchall()
        )
    chunks: list[tuple[list[tuple], list[tuple]]] = []
    session_rows: list[tuple] = []
    generation_rows: list[tuple] = []
    for session in sessions:
        session_rows.append(
            (project.id, session.id, session.end_user_id, None, [], {}, session.started_at)
        )
        for turn in session.turns:
            row = prepare_generation(
                {**turn, "session": session.id},
                max_bytes=settings.max_text_bytes,
                max_attachment_bytes=settings.max_attachment_bytes,
                **extra,
            )
            generation_rows.append(generation_tuple(project.id, row, model_ids[row.model]))
            if len(generation_rows) == bench.batch_size:
                chunks.append((session_rows, generation_rows))
                session_rows, generation_rows = [], []
    if generation_rows or session_rows:
        chunks.append((session_rows, generation_rows))

    start = time.perf_counter()
    try:
        for session_batch, generation_batch in chunks:
            with _login(bench) as conn, conn.cursor() as cur:
                if session_batch:
                    with cur.copy(SESSION_COPY_SQL) as copy:
                        copy.set_types(SESSION_COLUMN_TYPES)
                        for values in session_batch:
                            copy.write_row(values)
                if generation_batch:
                    with cur.copy(COPY_SQL) as copy:
                        copy.set_types(COLUMN_TYPES)
                        for values in generation_batch:
                            copy.write_row(values)
    except (psycopg.errors.FeatureNotSupported, psycopg.errors.InsufficientPrivilege) as exc:
        raise DatabaseError(
            f"the raw COPY baseline was refused ({str(exc).strip()}): it needs a login that"
            " row-level security does not apply to (a superuser or a BYPASSRLS role)"
        ) from exc
    return time.perf_counter() - start


def write_workload(writer: Any, sessions: list[BenchSession]) -> None:
    """Log the workload through a bulk writer: each session, then its turns."""
    for session in sessions:
        writer.session(
            id=session.id, end_user_id=session.end_user_id, started_at=session.started_at
        )
        for turn in session.turns:
            writer.log(session=session.id, **turn)


def _time_writer(bench: _Bench, project: Project, sessions: list[BenchSession]) -> float:
    start = time.perf_counter()
    # the logging path alone, as raw COPY is (search indexing is bench search's subject)
    with project.writer(batch_size=bench.batch_size, index=False) as writer:
        write_workload(writer, sessions)
    elapsed = time.perf_counter() - start
    if writer.rejected:
        raise RuntimeError(
            f"the writer rejected {len(writer.rejected)} benchmark records; first: "
            f"{writer.rejected[0]}"
        )
    return elapsed


def _time_single(bench: _Bench, project: Project, sessions: list[BenchSession]) -> float:
    start = time.perf_counter()
    for session in sessions:
        handle = project.session(session.end_user_id, id=session.id)
        for turn in session.turns:
            handle.log(**turn)
    return time.perf_counter() - start


def _time_writer_no_policy(bench: _Bench, project: Project, sessions: list[BenchSession]) -> float:
    """The writer in a project whose policy anonymizes nothing at ingest (export-only): the
    same path without PII detection, to price the default policy."""
    project.set_pii_policy({}, apply_at="export")
    return _time_writer(bench, project, sessions)


_TIMERS: dict[str, Callable[[_Bench, Project, list[BenchSession]], float]] = {
    "copy": _time_copy,
    "writer": _time_writer,
    "single": _time_single,
    "nopolicy": _time_writer_no_policy,
}
LABELS["nopolicy"] = "writer, no PII policy"
POLICY_TARGET = 0.8
"""Ingest under the default PII policy should keep >= 80% of the rows/s without one."""


# -- the run -------------------------------------------------------------------------


def run_ingest_bench(
    lake: Lake,
    rows: int = 20_000,
    single_rows: int = 500,
    seed: int = 0,
    progress: Progress | None = None,
    *,
    batch_size: int = 5000,
    repeats: int = 2,
    policy_baseline: bool = False,
) -> dict[str, Any]:
    """Load ``rows`` generations by raw COPY and by the bulk writer (``repeats`` times
    each, ABBA order) and ``single_rows`` by ``session.log``; return the figures.

    The result is plain JSON: ``rows_per_s`` (best run per method; ``single`` is None when
    ``single_rows`` is 0), ``writer_vs_copy`` (their ratio; the target is
    :data:`TARGET_RATIO`), ``bytes_per_row`` (average stored size of a row,
    ``pg_column_size``), ``text_bytes_per_row`` (message and output text generated per
    row), ``stored`` (the verified ``count(*)`` of every run, by method) and ``runs`` (each
    timed run). ``progress``, if given, receives one line per step.

    The writer and ``session.log`` run as the lake does; the COPY baseline, the counts
    and the clean-up use the login of the lake's URL, which must be allowed past
    row-level security (the embedded server's is). Raises :class:`RuntimeError` if a run
    stored a different number of rows than it was given.
    """
    if rows < 1 or single_rows < 0 or batch_size < 1 or repeats < 1:
        raise ValueError("rows, batch_size and repeats must be positive; single_rows >= 0")
    say = progress or (lambda _line: None)

    say(f"generating {max(rows, single_rows):,} records (seed {seed})")
    workload = make_workload(max(rows, single_rows), seed)
    bulk = _take(workload, rows)
    single = _take(workload, single_rows)
    tag = secrets.token_hex(4)
    plan = [
        (method, repeat)
        for repeat in range(repeats)
        for method in (("copy", "writer") if repeat % 2 == 0 else ("writer", "copy"))
    ]
    if policy_baseline:  # the writer without PII detection, interleaved the same way
        plan = [
            step
            for repeat in range(repeats)
            for step in (
                [m for m in plan if m[1] == repeat] + [("nopolicy", repeat)]
                if repeat % 2 == 0
                else [("nopolicy", repeat)] + [m for m in plan if m[1] == repeat]
            )
        ]
    if single_rows:
        plan.append(("single", 0))

    bench = _Bench(lake, make_engine(lake.url), batch_size)
    created: list[Project] = []
    runs: list[dict[str, Any]] = []
    bytes_per_row: float | None = None
    gc.collect()
    gc.freeze()
    try:
        for method, repeat in plan:
            sessions = single if method == "single" else bulk
            expected = single_rows if method == "single" else rows
            project = lake.project(
                f"bench-ingest-{method}-{tag}-{repeat + 1}",
                description="temporary: promptlake bench ingest (deleted when it ends)",
            )
            created.append(project)
            _checkpoint(bench)
            seconds = _TIMERS[method](bench, project, sessions)
            stored = _count(bench, project)
            if method == "writer" and bytes_per_row is None:
                bytes_per_row = _stored_bytes_per_row(bench, project)
            runs.append(
                {
                    "method": method,
                    "repeat": repeat + 1,
                    "rows": expected,
                    "stored": stored,
                    "seconds": round(seconds, 4),
                    "rows_per_s": round(expected / seconds, 1),
                }
            )
            say(
                f"{LABELS[method]} #{repeat + 1}: {expected:,} rows in {seconds:.2f} s"
                f" ({expected / seconds:,.0f} rows/s)"
            )
    finally:
        gc.unfreeze()
        try:
            _drop(bench, created)
            say(f"removed {len(created)} bench projects")
            if created and _vacuum(bench):
                say("vacuumed generations and sessions")
        finally:
            bench.login.dispose()

    wrong = [r for r in runs if r["stored"] != r["rows"]]
    if wrong:
        raise RuntimeError(
            "benchmark rows went missing: "
            + "; ".join(f"{r['method']} stored {r['stored']} of {r['rows']}" for r in wrong)
        )
    best = {
        method: max((r["rows_per_s"] for r in runs if r["method"] == method), default=None)
        for method in METHODS
    }
    ratio = best["writer"] / best["copy"]  # type: ignore[operator]
    policy = None
    if policy_baseline:
        bare = max(r["rows_per_s"] for r in runs if r["method"] == "nopolicy")
        policy = {
            "writer_no_policy_rows_per_s": bare,
            "default_vs_no_policy": round(best["writer"] / bare, 3),  # type: ignore[operator]
            "target": POLICY_TARGET,
            "meets_target": best["writer"] / bare >= POLICY_TARGET,  # type: ignore[operator]
        }
    return {
        "policy": policy,
        "rows": rows,
        "single_rows": single_rows,
        "batch_size": batch_size,
        "repeats": repeats,
        "seed": seed,
        "rows_per_s": best,
        "writer_vs_copy": round(ratio, 3),
        "target": TARGET_RATIO,
        "meets_target": ratio >= TARGET_RATIO,
        "bytes_per_row": round(bytes_per_row or 0.0, 1),
        "text_bytes_per_row": round(text_bytes(bulk) / rows, 1),
        "stored": {m: [r["stored"] for r in runs if r["method"] == m] for m in METHODS},
        "runs": runs,
    }


def format_report(result: dict[str, Any]) -> str:
    """A short table of the figures of :func:`run_ingest_bench`."""
    best_of = f"best of {result['repeats']}"
    lines = [
        f"ingest benchmark: {result['rows']:,} rows of ~{result['text_bytes_per_row']:,.0f} B"
        f" text ({result['bytes_per_row']:,.0f} B stored per row), batch {result['batch_size']:,}",
        f"  {'method':<20}{'rows':>10}{'rows/s':>12}",
    ]
    for method in METHODS:
        rate = result["rows_per_s"][method]
        if rate is None:
            continue
        count = result["single_rows"] if method == "single" else result["rows"]
        note = f"  ({best_of})" if method != "single" else ""
        lines.append(f"  {LABELS[method]:<20}{count:>10,}{rate:>12,.0f}{note}")
    verdict = "met" if result["meets_target"] else "NOT met"
    lines.append(
        f"  writer / COPY: {result['writer_vs_copy']:.2f}x"
        f"  (target >= {result['target']:.1f}x: {verdict})"
    )
    policy = result.get("policy")
    if policy:
        verdict = "met" if policy["meets_target"] else "NOT met"
        lines.append(
            f"  writer without a PII policy: {policy['writer_no_policy_rows_per_s']:,.0f} rows/s;"
            f" default policy / none: {policy['default_vs_no_policy']:.2f}x"
            f"  (target >= {policy['target']:.1f}x: {verdict})"
        )
    return "\n".join(lines)


# -- helpers -------------------------------------------------------------------------


def _checkpoint(bench: _Bench) -> None:
    """Flush dirty pages before a timed run, where the login is allowed to (superuser or
    pg_checkpoint; otherwise the runs are merely noisier)."""
    as_login(bench.lake, "CHECKPOINT")


def _count(bench: _Bench, project: Project) -> int:
    with _login(bench) as conn:
        row = conn.execute(
            "SELECT count(*) FROM generations WHERE project_id = %s", (project.id,)
        ).fetchone()
    return int(row[0]) if row else 0


def _stored_bytes_per_row(bench: _Bench, project: Project) -> float:
    with _login(bench) as conn:
        row = conn.execute(
            "SELECT avg(pg_column_size(g.*))::float8 FROM generations g WHERE project_id = %s",
            (project.id,),
        ).fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


def _drop(bench: _Bench, projects: list[Project]) -> None:
    """Delete the bench projects; the foreign keys cascade to everything they hold."""
    if not projects:
        return
    with _login(bench) as conn:
        conn.execute("DELETE FROM projects WHERE id = ANY(%s)", ([p.id for p in projects],))
    for project in projects:
        bench.lake._projects.pop(project.name, None)  # the cached handle points at nothing


def _vacuum(bench: _Bench) -> bool:
    """VACUUM the tables the bench filled, where the login may, so that their emptied tail
    is truncated. Left to autovacuum, the space stays in the tables' free-space maps, and
    the next bulk load into it (the first run of the next bench) is measured at a fraction
    of its speed: 1.7-3k instead of ~10k rows/s for raw COPY on these machines."""
    return as_login(bench.lake, "VACUUM generations, sessions")
