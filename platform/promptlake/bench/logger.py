"""What the non-blocking logger buys an application: ``proj.logger()`` against
``Session.log`` and against MLflow's synchronous tracing, on the same data, in one run.

The data: sessions of 20 chained turns, each a 1 KB prompt and a 1.2 KB output (plus
model, parameters, tokens, latency), generated before any timing. Methods, each into a
fresh project (MLflow: a fresh experiment in its own database on the same server):

``session_log``
    ``project.session(...)`` then ``session.log(...)`` per turn, one thread: a commit per
    call (the per-call baseline).
``session_log_threads``
    The same from ``threads`` threads at once (the connection pool shared), so that the
    logger's concurrent figure has a concurrent baseline too.
``logger``
    ``proj.logger()`` from ``threads`` threads: ``calls_per_s`` is generations over the
    time until the last ``log()`` returned (each after its record's fsync), ``stored_per_s``
    generations over the time until ``close()`` returned (everything in the database).
``logger_1``
    ``proj.logger()`` from one thread: every call waits for its own fsync.
``mlflow``
    MLflow tracing with synchronous export (``MLFLOW_ENABLE_ASYNC_TRACE_LOGGING=false``):
    one trace with one LLM span per turn (inputs, outputs, attributes), the trace stored in
    PostgreSQL before the call returns; telemetry off.

Stored counts are checked in the database (a method that stored less fails the bench).
Then ``trials`` kill -9 trials: a process logging through ``proj.logger()`` prints each
id whose ``log()`` returned and is killed with SIGKILL at a random moment; ``replay`` of
its journal, then every acknowledged id must be stored, once (lost and duplicated: 0).
A small shared machine makes every figure noisy; the ratios within one run are the figures.
"""

from __future__ import annotations

import base64
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import as_login, drop_projects

if TYPE_CHECKING:
    from ..client import Lake

PREFIX = "bench-logging-"
TURNS = 20
MLFLOW_DATABASE = "promptlake_bench_mlflow"
Progress = Callable[[str], None]

_VOCABULARY = (
    "the a of to in for on with order refund shipping account password invoice "
    "customer product warranty return policy payment card support ticket issue answer "
    "request database query index table column row schema migration transaction "
    "replica function error exception test build deploy release version model prompt "
    "token context latency cost evaluation dataset score label please thanks help "
    "need know check update change"
)
_WORDS = _VOCABULARY.split()


def _text(rng: random.Random, size: int) -> str:
    words: list[str] = []
    length = 0
    while length <= size:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:size]


def make_sessions(count: int, seed: int = 0) -> list[list[dict[str, Any]]]:
    """``count`` sessions of :data:`TURNS` turns: 1 KB prompts, 1.2 KB outputs."""
    rng = random.Random(seed)
    return [
        [
            {
                "prompt": _text(rng, 1000),
                "output": _text(rng, 1200),
                "model": rng.choice(("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet")),
                "params": {"temperature": 0.2, "max_tokens": 512},
                "prompt_tokens": 250,
                "completion_tokens": 300,
                "latency_ms": rng.uniform(300, 3000),
            }
            for _ in range(TURNS)
        ]
        for _ in range(count)
    ]


def _split(sessions: list, threads: int) -> list[list]:
    return [sessions[k::threads] for k in range(threads)]


def _run_threads(work: Callable[[list], None], parts: list[list]) -> None:
    errors: list[BaseException] = []

    def run(part: list) -> None:
        try:
            work(part)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(p,)) for p in parts]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]


def _session_log(lake: Lake, name: str, sessions: list, threads: int) -> dict[str, Any]:
    project = lake.project(name)
    project.set_pii_policy(apply_at="export")
    as_login(lake, "CHECKPOINT")

    def work(part: list) -> None:
        for turns in part:
            session = project.session(end_user_id="u")
            parent = None
            for turn in turns:
                parent = session.log(parent=parent, **turn)

    started = time.perf_counter()
    _run_threads(work, _split(sessions, threads))
    seconds = time.perf_counter() - started
    return _figures(project, sessions, seconds, seconds, threads)


def _logger(lake: Lake, name: str, sessions: list, threads: int) -> dict[str, Any]:
    project = lake.project(name)
    project.set_pii_policy(apply_at="export")
    as_login(lake, "CHECKPOINT")
    started = time.perf_counter()
    logger = project.logger()
    waits: list[float] = []  # seconds each log() took (list.append is thread-safe)

    def work(part: list) -> None:
        clock = time.perf_counter
        for turns in part:
            session = logger.session(end_user_id="u")
            parent = None
            for turn in turns:
                before = clock()
                parent = session.log(parent=parent, **turn)
                waits.append(clock() - before)

    _run_threads(work, _split(sessions, threads))
    returned = time.perf_counter() - started
    logger.close()
    stored = time.perf_counter() - started
    result = _figures(project, sessions, returned, stored, threads)
    stats = logger.stats
    result["records_per_fsync"] = round(stats.acknowledged / max(stats.fsyncs, 1), 2)
    result["mean_fsync_ms"] = round(stats.fsync_seconds / max(stats.fsyncs, 1) * 1000, 3)
    result["max_fsync_ms"] = round(stats.max_fsync_ms, 3)
    waits.sort()
    for name, q in (("p50", 0.5), ("p99", 0.99)):
        result[f"log_{name}_ms"] = round(waits[min(len(waits) - 1, int(q * len(waits)))] * 1000, 3)
    return result


def _figures(project: Any, sessions: list, returned: float, stored: float, threads: int) -> dict:
    expected = sum(len(t) for t in sessions)
    _, rows = project.query("SELECT count(*) FROM generations")
    if rows[0][0] != expected:
        raise RuntimeError(f"{project.name}: stored {rows[0][0]} of {expected} generations")
    return {
        "threads": threads,
        "generations": expected,
        "calls_per_s": round(expected / returned, 1),
        "stored_per_s": round(expected / stored, 1),
    }


def _mlflow_uri(lake: Lake) -> str:
    import sqlalchemy as sa

    url = sa.engine.make_url(lake.url)
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": MLFLOW_DATABASE}
            ).first()
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{MLFLOW_DATABASE}"'))
    finally:
        engine.dispose()
    return url.set(database=MLFLOW_DATABASE).render_as_string(hide_password=False)


_MLFLOW_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_ENABLE_ASYNC_TRACE_LOGGING",
    "MLFLOW_DISABLE_TELEMETRY",
)


def _mlflow(lake: Lake, sessions: list, say: Progress) -> dict[str, Any]:
    """MLflow's part, leaving the process's environment as it found it (MLflow's
    ``set_tracking_uri`` also sets ``MLFLOW_TRACKING_URI``, which would redirect every
    later ``proj.run`` of the process)."""
    saved = {key: os.environ.get(key) for key in _MLFLOW_ENV}
    try:
        return _mlflow_traces(lake, sessions, say)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _mlflow_traces(lake: Lake, sessions: list, say: Progress) -> dict[str, Any]:
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"  # each trace stored at once
    import mlflow
    import sqlalchemy as sa

    uri = _mlflow_uri(lake)
    say("opening MLflow's store (its own database)")
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.set_experiment(f"promptlake-bench-logging-{uuid.uuid4().hex[:8]}")
    as_login(lake, "CHECKPOINT")
    started = time.perf_counter()
    for turns in sessions:
        session_id = str(uuid.uuid4())
        for turn in turns:
            with mlflow.start_span(name="chat", span_type="LLM") as span:
                span.set_inputs({"prompt": turn["prompt"], "params": turn["params"]})
                span.set_outputs({"output": turn["output"]})
                span.set_attributes(
                    {
                        "model": turn["model"],
                        "prompt_tokens": turn["prompt_tokens"],
                        "completion_tokens": turn["completion_tokens"],
                    }
                )
                mlflow.update_current_trace(metadata={"mlflow.trace.session": session_id})
    seconds = time.perf_counter() - started
    mlflow.flush_trace_async_logging()  # nothing should be left; counted below either way
    engine = sa.create_engine(uri)
    try:
        with engine.connect() as conn:
            stored = conn.execute(
                sa.text("SELECT count(*) FROM trace_info WHERE experiment_id = :e"),
                {"e": int(experiment.experiment_id)},
            ).scalar_one()
    finally:
        engine.dispose()
    expected = sum(len(t) for t in sessions)
    if stored != expected:
        raise RuntimeError(f"MLflow stored {stored} of {expected} traces")
    return {
        "threads": 1,
        "generations": expected,
        "calls_per_s": round(expected / seconds, 1),
        "stored_per_s": round(expected / seconds, 1),
    }


CHILD = """
import sys, promptlake
from promptlake.bench.logger import make_sessions
sessions = make_sessions(200, seed=int(sys.argv[1]))
with promptlake.connect() as lake:
    logger = lake.project(sys.argv[2]).logger()
    for turns in sessions:
        s = logger.session(end_user_id="u")
        print(s.id, flush=True)
        parent = None
        for turn in turns:
            parent = s.log(parent=parent, **turn)
            print(parent.id, flush=True)
"""


def kill_trials(lake: Lake, trials: int, seed: int = 0) -> dict[str, Any]:
    """Processes logging through ``proj.logger()`` killed with -9, then ``replay``."""
    from ..ingest import journal

    rng = random.Random(seed)
    name = f"{PREFIX}kill"
    project = lake.project(name)
    project.set_pii_policy(apply_at="export")
    results = []
    with tempfile.TemporaryDirectory(prefix="promptlake-bench-kill-") as home:
        # a journal folder of its own, and the store's master key (a child with another
        # home would otherwise have none, and the store refuses a start without it)
        key = base64.b64encode(lake.master_key()).decode()
        env = {
            **os.environ,
            "PROMPTLAKE_DATABASE_URL": lake.url,
            "PROMPTLAKE_HOME": home,
            "PROMPTLAKE_VAULT_KEY": key,
        }
        for trial in range(trials):
            acknowledged: set[uuid.UUID] = set()
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD, str(trial), name], env=env, stdout=subprocess.PIPE
            )
            assert child.stdout is not None
            target = rng.randint(200, 2000)
            while len(acknowledged) < target:
                line = child.stdout.readline()
                if not line:
                    raise RuntimeError("the logging process ended before it was killed")
                acknowledged.add(uuid.UUID(line.decode().strip()))
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            acknowledged |= {uuid.UUID(x.decode()) for x in child.stdout.read().splitlines()}
            report = journal.replay(lake, journal.journals(Path(home)))
            _, rows = project.query("SELECT id FROM generations UNION ALL SELECT id FROM sessions")
            stored = [r[0] for r in rows]
            results.append(
                {
                    "acknowledged": len(acknowledged),
                    "replayed": report.stored,
                    "already_stored": report.duplicates,
                    "lost": len(acknowledged - set(stored)),
                    "duplicated": len(stored) - len(set(stored)),
                    "replay_rejected": len(report.rejected),
                }
            )
    return {
        "trials": results,
        "acknowledged": sum(r["acknowledged"] for r in results),
        "lost": sum(r["lost"] for r in results),
        "duplicated": sum(r["duplicated"] for r in results),
    }


def run_logging_bench(
    lake: Lake,
    sessions: int = 250,
    threads: int = 8,
    single_sessions: int = 25,
    mlflow_sessions: int = 10,
    trials: int = 3,
    progress: Progress | None = None,
) -> dict[str, Any]:
    say = progress or (lambda message: None)
    drop_projects(lake, PREFIX)
    data = make_sessions(max(sessions, single_sessions, mlflow_sessions), seed=1)
    result: dict[str, Any] = {
        "turns_per_session": TURNS,
        "prompt_bytes": 1000,
        "output_bytes": 1200,
    }
    say(f"Session.log, 1 thread: {single_sessions * TURNS} generations")
    result["session_log"] = _session_log(lake, f"{PREFIX}single", data[:single_sessions], 1)
    say(f"Session.log, {threads} threads: {single_sessions * TURNS} generations")
    result["session_log_threads"] = _session_log(
        lake, f"{PREFIX}single-threads", data[:single_sessions], threads
    )
    say(f"proj.logger(), {threads} threads: {sessions * TURNS} generations")
    result["logger"] = _logger(lake, f"{PREFIX}logger", data[:sessions], threads)
    say(f"proj.logger(), 1 thread: {single_sessions * TURNS} generations")
    result["logger_1"] = _logger(lake, f"{PREFIX}logger-1", data[:single_sessions], 1)
    if mlflow_sessions:
        say(f"MLflow synchronous tracing: {mlflow_sessions * TURNS} traces")
        result["mlflow"] = _mlflow(lake, data[:mlflow_sessions], say)
    if trials:
        say(f"{trials} kill -9 trials")
        result["kill"] = kill_trials(lake, trials)
    drop_projects(lake, PREFIX, vacuum="generations, sessions")
    base = result["session_log"]["stored_per_s"]
    logger = result["logger"]
    result["ratios"] = {
        "logger_calls_vs_session_log": round(logger["calls_per_s"] / base, 2),
        "logger_stored_vs_session_log": round(logger["stored_per_s"] / base, 2),
        "logger_stored_vs_session_log_threads": round(
            logger["stored_per_s"] / result["session_log_threads"]["stored_per_s"], 2
        ),
        "logger_1_stored_vs_session_log": round(result["logger_1"]["stored_per_s"] / base, 2),
    }
    if "mlflow" in result:
        mlflow_rate = result["mlflow"]["stored_per_s"]
        result["ratios"]["logger_stored_vs_mlflow"] = round(logger["stored_per_s"] / mlflow_rate, 1)
        result["ratios"]["session_log_vs_mlflow"] = round(base / mlflow_rate, 1)
    return result


def format_report(result: dict[str, Any]) -> str:
    lines = [
        f"logging bench: sessions of {result['turns_per_session']} turns, 1 KB prompts,"
        " 1.2 KB outputs (one run; a shared machine: noisy)",
    ]
    labels = {
        "session_log": "Session.log",
        "session_log_threads": "Session.log",
        "logger": "proj.logger()",
        "logger_1": "proj.logger()",
        "mlflow": "MLflow sync tracing",
    }
    for key, label in labels.items():
        if key not in result:
            continue
        r = result[key]
        extra = ""
        if "records_per_fsync" in r:
            extra = (
                f", log() p50 {r['log_p50_ms']} ms p99 {r['log_p99_ms']} ms,"
                f" {r['records_per_fsync']} records/fsync, fsync mean {r['mean_fsync_ms']} ms"
            )
        lines.append(
            f"  {label:<20} {r['threads']:>2} thr  {r['generations']:>6,} gens"
            f"  log() returned {r['calls_per_s']:>9,.1f}/s  stored {r['stored_per_s']:>9,.1f}/s"
            + extra
        )
    ratios = result["ratios"]
    lines.append(
        f"  logger stored vs Session.log: {ratios['logger_stored_vs_session_log']}x (target >= 10x;"
        f" calls {ratios['logger_calls_vs_session_log']}x; vs Session.log from the same threads"
        f" {ratios['logger_stored_vs_session_log_threads']}x; one calling thread"
        f" {ratios['logger_1_stored_vs_session_log']}x)"
    )
    if "logger_stored_vs_mlflow" in ratios:
        lines.append(
            f"  logger stored vs MLflow sync tracing: {ratios['logger_stored_vs_mlflow']}x"
            f" (target >= 100x); Session.log vs MLflow {ratios['session_log_vs_mlflow']}x"
        )
    if "kill" in result:
        k = result["kill"]
        lines.append(
            f"  kill -9 trials: {len(k['trials'])}, acknowledged {k['acknowledged']:,},"
            f" lost {k['lost']}, duplicated {k['duplicated']} (target 0 and 0)"
        )
    return "\n".join(lines)
