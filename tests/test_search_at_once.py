"""Search works on what was just logged: importers and the writer index by default (full
text and the default embedder, in the background), ``--no-index`` opts out, and a search
over unindexed rows says how many are pending and how to index them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import promptlake
from promptlake.ingest.importers import import_file
from promptlake.search.embedders import HashingEmbedder

SHAREGPT = "sharegpt_identity_conversations.json"


def _answers(shared: Path, n: int) -> list[str]:
    """Phrases copied from distinct, long assistant answers of the real file."""
    answers = []
    for conv in json.loads((shared / SHAREGPT).read_text()):
        for turn in conv["conversations"]:
            words = turn["value"].split()
            if turn["from"] == "gpt" and len(words) >= 12:
                answers.append(" ".join(words[3:9]))
    return list(dict.fromkeys(answers))[:n]


def _found(project, phrases: list[str]) -> dict[str, int]:
    """For how many phrases a generation whose answer holds it is in the top 5."""
    found = {"text": 0, "hybrid": 0}
    for phrase in phrases:
        _, rows = project.query(
            "SELECT id FROM generations WHERE project_id = :p AND strpos(output, :q) > 0",
            {"p": project.id, "q": phrase},
        )
        answers = {r[0] for r in rows}
        assert answers
        for mode in found:
            hits = project.search(phrase, 5, mode=mode)
            assert hits.pending == 0 and hits.note is None
            found[mode] += bool(answers & {h.generation_id for h in hits})
    return found


def test_rows_are_searchable_right_after_an_import(lake, shared_data: Path) -> None:
    """Right after an import, search finds what it finds after a full backfill."""
    at_once, later = lake.project("at-once"), lake.project("later")
    assert import_file(at_once, shared_data / SHAREGPT, "sharegpt").stored == 1000
    import_file(later, shared_data / SHAREGPT, "sharegpt", index=False)
    assert later.search("Vicuna", mode="text").pending == 1000
    later.embed()
    phrases = _answers(shared_data, 25)
    found, backfilled = _found(at_once, phrases), _found(later, phrases)
    # indexed as stored: at least as good as a later backfill (ties of the many identical
    # answers fall by id, which differ between the two projects)
    for mode in found:
        assert found[mode] >= backfilled[mode] - 1, (found, backfilled)  # at least as good
        assert found[mode] >= len(phrases) * 3 // 4, found
    _, counts = at_once.query(
        "SELECT (SELECT count(*) FROM generation_search WHERE project_id = :p),"
        " (SELECT count(*) FROM generation_embeddings WHERE project_id = :p"
        "  AND embedder = 'hashing-384')",
        {"p": at_once.id},
    )
    assert counts == [(1000, 1000)]


def test_the_stored_vectors_are_the_backfills(project, shared_data: Path, dbq) -> None:
    """The writer's vectors are those ``promptlake embed`` computes (same text, same
    embedder): a backfill after the import finds nothing missing."""
    import_file(project, shared_data / SHAREGPT, "sharegpt")
    report = project.embed("hashing-384")
    assert (report.embedded, report.text_indexed) == (0, 0)


def test_no_index_leaves_rows_pending_and_search_says_so(project, shared_data, database_url):
    env = {**os.environ, "PROMPTLAKE_DATABASE_URL": database_url}
    cli = str(Path(sys.executable).with_name("promptlake"))
    done = subprocess.run(
        [cli, "import", str(shared_data / SHAREGPT), "--format", "sharegpt", "--project",
         project.name, "--no-index"], env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    searched = subprocess.run([cli, "search", "Vicuna", "--project", project.name], env=env,
                              capture_output=True, text=True)  # fmt: skip
    assert searched.returncode == 0, searched.stderr
    assert "1000 rows of project 'test-project' are not indexed for search yet" in searched.stderr
    assert f"promptlake embed --project {project.name}" in searched.stderr
    hits = project.search("Vicuna", mode="text")
    assert (len(hits), hits.pending) == (0, 1000)
    project.embed()
    hits = project.search("Vicuna", mode="text")
    assert hits and hits.pending == 0 and hits.note is None


def test_a_writer_principal_logs_without_indexing(lake, database_url, monkeypatch) -> None:
    """Full text needs the admin role: by default a writer's rows are stored, unindexed."""
    lake.project("team").grant("app", "writer")
    monkeypatch.setenv("PROMPTLAKE_DATABASE_URL", database_url)
    with promptlake.connect(principal="app") as app:
        with app.project("team", create=False).writer() as w:
            w.log(prompt="hello", output="world")
        assert w.stats.stored == 1 and w.stats.text_indexed == 0
    hits = lake.project("team").search("world", mode="text")
    assert (len(hits), hits.pending) == (0, 1)


def _slow(text: str, dim: int = 384) -> np.ndarray:
    """The hashing embedder as it is defined: a zlib.crc32 per feature."""
    vec = np.zeros(dim, dtype=np.float32)
    feats = HashingEmbedder(dim)._features(text)
    if feats:
        hashes = np.fromiter((zlib.crc32(f.encode()) for f in feats), np.uint32, len(feats))
        np.add.at(vec, (hashes & 0x7FFFFFFF) % dim, np.where(hashes >> 31, 1.0, -1.0))
    norm = float(np.linalg.norm(vec))
    if norm == 0.0:
        vec[0] = 1.0
    else:
        vec /= norm
    return vec


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(alphabet=st.characters(max_codepoint=0x24F), max_size=80),
                      max_size=6))  # fmt: skip
def test_hashing_embedder_batch_path_is_bit_for_bit_the_definition(texts) -> None:
    for dim in (8, 384):
        got = HashingEmbedder(dim).embed(texts)
        assert all(np.array_equal(g, _slow(t, dim)) for g, t in zip(got, texts, strict=True))


def test_hashing_embedder_on_the_real_files(shared_data: Path) -> None:
    texts = [t["value"] for c in json.loads((shared_data / SHAREGPT).read_text())
             for t in c["conversations"]]  # fmt: skip
    got = HashingEmbedder().embed(texts)
    assert all(np.array_equal(g, _slow(t)) for g, t in zip(got, texts, strict=True))
