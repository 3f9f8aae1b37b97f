"""The background logger (``proj.logger()``): acknowledged means fsynced, everything is
stored on close, a full queue waits, and a process killed with -9 loses nothing it
acknowledged: ``replay`` stores the rest, each record exactly once."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

import promptlake
from promptlake.ingest import journal

BODY = "lorem ipsum dolor sit amet " * 40


def _ids(project) -> list[uuid.UUID]:
    return [r[0] for r in project.query("SELECT id FROM generations")[1]]


def test_log_returns_after_fsync_and_close_stores_everything(project, tmp_path) -> None:
    with project.logger() as logger:
        s = logger.session(end_user_id="u-1", tags=["bg"])
        first = s.log(prompt="q1", output="a1", model="gpt-4o", prompt_tokens=3)
        second = s.log(
            messages=[{"role": "user", "content": "q2"}], output="a2", model="gpt-4o", parent=first
        )
        assert logger.stats.acknowledged == 3  # the session and both generations
        assert all(p.exists() for p in logger.journal_files)
        segment = logger.journal_files[0].read_bytes()
        assert str(first.id).encode() in segment and str(second.id).encode() in segment
    assert logger.journal_files == []
    assert list(journal.journal_dir(project.lake.settings.home).glob("*.jsonl")) == []
    assert logger.stats.stored == 2 and logger.rejected == []
    history = project.history(s.id)
    assert [g.id for g in history] == [first.id, second.id]
    assert [g.seq for g in history] == [0, 1]
    assert history[1].parent_id == first.id
    assert history[0].content_hash == first.content_hash
    assert history[0].prompt_tokens == 3


def test_bad_record_raises_in_the_caller(project) -> None:
    with project.logger() as logger:
        with pytest.raises(promptlake.ValidationError, match="prompt_tokens"):
            logger.log(prompt="q", output="a", prompt_tokens=-1)
        with pytest.raises(promptlake.ValidationError, match="embedding"):
            logger.log(prompt="q", output="a", embedding=[0.1])
    assert logger.stats.logged == 0 and _ids(project) == []
    with pytest.raises(promptlake.ValidationError, match="max_pending"):
        project.logger(max_pending=0)


def test_concurrent_callers_share_fsyncs(project) -> None:
    threads, each = 8, 60
    with project.logger() as logger:

        def work(k: int) -> None:
            for i in range(each):
                logger.log(prompt=f"{k}-{i} {BODY}", output=BODY, model="m")

        workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        logger.flush()
        assert logger.stats.stored == threads * each
        assert logger.stats.fsyncs < logger.stats.acknowledged  # group commit happened
    ids = _ids(project)
    assert len(ids) == len(set(ids)) == threads * each


def test_alog_does_not_block_the_loop(project) -> None:
    async def main(logger) -> list:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        tick = asyncio.create_task(ticker())
        done = await asyncio.gather(*(logger.alog(prompt=f"q{i}", output="a") for i in range(40)))
        tick.cancel()
        assert ticks > 0
        return done

    with project.logger() as logger:
        done = asyncio.run(main(logger))
        assert logger.stats.fsyncs < 40
    assert sorted(_ids(project)) == sorted(g.id for g in done)


def test_full_queue_applies_back_pressure(project) -> None:
    logger = project.logger(max_pending=5, batch_size=5, flush_interval=0.0)
    release = threading.Event()
    original = logger._store

    def slow_store(batch) -> None:
        release.wait(10)
        original(batch)

    logger._store = slow_store  # the database "slow": the flusher waits
    returned: list[int] = []

    def caller() -> None:
        for i in range(12):
            logger.log(prompt=f"q{i}", output="a")
            returned.append(i)

    thread = threading.Thread(target=caller)
    thread.start()
    deadline = time.monotonic() + 10
    while logger.stats.waits_for_space == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert logger.stats.waits_for_space >= 1
    assert len(returned) <= 5  # blocked, not dropped
    release.set()
    thread.join(10)
    logger.close()
    assert len(returned) == 12 and len(_ids(project)) == 12


def test_replay_skips_a_live_logger_and_closed_logger_refuses(project, lake) -> None:
    logger = project.logger(batch_size=10**6, flush_interval=3600)
    g = logger.log(prompt="q", output="a")
    report = journal.replay(lake)  # the live segment is locked: not taken
    assert report.files == 0 and _ids(project) == []
    logger.close()
    assert _ids(project) == [g.id]
    with pytest.raises(promptlake.LoggerClosedError):
        logger.log(prompt="q", output="a")


def test_replay_reads_a_preallocated_segment_up_to_its_unused_end(project, lake) -> None:
    """A segment as a killed process leaves it: records, then a torn line, then zeros."""
    logger = project.logger(batch_size=10**6, flush_interval=3600)

    def broken(batch) -> None:
        raise RuntimeError("simulated crash")

    logger._store = broken  # the flusher never stores: the process "dies" with its journal
    kept = [logger.log(prompt=f"q{i}", output="a") for i in range(3)]
    with pytest.raises(promptlake.LoggerClosedError, match="simulated crash"):
        logger.close()
    (path,) = journal.journals(lake.settings.home)  # kept, and unlocked now
    copy = path.with_name(f"{project.id}-copy.jsonl")
    data = path.read_bytes()
    copy.write_bytes(data[: data.index(b"\0")] + b'{"v": 1, "kind": "genera' + bytes(4096))
    path.unlink()
    report = journal.replay(lake, [copy])
    assert report.stored == 3 and report.rejected == [] and not copy.exists()
    assert sorted(_ids(project)) == sorted(g.id for g in kept)


CHILD = """
import sys, promptlake
body = "lorem ipsum dolor sit amet " * 40
with promptlake.connect() as lake:
    logger = lake.project("crash").logger(batch_size=100, flush_interval=0.01)
    s = logger.session(end_user_id="u")
    print(s.id, flush=True)
    parent = None
    for i in range(100_000):
        parent = s.log(prompt=f"{i} {body}", output=body, model="m", parent=parent)
        print(parent.id, flush=True)
"""


def test_kill_9_loses_nothing_acknowledged(lake, database_url, tmp_path) -> None:
    env = {
        **os.environ,
        "PROMPTLAKE_DATABASE_URL": database_url,
        "PROMPTLAKE_HOME": str(lake.settings.home),
    }
    env["PYTHONPATH"] = str(Path(promptlake.__file__).parents[1])
    rng = random.Random(17)
    project = lake.project("crash")
    acknowledged: set[uuid.UUID] = set()
    replayed = 0
    for _trial in range(3):
        child = subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=subprocess.PIPE)
        assert child.stdout is not None
        target = rng.randint(50, 400)
        lines = 0
        while lines < target:
            line = child.stdout.readline()
            assert line, "the logging process ended early"
            acknowledged.add(uuid.UUID(line.decode().strip()))
            lines += 1
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        for line in child.stdout.read().splitlines():  # printed before the kill
            acknowledged.add(uuid.UUID(line.decode()))
        report = journal.replay(lake)
        assert report.rejected == []
        replayed += report.stored + report.duplicates
    assert replayed > 0  # the killed processes left journals behind
    assert journal.journals(lake.settings.home) == []
    generations = _ids(project)
    sessions = {r[0] for r in project.query("SELECT id FROM sessions")[1]}
    assert len(generations) == len(set(generations))  # nothing twice
    missing = acknowledged - set(generations) - sessions
    assert missing == set()


def test_threads_sharing_a_lake_log_new_models(project) -> None:
    """Model ids learnt in one thread's transaction are cached only after it committed,
    never by another thread's commit (the flusher and the application share a Lake)."""
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(10):
                project.log(prompt=f"{k}-{i}", output="a", model=f"model-{i % 3}")
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(k,)) for k in range(12)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == [] and len(_ids(project)) == 120


def test_database_outage_follows_the_writers_journal_path(
    project, lake, admin_url, database_url
) -> None:
    import psycopg
    import sqlalchemy as sa

    name = sa.engine.make_url(database_url).database
    admin = admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
    logger = project.logger(retry_seconds=0.5, flush_interval=3600, batch_size=10**6)
    logged = [logger.log(prompt=f"q{i}", output="a") for i in range(5)]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
    try:
        logger.close()  # the flush retries, then the writer journals the batch
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    assert logger.stats.journaled == 5 and logger.stats.stored == 0
    (kept,) = journal.journals(lake.settings.home)  # the writer's file; the segments are gone
    report = journal.replay(lake, [kept])
    assert report.stored == 5
    assert sorted(_ids(project)) == sorted(g.id for g in logged)


def test_journal_never_holds_what_the_pii_policy_removed(project) -> None:
    project.set_pii_policy({"EMAIL": "redact"}, vault=True)
    with project.logger(batch_size=10**6, flush_interval=3600) as logger:
        g = logger.log(prompt="Mail me at jane@example.com", output="ok")
        segment = logger.journal_files[0].read_bytes()
        assert b"jane@example.com" not in segment and b"<EMAIL>" in segment
        assert g.input_text == "Mail me at <EMAIL>"
    assert project.generation(g.id).input_text == "Mail me at <EMAIL>"
    assert project.reveal(g)["input_text"] == "Mail me at jane@example.com"


EXIT_CHILD = """
import promptlake
lake = promptlake.connect()
logger = lake.project("exit").logger(flush_interval=3600, batch_size=10**6)
for i in range(10):
    logger.log(prompt=f"q{i}", output="a")
# no close(): the interpreter's exit flushes
"""


def test_interpreter_exit_flushes_an_open_logger(lake, database_url) -> None:
    env = {
        **os.environ,
        "PROMPTLAKE_DATABASE_URL": database_url,
        "PROMPTLAKE_HOME": str(lake.settings.home),
    }
    env["PYTHONPATH"] = str(Path(promptlake.__file__).parents[1])
    subprocess.run([sys.executable, "-c", EXIT_CHILD], env=env, check=True, timeout=120)
    assert len(_ids(lake.project("exit"))) == 10
    assert journal.journals(lake.settings.home) == []


def test_a_resumed_session_goes_on_after_its_stored_turns(project) -> None:
    with project.session(end_user_id="u") as s:
        s.log(prompt="q0", output="a0")
        s.log(prompt="q1", output="a1")
    with project.logger() as logger:
        resumed = logger.session(id=s.id)
        g = resumed.log(prompt="q2", output="a2")
    assert g.seq == 2
    assert [x.seq for x in project.history(s.id)] == [0, 1, 2]
