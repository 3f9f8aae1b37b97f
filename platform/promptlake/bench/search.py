"""``promptlake bench search``: search indexing and query figures on N generated rows.

Why the data looks like this. HNSW recall depends on the shape of the vectors: uniform
random 384-d vectors are its known worst case (every point nearly equidistant, DESIGN.md),
so they say nothing about real use. The default (``vectors="text"``) generates text that is
structured like logged traffic: prompts taken from the bundled MT-bench questions, outputs
of 15-150 words drawn from English word frequencies (the bundled sample answers) mixed with
the Zipf-distributed vocabulary of one of 200 topics; vectors are the ``hashing-384``
embedder's (the platform's default embedder) of ``prompt + output``, exactly what
``promptlake embed`` would store. ``vectors="clustered"`` instead uses random unit vectors
around 200 centres (the harder set this bench used before: within a cluster the points are
again nearly equidistant).

Measured, through the real code paths:

- ingest rows/s with search indexing off (``project.writer``) and on (the same writer with
  ``index=True``: each committed batch also gets its embeddings, passed at log time, and its
  full-text vectors; see :mod:`promptlake.search.live`), timed until the writer closed,
  when every row is searchable; embedding compute is the model's cost, not the platform's,
  and is reported apart. The two alternate in ABBA order (off, on, on, off), each into a
  new project, after a ``CHECKPOINT``, on tables vacuumed after the runs before (where
  the login may); each figure is its better run, because noise on a shared machine only
  ever slows a run down;
- HNSW build time (``build_hnsw``, the parameters ``promptlake embed`` uses);
- p50/p95 latency of text, vector, hybrid and 1%-filtered vector search through
  ``Project.search`` (so the same ``hnsw.ef_search`` and iterative-scan settings as users);
- recall@10 of vector and filtered vector search against exact top-10s computed in numpy.
  A query vector is a stored row's vector plus a little noise ("rows like this one"); with
  ``vectors="text"`` the recall of short keyword queries embedded by ``hashing-384`` is
  reported too: their exact top-10 are near-ties among thousands of rows (a lexical
  hashing embedder puts a 4-word query far from every 300-word row), the hard case.

The throwaway projects (and the HNSW index) are deleted at the end.
"""

from __future__ import annotations

import collections
import json
import re
import time
import uuid
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

from ..search.embedders import CallableEmbedder, HashingEmbedder
from ..search.index import build_hnsw, drop_hnsw
from . import as_login, drop_projects

if TYPE_CHECKING:
    from ..client import Lake

DIM = 384
TOPICS = 200
TOPIC_WORDS = 25
MODELS = 100  # a filter on one model selects 1% of the rows
VECTOR_SETS = ("text", "clustered")
_WORD = re.compile(r"[a-z]+")
_SYLLABLES = ["ka", "lo", "mi", "ve", "tor", "an", "qui", "sel", "dra", "po", "nu", "rex", "fa",
              "zen", "bi", "ol"]  # fmt: skip


def _english() -> tuple[list[str], np.ndarray, list[str]]:
    """Words of the bundled sample answers with their counts, and its questions."""
    data = resources.files("promptlake") / "sample_data"
    texts: list[str] = []
    for line in (data / "mt_bench_questions.jsonl").read_text(encoding="utf-8").splitlines():
        texts += json.loads(line)["turns"]
    questions = [t for t in texts if 20 < len(t) < 240]
    for line in (data / "mt_bench_gpt4_reference.jsonl").read_text(encoding="utf-8").splitlines():
        for choice in json.loads(line)["choices"]:
            texts += choice["turns"]
    counts = collections.Counter(w for t in texts for w in _WORD.findall(t.lower()))
    return list(counts), np.array(list(counts.values()), dtype=np.float64), questions


def generated_texts(rows: int, rng: np.random.Generator) -> tuple[list[str], list[str], np.ndarray]:
    """(prompts, outputs, topic of each row); see the module docstring."""
    words, counts, questions = _english()
    topic_vocab = ["".join(rng.choice(_SYLLABLES, 3)) + str(t)
                   for t in range(TOPICS) for _ in range(TOPIC_WORDS)]  # fmt: skip
    vocab = words + topic_vocab
    zipf = 1.0 / np.arange(1, TOPIC_WORDS + 1)
    topics = rng.integers(0, TOPICS, rows)
    lengths = np.clip(rng.lognormal(np.log(50), 0.35, rows), 15, 150).astype(np.int64)
    total = int(lengths.sum())
    starts = np.cumsum(lengths) - lengths
    row_of = np.repeat(np.arange(rows), lengths)
    common = rng.choice(len(words), total, p=counts / counts.sum())
    topical = (len(words) + np.repeat(topics * TOPIC_WORDS, lengths)
               + rng.choice(TOPIC_WORDS, total, p=zipf / zipf.sum()))  # fmt: skip
    # a quarter of each row's words are its topic's, in random places
    ids = np.where(np.arange(total) - starts[row_of] < (lengths // 4)[row_of], topical, common)
    ids = ids[np.argsort(row_of + rng.random(total), kind="stable")].tolist()
    spans = zip(starts.tolist(), (starts + lengths).tolist(), strict=True)
    outputs = [" ".join(map(vocab.__getitem__, ids[a:b])) for a, b in spans]
    asked = rng.integers(0, len(questions), rows).tolist()
    prompts = [f"{questions[q]} Context: {' '.join(out.split()[:6])}"
               for q, out in zip(asked, outputs, strict=True)]  # fmt: skip
    return prompts, outputs, topics


def clustered_vectors(topics: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors around one random centre per topic (the previous bench's set)."""
    centers = rng.normal(size=(TOPICS, DIM)).astype(np.float32)
    vectors = centers[topics] + rng.normal(scale=0.6, size=(len(topics), DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _percentiles(samples: list[float]) -> dict[str, float]:
    arr = np.array(samples) * 1000
    return {"p50_ms": round(float(np.percentile(arr, 50)), 2),
            "p95_ms": round(float(np.percentile(arr, 95)), 2)}  # fmt: skip


def _ingest(project: Any, ids: list, prompts: list, outputs: list, models: list,
            vectors: np.ndarray | None, embedder: str | None) -> float:  # fmt: skip
    """Log every row with one writer; with ``vectors`` also index them on the way."""
    project.set_pii_policy(apply_at="export")  # measure search, not PII detection
    as_login(project.lake, "CHECKPOINT")
    started = time.perf_counter()
    index = {"index": True, "embedder": embedder} if vectors is not None else {"index": False}
    with project.writer(batch_size=5000, **index) as w:
        for i, gid in enumerate(ids):
            extra = {"embedding": vectors[i]} if vectors is not None else {}
            w.log(id=gid, prompt=prompts[i], output=outputs[i], model=models[i], **extra)
    return time.perf_counter() - started


def minilm_rate(texts: list[str]) -> float | None:
    """MiniLM (extra ``embeddings``) embeddings per second on ``texts``, after one warm-up
    batch (model load excluded); None when the extra is not installed."""
    from ..errors import ConfigurationError, ValidationError
    from ..search.embedders import MiniLMEmbedder

    embedder = MiniLMEmbedder()
    try:
        embedder.embed(texts[:32])
    except (ConfigurationError, ValidationError):  # the extra is not installed
        return None
    started = time.perf_counter()
    embedder.embed(texts)
    return len(texts) / (time.perf_counter() - started)


def run_search_bench(
    lake: Lake, rows: int = 100_000, queries: int = 50, seed: int = 0, vectors: str = "text",
    minilm_texts: int = 0, progress: Callable[[str], None] | None = None,
) -> dict:  # fmt: skip
    say = progress or (lambda _line: None)
    if vectors not in VECTOR_SETS:
        raise ValueError(f"vectors must be one of {', '.join(VECTOR_SETS)}")
    rng = np.random.default_rng(seed)
    say(f"generating {rows:,} rows and their 384-d vectors")
    prompts, outputs, topics = generated_texts(rows, rng)
    hashing = HashingEmbedder(DIM)
    started = time.perf_counter()
    if vectors == "text":
        data = np.stack(hashing.embed([f"{p}\n{o}" for p, o in zip(prompts, outputs, strict=True)]))
    else:
        data = clustered_vectors(topics, rng)
    embed_s = time.perf_counter() - started
    models = [f"model-{i % MODELS}" for i in range(rows)]
    tag = uuid.uuid4().hex[:8]
    embedder_name = f"bench-{vectors}-384-{tag}"  # its own HNSW index, dropped at the end
    lookup: dict[str, np.ndarray] = {}
    # the bench's embedder: known query strings map to chosen vectors, any other text is
    # embedded by hashing-384 (what the stored "text" vectors are)
    embedder = CallableEmbedder(
        embedder_name, DIM, lambda ts: [lookup[t] if t in lookup else hashing.embed([t])[0]
                                        for t in ts],
    )  # fmt: skip
    result: dict[str, Any] = {"rows": rows, "dimension": DIM, "queries": queries,
                              "vectors": vectors, "embed_compute_s": round(embed_s, 2)}  # fmt: skip
    if minilm_texts:
        texts = [f"{p}\n{o}" for p, o in zip(prompts[:minilm_texts], outputs, strict=False)]
        rate = minilm_rate(texts)
        result["minilm_embeddings_per_s"] = round(rate, 1) if rate is not None else None
    prefix = f"bench-search-{tag}-"
    project = lake.project(f"{prefix}kept")  # the first run with indexing: queried below
    ids = [uuid.uuid4() for _ in range(rows)]
    tables = "generations, sessions, generation_embeddings, generation_search"
    try:
        # the same rows without and with search indexing, ABBA (see the module docstring)
        def run(name: str, indexed: bool) -> float:
            target = project if name == "kept" else lake.project(prefix + name)
            seconds = _ingest(target, ids if target is project else [uuid.uuid4() for _ in ids],
                              prompts, outputs, models, data if indexed else None,
                              embedder_name if indexed else None)  # fmt: skip
            say(f"ingest {'with' if indexed else 'without'} search indexing:"
                f" {rows / seconds:,.0f} rows/s")  # fmt: skip
            if target is not project:
                drop_projects(lake, prefix + name, vacuum=tables)
            return seconds

        without_s = run("plain-1", indexed=False)
        with_s = min(run("kept", indexed=True), run("indexed-2", indexed=True))
        without_s = min(without_s, run("plain-2", indexed=False))
        say("building the HNSW index")
        started = time.perf_counter()
        build_hnsw(project, embedder_name, DIM)
        hnsw_s = time.perf_counter() - started
        result["ingest_rows_per_s_without_search"] = round(rows / without_s)
        result["ingest_rows_per_s_with_search"] = round(rows / with_s)
        result["ingest_ratio_with_vs_without"] = round(without_s / with_s, 3)
        result["hnsw_build_s"] = round(hnsw_s, 2)

        say(f"running {queries} queries of each kind")
        picks = rng.choice(rows, queries, replace=False)
        qvecs = data[picks] + rng.normal(scale=0.05, size=(queries, DIM)).astype(np.float32)
        qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
        model_arr = np.array([i % MODELS for i in range(rows)])
        id_arr = np.array(ids, dtype=object)

        def exact(q: np.ndarray, mask: np.ndarray | None = None) -> set:
            sims = data @ q
            if mask is not None:
                sims = np.where(mask, sims, -np.inf)
            return set(id_arr[np.argpartition(-sims, 10)[:10]])

        def timed(query: str, **options: Any) -> tuple[set, float]:
            started = time.perf_counter()
            hits = project.search(query, 10, embedder=embedder, **options)
            return {h.generation_id for h in hits}, time.perf_counter() - started

        latency: dict[str, list[float]] = {"text": [], "vector": [], "hybrid": [],
                                           "vector_filtered_1pct": []}  # fmt: skip
        recall, recall_f, recall_kw = [], [], []
        for i, pick in enumerate(picks):
            # a topic word of the row (each is in 0.1-0.5% of the rows)
            term = next(w for w in outputs[pick].split() if w[-1].isdigit())
            lookup[f"q{i}"] = lookup[term] = qvecs[i]
            _, seconds = timed(term, mode="text")
            latency["text"].append(seconds)
            _, seconds = timed(term, mode="hybrid")
            latency["hybrid"].append(seconds)
            got, seconds = timed(f"q{i}", mode="vector")
            latency["vector"].append(seconds)
            recall.append(len(got & exact(qvecs[i])) / 10)
            model = int(model_arr[pick])
            got, seconds = timed(f"q{i}", mode="vector", model=f"model-{model}")
            latency["vector_filtered_1pct"].append(seconds)
            recall_f.append(len(got & exact(qvecs[i], model_arr == model)) / 10)
            if vectors == "text":
                keywords = " ".join(rng.choice(outputs[pick].split(), 4, replace=False))
                got, _ = timed(keywords, mode="vector")
                recall_kw.append(len(got & exact(hashing.embed([keywords])[0])) / 10)
        result["latency"] = {mode: _percentiles(s) for mode, s in latency.items()}
        result["vector_recall_at_10"] = round(float(np.mean(recall)), 3)
        result["filtered_recall_at_10"] = round(float(np.mean(recall_f)), 3)
        if recall_kw:
            result["keyword_query_recall_at_10"] = round(float(np.mean(recall_kw)), 3)
    finally:
        drop_hnsw(lake, embedder_name)
        drop_projects(lake, prefix, vacuum=tables)
    return result


def format_report(result: dict[str, Any]) -> str:
    lat = result["latency"]
    kind = {"text": "hashing-384 vectors of generated text", "clustered": "clustered vectors"}
    lines = [
        f"search bench: {result['rows']} rows, {result['dimension']}-d"
        f" {kind[result['vectors']]}, {result['queries']} queries",
        f"  embedding compute (not ingest)   {result['embed_compute_s']} s",
        f"  ingest without search indexing   {result['ingest_rows_per_s_without_search']} rows/s",
        f"  ingest with search indexing      {result['ingest_rows_per_s_with_search']} rows/s"
        f" ({result['ingest_ratio_with_vs_without']}x; target >= 0.8x)",
        f"  HNSW build                       {result['hnsw_build_s']} s",
        f"  vector recall@10                 {result['vector_recall_at_10']} (target >= 0.95)",
        f"  filtered (1%) recall@10          {result['filtered_recall_at_10']} (target >= 0.90)",
    ]
    if "minilm_embeddings_per_s" in result:
        rate = result["minilm_embeddings_per_s"]
        lines.append(
            f"  MiniLM embeddings/s              {rate}" if rate is not None else
            "  MiniLM embeddings/s              n/a: pip install 'promptlake[embeddings]'"
        )  # fmt: skip
    if "keyword_query_recall_at_10" in result:
        lines.append(
            f"  4-word query recall@10           {result['keyword_query_recall_at_10']}"
            " (hashing-384 near-ties, see docs)"
        )
    for mode, figures in lat.items():
        lines.append(f"  {mode:<32} p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms")
    return "\n".join(lines)
