"""``promptlake bench search``: search indexing and query figures on N generated rows.

A throwaway project gets N generations (~300-character texts built from 200 topics, so
text terms and vectors are clustered like real data) and 384-d *clustered random*
embeddings (random unit vectors around 200 centers: uniform random vectors make HNSW
recall meaningless, DESIGN.md). Measured: ingest rows/s without any search indexing,
full-text indexing rows/s, embedding storage, HNSW build time, then p50/p95 latency of
text, vector, hybrid and 1%-filtered vector queries through ``Project.search`` (the real
SQL path), and recall@10 of vector and filtered vector search against exact top-10s
computed in numpy. The project is deleted at the end.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np

from ..search.embedders import CallableEmbedder
from ..search.index import build_hnsw, drop_hnsw, index_text

if TYPE_CHECKING:
    from ..client import Lake

DIM = 384
TOPICS = 200
MODELS = 100  # a filter on one model selects 1% of the rows


def _corpus(rows: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray, np.ndarray]:
    common = [f"word{i}" for i in range(2000)]
    topic_words = [[f"t{t}w{j}" for j in range(20)] for t in range(TOPICS)]
    topics = rng.integers(0, TOPICS, rows)
    texts = []
    for t in topics:
        words = list(rng.choice(common, 30)) + list(rng.choice(topic_words[t], 12))
        rng.shuffle(words)
        texts.append(" ".join(words))
    centers = rng.normal(size=(TOPICS, DIM)).astype(np.float32)
    vectors = centers[topics] + rng.normal(scale=0.6, size=(rows, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return texts, topics, vectors


def _percentiles(samples: list[float]) -> dict[str, float]:
    arr = np.array(samples) * 1000
    return {"p50_ms": round(float(np.percentile(arr, 50)), 2),
            "p95_ms": round(float(np.percentile(arr, 95)), 2)}  # fmt: skip


def _store_vectors(project: Any, name: str, ids: list[uuid.UUID], vectors: np.ndarray) -> None:
    from pgvector.psycopg import register_vector

    with project.lake._transaction(project) as conn:
        register_vector(conn)
        # COPY cannot target a table with row-level security: stage, then INSERT … SELECT
        conn.execute("CREATE TEMP TABLE bench_vectors (id uuid, v vector) ON COMMIT DROP")
        with (
            conn.cursor() as cur,
            cur.copy("COPY bench_vectors (id, v) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(["uuid", "vector"])
            for gid, vec in zip(ids, vectors, strict=True):
                copy.write_row((gid, vec))
        conn.execute(
            "INSERT INTO generation_embeddings (project_id, generation_id, embedder, dimension,"
            " vector) SELECT %s, id, %s, %s, v FROM bench_vectors",
            (project.id, name, DIM),
        )


def run_search_bench(lake: Lake, rows: int = 100_000, queries: int = 50, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    texts, _, vectors = _corpus(rows, rng)
    models = [f"model-{i % MODELS}" for i in range(rows)]
    ids = [uuid.uuid4() for _ in range(rows)]
    tag = uuid.uuid4().hex[:8]
    project = lake.project(f"bench-search-{tag}")
    embedder_name = f"bench-clustered-384-{tag}"  # its own HNSW index, dropped at the end
    result: dict[str, Any] = {"rows": rows, "dimension": DIM, "queries": queries}
    try:
        project.set_pii_policy(apply_at="export")  # measure search, not PII detection
        started = time.perf_counter()
        with project.writer(batch_size=5000) as w:
            for gid, text, model in zip(ids, texts, models, strict=True):
                w.log(id=gid, prompt=f"question about {text[:60]}", output=text, model=model)
        ingest_s = time.perf_counter() - started
        started = time.perf_counter()
        index_text(project, batch_size=5000)
        fts_s = time.perf_counter() - started
        started = time.perf_counter()
        _store_vectors(project, embedder_name, ids, vectors)
        vec_s = time.perf_counter() - started
        started = time.perf_counter()
        build_hnsw(project, embedder_name, DIM)
        hnsw_s = time.perf_counter() - started
        result["ingest_rows_per_s_without_search"] = round(rows / ingest_s)
        result["full_text_index_rows_per_s"] = round(rows / fts_s)
        result["vector_store_rows_per_s"] = round(rows / vec_s)
        result["hnsw_build_s"] = round(hnsw_s, 2)
        # "ingest with search indexing": logging plus the batched full-text and vector work
        with_search = rows / (ingest_s + fts_s + vec_s)
        result["ingest_rows_per_s_with_search"] = round(with_search)
        result["ingest_ratio_with_vs_without"] = round(with_search / (rows / ingest_s), 3)

        picks = rng.choice(rows, queries, replace=False)
        qvecs = vectors[picks] + rng.normal(scale=0.05, size=(queries, DIM)).astype(np.float32)
        qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
        lookup = {f"q{i}": qvecs[i] for i in range(queries)}
        embedder = CallableEmbedder(embedder_name, DIM, lambda ts: [lookup[t] for t in ts])
        model_arr = np.array([i % MODELS for i in range(rows)])
        id_arr = np.array(ids, dtype=object)

        def exact(q: np.ndarray, mask: np.ndarray | None = None) -> set:
            sims = vectors @ q
            if mask is not None:
                sims = np.where(mask, sims, -np.inf)
            return set(id_arr[np.argsort(-sims)[:10]])

        latency: dict[str, list[float]] = {"text": [], "vector": [], "hybrid": [],
                                           "vector_filtered_1pct": []}  # fmt: skip
        recall, recall_f = [], []
        for i, pick in enumerate(picks):
            words = texts[pick].split()
            term = next(w for w in words if w.startswith("t"))  # a topic word: ~0.5% of rows
            for mode, query in (("text", term), ("hybrid", f"q{i}")):
                started = time.perf_counter()
                project.search(query, 10, mode=mode, embedder=embedder)
                latency[mode].append(time.perf_counter() - started)
            started = time.perf_counter()
            hits = project.search(f"q{i}", 10, mode="vector", embedder=embedder)
            latency["vector"].append(time.perf_counter() - started)
            recall.append(len({h.generation_id for h in hits} & exact(qvecs[i])) / 10)
            model = int(model_arr[pick])
            started = time.perf_counter()
            hits = project.search(
                f"q{i}", 10, mode="vector", embedder=embedder, model=f"model-{model}"
            )
            latency["vector_filtered_1pct"].append(time.perf_counter() - started)
            recall_f.append(
                len({h.generation_id for h in hits} & exact(qvecs[i], model_arr == model)) / 10
            )
        result["latency"] = {mode: _percentiles(s) for mode, s in latency.items()}
        result["vector_recall_at_10"] = round(float(np.mean(recall)), 3)
        result["filtered_recall_at_10"] = round(float(np.mean(recall_f)), 3)
    finally:
        drop_hnsw(lake, embedder_name)
        with lake._transaction(project) as conn:
            conn.execute("DELETE FROM projects WHERE id = %s", (project.id,))
    return result


def format_report(result: dict[str, Any]) -> str:
    lat = result["latency"]
    lines = [
        f"search bench: {result['rows']} rows, {result['dimension']}-d clustered vectors,"
        f" {result['queries']} queries",
        f"  ingest without search indexing   {result['ingest_rows_per_s_without_search']} rows/s",
        f"  full-text indexing (batched)     {result['full_text_index_rows_per_s']} rows/s",
        f"  vector storage (COPY)            {result['vector_store_rows_per_s']} rows/s",
        f"  ingest + search indexing         {result['ingest_rows_per_s_with_search']} rows/s"
        f" ({result['ingest_ratio_with_vs_without']}x; target >= 0.5x)",
        f"  HNSW build                       {result['hnsw_build_s']} s",
        f"  vector recall@10                 {result['vector_recall_at_10']} (target >= 0.95)",
        f"  filtered (1%) recall@10          {result['filtered_recall_at_10']} (target >= 0.90)",
    ]
    for mode, figures in lat.items():
        lines.append(f"  {mode:<32} p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms")
    return "\n".join(lines)
