"""Durability figures: crash trials, concurrent writers, journal replay.

Runs on a temporary embedded server of its own (it kills it), never on the user's data:

- ``trials`` (20 by default) ingests of ``rows`` generations each, with the server's whole
  process group killed (``SIGKILL``) at a random moment and restarted; every batch whose
  flush returned is recorded, and afterwards the stored ids are compared with them:
  acknowledged rows missing and rows stored twice (both must be 0);
- ``rows`` generations written by ``writers`` processes at once (distinct records) against
  the same rows written by one process: rows/s of each and the ratio;
- a journal of ``journal_rows`` generations (as a writer leaves it after an outage)
  replayed: seconds, and rows/s.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..db import embedded
from ..ids import stable_id

Progress = Callable[[str], None]

WRITER = """
import sys, time, promptlake
from promptlake.ids import stable_id
start, count, seed = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
body = "lorem ipsum dolor sit amet " * 70
with promptlake.connect() as lake:
    project = lake.project("bench-concurrent", create=False)
    with project.writer(batch_size=5000) as w:
        for i in range(start, start + count):
            w.log(id=stable_id(seed, i), prompt=f"{i} {body}", output=body, model="m")
"""


@contextmanager
def _scratch_home() -> Any:
    home = Path(tempfile.mkdtemp(prefix="promptlake-durability-"))
    previous = {k: os.environ.get(k) for k in ("PROMPTLAKE_HOME", "PROMPTLAKE_DATABASE_URL")}
    os.environ["PROMPTLAKE_HOME"] = str(home)
    os.environ.pop("PROMPTLAKE_DATABASE_URL", None)
    try:
        yield home
    finally:
        embedded.stop(home / "pgdata")
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(home, ignore_errors=True)


def _record(seed: Any, i: int) -> dict[str, Any]:
    body = "lorem ipsum dolor sit amet " * 70
    return {"id": stable_id(seed, i), "prompt": f"{i} {body}", "output": body, "model": "m"}


def _kill(pgdata: Path) -> None:
    state = embedded.status(pgdata)
    if state.pid:
        os.killpg(os.getpgid(state.pid), signal.SIGKILL)
    while embedded.status(pgdata).running:
        time.sleep(0.02)


def crash_trial(rows: int, seed: int, pgdata: Path) -> dict[str, Any]:
    import promptlake

    rng = random.Random(seed)
    acknowledged: set[uuid.UUID] = set()
    with promptlake.connect() as lake:
        project = lake.project(f"bench-crash-{seed}")
        project.set_pii_policy(apply_at="export")
        kill_after = rng.uniform(0.5, max(1.0, rows / 8000))
        crashed = threading.Event()

        def crash() -> None:
            time.sleep(kill_after)
            _kill(pgdata)
            crashed.set()
            time.sleep(0.5)
            embedded.start(pgdata)

        thread = threading.Thread(target=crash)
        writer = project.writer(batch_size=5000, retry_seconds=120)
        thread.start()
        pending: list[uuid.UUID] = []
        for i in range(rows):
            pending.append(writer.log(**_record(("crash", seed), i)))
            if len(pending) == writer.batch_size:
                writer.flush()
                acknowledged.update(pending)
                pending = []
        writer.flush()
        acknowledged.update(pending)
        thread.join()
        _, stored = project.query("SELECT id FROM generations")
    ids = [r[0] for r in stored]
    return {
        "rows": rows,
        "killed_during_ingest": crashed.is_set() and writer.stats.retries > 0,
        "retries": writer.stats.retries,
        "acknowledged": len(acknowledged),
        "missing": len(acknowledged - set(ids)),
        "duplicated": len(ids) - len(set(ids)),
        "stored": len(ids),
    }


def concurrency(rows: int, writers: int) -> dict[str, Any]:
    import promptlake

    with promptlake.connect() as lake:
        lake.project("bench-concurrent").set_pii_policy(apply_at="export")

    def run(processes: int, seed: str) -> float:
        share = rows // processes
        started = time.perf_counter()
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER, str(k * share), str(share), seed],
                env=dict(os.environ),
            )
            for k in range(processes)
        ]
        if any(p.wait() != 0 for p in procs):
            raise RuntimeError("a concurrent writer failed")
        return (share * processes) / (time.perf_counter() - started)

    one = run(1, "one")
    many = run(writers, "many")
    return {
        "writers": writers,
        "rows": rows,
        "one_rows_per_s": round(one),
        "many_rows_per_s": round(many),
        "ratio": round(many / one, 2),
    }


def journal_replay(rows: int) -> dict[str, Any]:
    import promptlake

    from ..ingest import journal
    from ..ingest.records import prepare_generation

    with promptlake.connect() as lake:
        project = lake.project("bench-journal")
        project.set_pii_policy(apply_at="export")
        prepared = [
            (f"record {i}", prepare_generation(_record("journal", i), max_bytes=10**6))
            for i in range(rows)
        ]
        path = journal.write(project, [], prepared, [], None)
        started = time.perf_counter()
        report = journal.replay(lake, [path])
        seconds = time.perf_counter() - started
    return {
        "rows": rows,
        "stored": report.stored,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "bytes": path.stat().st_size if path.exists() else None,
    }


def run_durability_bench(
    rows: int = 100_000,
    trials: int = 20,
    writers: int = 8,
    journal_rows: int = 100_000,
    progress: Progress | None = None,
) -> dict[str, Any]:
    say = progress or (lambda message: None)
    result: dict[str, Any] = {}
    with _scratch_home() as home:
        embedded.start(home / "pgdata")
        result["trials"] = []
        for seed in range(trials):
            say(f"crash trial {seed + 1} of {trials}")
            result["trials"].append(crash_trial(rows, seed, home / "pgdata"))
        result["lost"] = sum(t["missing"] for t in result["trials"])
        result["duplicated"] = sum(t["duplicated"] for t in result["trials"])
        say(f"{writers} concurrent writers vs 1")
        result["concurrency"] = concurrency(rows, writers)
        say(f"replaying a {journal_rows:,}-row journal")
        result["journal"] = journal_replay(journal_rows)
    return result


def format_report(result: dict[str, Any]) -> str:
    lines = ["durability benchmark (a scratch embedded server, killed with SIGKILL):"]
    for i, t in enumerate(result["trials"], 1):
        lines.append(
            f"  trial {i}: {t['rows']:,} rows, killed mid-ingest: {t['killed_during_ingest']},"
            f" retries {t['retries']}, acknowledged {t['acknowledged']:,}, missing"
            f" {t['missing']}, stored twice {t['duplicated']}"
        )
    lines.append(f"  lost {result['lost']}, duplicated {result['duplicated']} (target 0 and 0)")
    c = result["concurrency"]
    lines.append(
        f"  {c['writers']} writers: {c['many_rows_per_s']:,} rows/s vs 1 writer:"
        f" {c['one_rows_per_s']:,} rows/s ({c['ratio']}x)"
    )
    j = result["journal"]
    lines.append(
        f"  journal replay: {j['rows']:,} rows in {j['seconds']} s ({j['rows_per_s']:,}/s)"
    )
    return "\n".join(lines)
