"""Turn order under concurrency: ``seq`` is unique within a session whatever the number of
writers and processes (positions from the session's counter, migration 0009)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from promptlake import ValidationError

SCRIPT = """
import sys, uuid
import promptlake
sid, mode, n = uuid.UUID(sys.argv[1]), sys.argv[2], int(sys.argv[3])
with promptlake.connect(migrate=False) as lake:
    project = lake.project("turns", create=False)
    if mode == "session":
        with project.session(id=sid) as s:
            for i in range(n):
                s.log(prompt=f"{sys.argv[4]} {i}", output="o")
    else:
        with project.writer(batch_size=7) as w:
            for i in range(n):
                w.log(prompt=f"{sys.argv[4]} {i}", output="o", session=sid)
"""


@pytest.mark.parametrize("mode", ["session", "writer"])
def test_four_processes_in_one_session_store_distinct_positions(
    lake, database_url, tmp_path, mode
) -> None:
    project = lake.project("turns")
    sid = project.session(end_user_id="u").id
    script = tmp_path / "turns.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PROMPTLAKE_DATABASE_URL": database_url}
    procs = [
        subprocess.Popen([sys.executable, str(script), str(sid), mode, "60", f"p{k}"], env=env,
                         stderr=subprocess.PIPE, text=True)
        for k in range(4)
    ]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    _, rows = project.query(
        "SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM generations"
        " WHERE session_id = :s",
        {"s": sid},
    )
    assert rows == [(240, 240, 0, 239)]
    # each process's own turns keep their order
    _, ordered = project.query(
        "SELECT input_text FROM generations WHERE session_id = :s ORDER BY seq", {"s": sid}
    )
    for k in range(4):
        mine = [int(t.split()[1]) for (t,) in ordered if t.startswith(f"p{k} ")]
        assert mine == list(range(60))


def test_positions_follow_explicit_ones_and_a_taken_position_is_refused(project) -> None:
    with project.session() as s:
        assert s.log(prompt="a", output="o").seq == 0
        assert s.log(prompt="b", output="o", seq=5).seq == 5
        assert s.log(prompt="c", output="o").seq == 6  # after the explicit one
        with pytest.raises(ValidationError, match="seq: 5 is already taken"):
            s.log(prompt="d", output="o", seq=5)
        g = project.log(prompt="e", output="o", session=s.id)  # no seq: the next one
        assert g.seq == 7
    with project.writer(batch_size=3) as w:
        for i in range(5):
            w.log(prompt=f"w{i}", output="o", session=s.id)
        w.log(prompt="taken", output="o", session=s.id, seq=0, item="taken")
    assert [r.item for r in w.rejected] == ["taken"]
    assert "seq: 0 is already taken in session" in str(w.rejected[0])
    assert [g.seq for g in project.history(s.id)] == [0, 5, 6, 7, 8, 9, 10, 11, 12]


def test_a_retried_batch_keeps_unique_positions(project) -> None:
    sid = None
    ids = [uuid.uuid4() for _ in range(10)]
    for _ in range(2):  # the second writer retries the same ids: nothing stored twice
        with project.writer() as w:
            sid = sid or w.session(id=uuid.UUID(int=42))
            for gid in ids:
                w.log(id=gid, prompt="p", output="o", session=sid)
    _, rows = project.query(
        "SELECT count(*), count(DISTINCT seq), max(seq) FROM generations WHERE session_id = :s",
        {"s": sid},
    )
    assert rows == [(10, 10, 9)]


def test_migration_0009_renumbers_duplicate_positions_and_starts_the_counters(
    empty_database_url,
) -> None:
    import sqlalchemy as sa

    from promptlake.db import migrate as migrations

    engine = sa.create_engine(empty_database_url)
    pid, dup, fine = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    try:
        migrations.upgrade(engine, "0007")
        with engine.begin() as conn:  # as the owner (a superuser here): past row security
            conn.execute(sa.text("INSERT INTO projects (id, name) VALUES (:p, 'old')"), {"p": pid})
            for sid in (dup, fine):
                conn.execute(
                    sa.text("INSERT INTO sessions (project_id, id) VALUES (:p, :s)"),
                    {"p": pid, "s": sid},
                )
            # two processes numbered the same turns: positions 0, 0, 1, 1; the other is fine
            for i, (sid, seq) in enumerate([(dup, 0), (dup, 1), (dup, 0), (dup, 1), (fine, 4)]):
                conn.execute(
                    sa.text(
                        "INSERT INTO generations (project_id, id, session_id, seq, input_text,"
                        " input_hash, output_hash, content_hash, created_at)"
                        " VALUES (:p, :g, :s, :seq, :t, '', '', '', now() + :i * interval '1 s')"
                    ),
                    {"p": pid, "g": uuid.UUID(int=i + 1), "s": sid, "seq": seq, "t": f"t{i}",
                     "i": i},
                )  # fmt: skip
        migrations.upgrade(engine)
        with engine.connect() as conn:
            turns = conn.execute(
                sa.text(
                    "SELECT input_text, seq FROM generations WHERE session_id = :s ORDER BY seq"
                ),
                {"s": dup},
            ).all()
            counters = dict(conn.execute(sa.text("SELECT id, next_seq FROM sessions")).all())
        # the order kept (seq, then time), the numbers made distinct
        assert [tuple(t) for t in turns] == [("t0", 0), ("t2", 1), ("t1", 2), ("t3", 3)]
        assert counters == {dup: 4, fine: 5}
        migrations.downgrade(engine, "0007")
    finally:
        engine.dispose()
