"""Chains survive any flush layout: a child whose parent was logged earlier (same flush,
earlier chunk, earlier flush, another writer that committed) is stored with its parent."""

from __future__ import annotations

import itertools
import json
import random
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptlake.ids import uuid7
from promptlake.ingest import writer as writer_module
from promptlake.ingest.importers import import_file
from promptlake.ingest.writer import parents_first


@st.composite
def forests(draw) -> list[int | None]:
    """Parent index of each node (None: a root); a parent always comes earlier."""
    n = draw(st.integers(min_value=1, max_value=60))
    parents: list[int | None] = []
    for i in range(n):
        if i == 0 or draw(st.integers(0, 3)) == 0:
            parents.append(None)
        else:  # mostly the node just before (long chains), sometimes any earlier one
            j = i - 1 if draw(st.booleans()) else draw(st.integers(0, i - 1))
            parents.append(j)
    return parents


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    parents=forests(),
    batch=st.integers(1, 70),
    chunk=st.integers(1, 30),
    writers=st.integers(1, 3),
    ids=st.sampled_from(["random", "descending", "ascending"]),
)
def test_every_generation_is_stored_with_its_parent(
    lake, monkeypatch, parents, batch, chunk, writers, ids
) -> None:
    monkeypatch.setattr(writer_module, "STAGE_CHUNK", chunk)
    project = lake.project(f"forest-{uuid.uuid4().hex[:8]}")
    n = len(parents)
    made = [uuid7() for _ in range(n)]
    if ids == "random":
        made = [uuid.uuid4() for _ in range(n)]
    elif ids == "descending":  # a child's id sorts before its parent's
        made.reverse()
    # the nodes in logging order, split between writers that each commit before the next
    cuts = sorted(random.Random(n * 31 + batch).sample(range(1, n + 1), min(writers, n) - 1))
    bounds = [0, *cuts, n]
    for a, b in itertools.pairwise(bounds):
        with project.writer(batch_size=batch) as w:
            for i in range(a, b):
                parent = made[parents[i]] if parents[i] is not None else None
                assert w.log(id=made[i], prompt=f"q{i}", output=f"a{i}", parent=parent) == made[i]
        assert w.rejected == []
    _, stored = project.query(
        "SELECT id, parent_id FROM generations WHERE project_id = :p", {"p": project.id}
    )
    expected = {made[i]: (made[p] if p is not None else None) for i, p in enumerate(parents)}
    assert dict(stored) == expected


def test_parents_first_orders_by_depth_then_id_and_survives_cycles() -> None:
    from promptlake.ingest.records import prepare_generation

    a, b, c = uuid.UUID(int=3), uuid.UUID(int=2), uuid.UUID(int=1)
    outside = uuid.UUID(int=9)
    rows = []
    for rid, parent in ((c, b), (b, a), (a, outside)):
        rows.append(("x", prepare_generation({"id": rid, "prompt": "p", "parent": parent},
                                             max_bytes=1000, finish=False)))  # fmt: skip
    assert [r.id for _, r in parents_first(rows)] == [a, b, c]
    x, y = uuid.UUID(int=5), uuid.UUID(int=6)
    cycle = [("x", prepare_generation({"id": x, "prompt": "p", "parent": y}, max_bytes=99,
                                      finish=False)),
             ("y", prepare_generation({"id": y, "prompt": "p", "parent": x}, max_bytes=99,
                                      finish=False))]  # fmt: skip
    assert {r.id for _, r in parents_first(cycle)} == {x, y}


def _varied_sharegpt(shared: Path, out: Path, turns_wanted: int) -> int:
    """Long multi-turn conversations made by chaining exchanges of the real files: each
    variant strings together exchanges of several ShareGPT conversations and Alpaca seed
    tasks (in a shuffled order), so chains of 2-16 turns cross chunks and flushes."""
    base = json.loads((shared / "sharegpt_identity_conversations.json").read_text())
    pairs = []
    for conv in base:
        turns = conv["conversations"]
        pairs += [(turns[i]["value"], turns[i + 1]["value"]) for i in range(0, len(turns) - 1, 2)]
    for line in (shared / "alpaca_seed_tasks.jsonl").read_text().splitlines():
        task = json.loads(line)
        for inst in task["instances"]:
            pairs.append((f"{task['instruction']}\n{inst['input']}".strip(), inst["output"]))
    rng = random.Random(15)
    records, total, k = [], 0, 0
    while total < turns_wanted:
        length = rng.randint(2, 16)
        picked = rng.sample(pairs, length)
        conv = []
        for human, gpt in picked:
            conv += [{"from": "human", "value": human}, {"from": "gpt", "value": gpt}]
        records.append({"id": f"variant_{k}", "conversations": conv})
        total += length
        k += 1
    rng.shuffle(records)
    out.write_text(json.dumps(records))
    return total


def test_import_of_ten_thousand_turns_stores_every_turn(lake, shared_data, tmp_path) -> None:
    path = tmp_path / "varied_sharegpt.json"
    turns = _varied_sharegpt(shared_data, path, 10_000)
    assert turns >= 10_000
    project = lake.project("varied")
    report = import_file(project, path, "sharegpt")  # the default options
    assert report.rejected == []
    assert report.stored == turns
    _, counts = project.query(
        "SELECT count(*), count(g.parent_id), count(DISTINCT g.session_id),"
        " count(*) FILTER (WHERE p.id IS NOT NULL AND p.seq = g.seq - 1"
        "                  AND p.session_id = g.session_id)"
        " FROM generations g LEFT JOIN generations p"
        " ON p.project_id = g.project_id AND p.id = g.parent_id WHERE g.project_id = :p",
        {"p": project.id},
    )
    sessions = report.sessions
    assert counts == [(turns, turns - sessions, sessions, turns - sessions)]


@pytest.mark.parametrize("batch", [1, 7, 5000])
def test_sample_file_at_any_batch_size(lake, shared_data, batch) -> None:
    project = lake.project(f"batch-{batch}")
    report = import_file(
        project, shared_data / "sharegpt_identity_conversations.json", "sharegpt", batch_size=batch
    )
    assert (report.stored, report.rejected) == (1000, [])
