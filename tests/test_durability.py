"""Durable ingestion against a real PostgreSQL that is killed, stopped and restarted.

These tests run their own embedded server (not the shared test server), because they
kill it: ``kill -9`` of its whole process group, as a crash would.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import promptlake
from promptlake.db import embedded
from promptlake.ids import stable_id


@pytest.fixture
def own_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An embedded server of this test's own, used through the default (no URL) path."""
    home = tmp_path / "home"
    monkeypatch.setenv("PROMPTLAKE_HOME", str(home))
    yield home
    embedded.stop(home / "pgdata")


def kill_server(pgdata: Path) -> None:
    state = embedded.status(pgdata)
    assert state.running and state.pid
    os.killpg(os.getpgid(state.pid), signal.SIGKILL)
    for _ in range(100):
        if not embedded.status(pgdata).running:
            return
        time.sleep(0.05)
    raise AssertionError("the server survived kill -9")


def _records(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [
        {
            "id": stable_id("durability", seed, i),
            "prompt": f"q{i} " + "x" * rng.randint(50, 2000),
            "output": "y" * rng.randint(10, 500),
            "model": "m",
            "latency_ms": rng.uniform(1, 900),
        }
        for i in range(n)
    ]


@pytest.mark.parametrize("trial", range(3))
def test_kill_9_during_ingest_loses_and_duplicates_nothing(own_server: Path, trial: int) -> None:
    pgdata = own_server / "pgdata"
    records = _records(6000, seed=trial)
    acknowledged: set[uuid.UUID] = set()
    with promptlake.connect() as lake:
        project = lake.project("durable")
        project.set_pii_policy(apply_at="export")
        kill_at_batch = random.Random(trial).randint(1, 8)
        reached, killed = threading.Event(), threading.Event()

        def crash_and_restart() -> None:
            reached.wait()
            kill_server(pgdata)
            killed.set()
            time.sleep(0.3)
            embedded.start(pgdata)

        crasher = threading.Thread(target=crash_and_restart)
        writer = project.writer(batch_size=500, retry_seconds=60)
        crasher.start()
        pending: list[uuid.UUID] = []
        batches = 0
        for record in records:
            pending.append(writer.log(**record))
            if len(pending) == 500:
                writer.flush()  # returns only once committed
                acknowledged.update(pending)
                pending = []
                batches += 1
                if batches == kill_at_batch:
                    reached.set()
                    killed.wait(30)  # the next flush meets a dead server, whatever the load
        writer.flush()
        acknowledged.update(pending)
        crasher.join()
        assert writer.stats.retries >= 1, "the kill should have interrupted a flush"
        _, rows = project.query("SELECT id FROM generations")
    stored = [r[0] for r in rows]
    assert len(stored) == len(set(stored))  # nothing twice
    assert acknowledged - set(stored) == set()  # nothing acknowledged is missing
    assert len(stored) == len(records)
    assert writer.stats.stored + writer.stats.duplicates == len(records)


@pytest.mark.parametrize("trial", range(2))
def test_kill_9_inside_a_chunked_flush(
    own_server: Path, trial: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same guarantees when the server dies while a flush is finishing one chunk and
    inserting the previous one from a helper thread (writer.stage_overlapped)."""
    from promptlake.ingest import writer as writer_module

    monkeypatch.setattr(writer_module, "STAGE_CHUNK", 100)  # a 1000-row flush: 11 chunks
    pgdata = own_server / "pgdata"
    records = _records(4000, seed=10 + trial)
    inserting, original = threading.Event(), writer_module._insert_from_stage
    calls = iter(range(1, 10**6))
    target = random.Random(trial).randint(5, 30)

    def insert_and_signal(conn: Any, empty: bool = False) -> int:
        if next(calls) == target:
            inserting.set()
            time.sleep(0.05)  # the kill lands during this insert or the next chunk
        return original(conn, empty)

    monkeypatch.setattr(writer_module, "_insert_from_stage", insert_and_signal)

    def crash_and_restart() -> None:
        inserting.wait(60)
        kill_server(pgdata)
        time.sleep(0.3)
        embedded.start(pgdata)

    acknowledged: set[uuid.UUID] = set()
    with promptlake.connect() as lake:
        project = lake.project("durable")  # default policy: rows are anonymized at flush
        crasher = threading.Thread(target=crash_and_restart)
        crasher.start()
        writer = project.writer(batch_size=1000, retry_seconds=60)
        pending: list[uuid.UUID] = []
        for record in records:
            pending.append(writer.log(**record))
            if len(pending) == 1000:
                writer.flush()
                acknowledged.update(pending)
                pending = []
        crasher.join()
        assert writer.stats.retries >= 1, "the kill should have interrupted a flush"
        _, rows = project.query("SELECT id FROM generations")
    stored = [r[0] for r in rows]
    assert len(stored) == len(set(stored)) == len(records)
    assert acknowledged == set(stored)
    assert writer.stats.stored + writer.stats.duplicates == len(records)


def test_outage_journal_then_replay_exactly_once(own_server: Path) -> None:
    pgdata = own_server / "pgdata"
    records = _records(1200, seed=99)
    with promptlake.connect() as lake:
        project = lake.project("journaled")
        project.set_pii_policy({"EMAIL": "redact"}, vault=True)
        writer = project.writer(batch_size=400, retry_seconds=0.5)
        for record in records[:400]:
            writer.log(**record)  # the first batch is stored
        embedded.stop(pgdata)
        with pytest.raises(promptlake.IngestInterruptedError) as caught:
            for record in records[400:800]:
                writer.log(**{**record, "prompt": record["prompt"] + " a@b.example.com"})
        assert caught.value.records == 400
        journal = Path(caught.value.journal)
        assert journal.exists() and "a@b.example.com" not in journal.read_text()  # sealed
        assert writer.stats.stored == 400 and writer.stats.journaled == 400
    embedded.start(pgdata)

    env = {**os.environ}
    exe = str(Path(sys.executable).with_name("promptlake"))
    first = subprocess.run([exe, "replay"], capture_output=True, text=True, env=env)
    assert first.returncode == 0, first.stderr
    assert "stored 400, already stored 0" in first.stdout
    assert not journal.exists()
    second = subprocess.run([exe, "replay"], capture_output=True, text=True, env=env)
    assert "replayed 0 journal files" in second.stdout
    with promptlake.connect() as lake:
        project = lake.project("journaled", create=False)
        _, rows = project.query("SELECT count(*), count(DISTINCT id) FROM generations")
        assert rows == [(800, 800)]
        replayed = records[400].get("id")
        assert project.reveal(replayed)["input_text"].endswith(" a@b.example.com")


WRITER_SCRIPT = """
import json, sys
import promptlake
from promptlake.ids import stable_id
with promptlake.connect() as lake:
    project = lake.project("shared", create=False)
    with project.writer(batch_size=300) as w:
        for batch in range(3):
            for i in range(300):
                w.log(id=stable_id("same", batch, i), prompt=f"batch {batch} item {i}", output="o")
print(json.dumps({"stored": w.stats.stored, "duplicates": w.stats.duplicates}))
"""


def test_eight_processes_writing_the_same_batches_store_each_record_once(own_server) -> None:
    with promptlake.connect() as lake:
        lake.project("shared").set_pii_policy(apply_at="export")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER_SCRIPT],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ},
        )
        for _ in range(8)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sum(r["stored"] for r in results) == 900
    assert sum(r["duplicates"] for r in results) == 7 * 900
    with promptlake.connect() as lake:
        _, rows = lake.project("shared", create=False).query(
            "SELECT count(*), count(DISTINCT id) FROM generations"
        )
    assert rows == [(900, 900)]


def test_dump_and_restore_round_trip_every_table(own_server: Path, tmp_path: Path) -> None:
    from promptlake.db.models import Base

    with promptlake.connect() as lake:
        project = lake.project("backed-up")
        project.set_pii_policy({"EMAIL": "redact"}, vault=True)
        with project.session(end_user_id="u") as s:
            g = s.log(
                prompt="mail x@y.example.com",
                output="ok",
                model="m",
                attachments=[{"kind": "file", "mime_type": "text/plain", "data": b"1"}],
            )
        project.score(g, "ok", True)
        project.prompts.register("p", "Hi {x}", labels=["production"])
        project.grant("ana", "analyst")
        owner = lake.url
    import sqlalchemy as sa

    def snapshot(url: str) -> dict[str, str]:
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                return {
                    table.name: conn.execute(
                        sa.text(
                            f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text),"
                            f" '')) FROM {table.name} t"
                        )
                    ).scalar()
                    for table in Base.metadata.sorted_tables
                }
        finally:
            engine.dispose()

    before = snapshot(owner)
    exe = str(Path(sys.executable).with_name("promptlake"))
    backup = tmp_path / "lake.dump"
    out = subprocess.run(
        [exe, "db", "dump", str(backup)], capture_output=True, text=True,
        preexec_fn=lambda: os.umask(0o022),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert backup.stat().st_mode & 0o777 == 0o600  # every tenant's raw rows: owner only
    refused = subprocess.run([exe, "db", "restore", str(backup)], capture_output=True, text=True)
    assert refused.returncode == 1 and "--replace" in refused.stderr
    with promptlake.connect() as lake:  # damage after the backup
        lake.project("backed-up", create=False).erase("u")
    assert snapshot(owner) != before
    out = subprocess.run(
        [exe, "db", "restore", str(backup), "--replace"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert snapshot(owner) == before
    with promptlake.connect() as lake:
        restored = lake.project("backed-up", create=False)
        assert restored.reveal(g.id)["input_text"] == "mail x@y.example.com"


def test_outage_longer_than_the_policy_ttl_buffers_then_journals(own_server, monkeypatch) -> None:
    """``log`` re-reads the PII policy every POLICY_TTL_SECONDS; with the database down
    longer than that it keeps the policy read before instead of raising."""
    pgdata = own_server / "pgdata"
    monkeypatch.setattr(promptlake.Project, "POLICY_TTL_SECONDS", 0.2)
    records = _records(400, seed=7)
    with promptlake.connect() as lake:
        project = lake.project("long-outage")
        project.set_pii_policy({"EMAIL": "redact"})
        writer = project.writer(batch_size=1000, retry_seconds=0.5)
        for record in records[:100]:
            writer.log(**record)
        writer.flush()
        embedded.stop(pgdata)
        time.sleep(0.5)  # past the TTL: the next log would re-read the policy
        for record in records[100:]:  # buffered: nothing raises
            writer.log(**{**record, "prompt": record["prompt"] + " mail me: x@y.example.com"})
        with pytest.raises(promptlake.IngestInterruptedError) as caught:
            writer.close()
        assert caught.value.records == 300
        text = Path(caught.value.journal).read_text()
        assert "x@y.example.com" not in text and "<EMAIL>" in text  # the policy read before
        # a project whose policy was never read: the default policy, applied when journaled
        fresh = lake.project("long-outage")
        fresh.__dict__.pop("_anonymizer_cache", None)
        other = fresh.writer(batch_size=1000, retry_seconds=0.3)
        other.log(prompt="write to z@w.example.com", output="ok")
        with pytest.raises(promptlake.IngestInterruptedError) as second:
            other.close()
        assert "z@w.example.com" not in Path(second.value.journal).read_text()
    embedded.start(pgdata)
    with promptlake.connect() as lake:
        report = promptlake.ingest.journal.replay(lake)
        assert (report.stored, report.rejected) == (301, [])
        project = lake.project("long-outage", create=False)
        _, rows = project.query("SELECT count(*), count(DISTINCT id) FROM generations")
        assert rows == [(401, 401)]
