"""How fast and how right MinHash dedup is, against planted truth and brute force.

The corpus: documents of ~800 characters drawn from a Zipf-distributed vocabulary (so
common words repeat as in real text); a fifth of them open with one of a few shared
boilerplate passages (unrelated texts sharing boilerplate, Jaccard ≈ 0.2), a twentieth with
a long one (≈ 0.4); and families of planted near-duplicates: exact copies, copies with
case, punctuation and whitespace changes, and edits (isolated word substitutions plus
truncation) aimed at Jaccard levels from 0.95 down to 0.3. The truth is the exact Jaccard
of every planted pair, measured with the same shingling dedup uses.

Figures: docs/s of a full run (signatures, LSH, verification, clusters written), of an
incremental run after adding 1% more documents, and of a second run that must change
nothing; recall for planted pairs with Jaccard >= 0.85, the share of planted pairs below 0.5
wrongly put in one cluster, and precision (the share of same-cluster pairs whose true
Jaccard reaches the threshold). On a 5,000-document subsample, every pair is compared by
brute force (sparse matrix product) as ground truth. Targets: 100k documents <= 60 s,
recall >= 0.95, precision >= 0.95.
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np

from ..dedup.shingles import Shingler, jaccard

if TYPE_CHECKING:
    from ..client import Lake, Project

LEVELS = (0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.6, 0.5, 0.4, 0.3)
THRESHOLD = 0.8


def _vocabulary(rng: np.random.Generator, size: int = 30_000) -> tuple[np.ndarray, np.ndarray]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    lengths = rng.integers(2, 10, size)
    words = np.array(["".join(rng.choice(letters, n)) for n in lengths])
    weights = 1.0 / np.arange(1, size + 1) ** 1.05
    return words, weights / weights.sum()


def make_corpus(docs: int, seed: int = 0) -> tuple[list[str], list[int], list[str]]:
    """(texts, family of each text (-1: none), kind of each text)."""
    rng = np.random.default_rng(seed)
    words, p = _vocabulary(rng)
    cdf = np.cumsum(p)

    def draw(n: int) -> list[str]:
        return list(words[np.minimum(np.searchsorted(cdf, rng.random(n)), len(words) - 1)])

    boiler = [" ".join(draw(30)) for _ in range(5)]
    long_boiler = [" ".join(draw(75)) for _ in range(2)]

    def base() -> list[str]:
        body = draw(int(rng.integers(115, 135)))
        roll = rng.random()
        if roll < 0.05:
            return long_boiler[int(rng.integers(2))].split() + body[:60]
        if roll < 0.25:
            return boiler[int(rng.integers(5))].split() + body[:100]
        return body

    texts: list[str] = []
    families: list[int] = []
    kinds: list[str] = []
    family = 0
    while len(texts) < docs:
        original = base()
        if rng.random() >= 0.3:
            texts.append(" ".join(original))
            families.append(-1)
            kinds.append("unique")
            continue
        texts.append(" ".join(original))
        families.append(family)
        kinds.append("base")
        for _ in range(1 if rng.random() < 0.8 else 2):
            if len(texts) >= docs:
                break
            kind, variant = _variant(rng, original, draw)
            texts.append(variant)
            families.append(family)
            kinds.append(kind)
        family += 1
    return texts, families, kinds


def _variant(rng: np.random.Generator, original: list[str], draw) -> tuple[str, str]:
    roll = rng.random()
    if roll < 0.08:
        return "copy", " ".join(original)
    if roll < 0.16:
        text = " ".join(w.upper() if rng.random() < 0.3 else w for w in original)
        return "format", text.replace(" ", "  ,\n ", 5) + " ."
    target = float(rng.choice(LEVELS))
    shingles = max(len(original) - 4, 1)
    most = int(shingles * (1 - target) / (5 * (1 + target)))
    subs = int(rng.integers(0, most + 1))
    cut = max(0, round(shingles - 5 * subs - target * (shingles + 5 * subs)))
    edited = list(original)
    positions = rng.choice(np.arange(2, max(len(edited) - cut - 2, 3), 6), subs) if subs else []
    for pos in positions:
        edited[int(pos)] = str(draw(1)[0]) + "x"
    if cut:
        edited = edited[: len(edited) - cut]
    return f"edit{target:g}", " ".join(edited)


def _load(project: Project, texts: list[str]) -> tuple[list[uuid.UUID], float]:
    started = time.perf_counter()
    ids: list[uuid.UUID] = []
    with project.writer(batch_size=5000) as writer:
        for text in texts:
            gid = writer.log(prompt="Write a paragraph.", output=text, model="bench")
            assert gid is not None
            ids.append(gid)
    return ids, time.perf_counter() - started


def _clusters(project: Project) -> dict[uuid.UUID, uuid.UUID]:
    _, rows = project.query(
        "SELECT m.generation_id, m.cluster_id FROM dedup_members m JOIN dedup_indexes i"
        " ON i.project_id = m.project_id AND i.id = m.index_id"
        " WHERE i.method = 'minhash' AND m.cluster_id IS NOT NULL"
    )
    return {gid: cid for gid, cid in rows}


def _same_cluster_pairs(cluster_of: dict[uuid.UUID, uuid.UUID], index: dict) -> set:
    groups: dict[uuid.UUID, list[int]] = {}
    for gid, cid in cluster_of.items():
        groups.setdefault(cid, []).append(index[gid])
    return {
        (min(a, b), max(a, b))
        for members in groups.values()
        for a, b in itertools.combinations(members, 2)
    }


def _brute_force(texts: list[str]) -> dict[tuple[int, int], float]:
    """Exact Jaccard of every pair sharing a shingle (pairs sharing none have 0)."""
    from scipy import sparse

    sets = Shingler().shingle(texts)
    _, columns = np.unique(sets.values, return_inverse=True)
    rows = np.repeat(np.arange(len(texts)), sets.sizes())
    matrix = sparse.csr_matrix(
        (np.ones(len(columns), dtype=np.int32), (rows, columns)),
        shape=(len(texts), int(columns.max()) + 1 if len(columns) else 1),
    )
    common = sparse.triu(matrix @ matrix.T, k=1).tocoo()
    sizes = sets.sizes()
    union = sizes[common.row] + sizes[common.col] - common.data
    return {(int(a), int(b)): float(c / u) for a, b, c, u in
            zip(common.row, common.col, common.data, union, strict=True)}  # fmt: skip


def run_dedup_bench(lake: Lake, docs: int = 20_000, seed: int = 0, sample: int = 5000) -> dict:
    load_before = os.getloadavg()
    started = time.perf_counter()
    texts, families, kinds = make_corpus(docs, seed)
    generate_s = time.perf_counter() - started
    held = max(1, docs // 100)
    project = lake.project(f"bench-dedup-{uuid.uuid4().hex[:8]}")
    try:
        project.set_pii_policy(apply_at="export")  # measure dedup, not PII detection
        ids, ingest_s = _load(project, texts[: docs - held])
        t = time.perf_counter()
        full = project.dedup("minhash", THRESHOLD, field="output")
        full_s = time.perf_counter() - t
        ids += _load(project, texts[docs - held :])[0]
        t = time.perf_counter()
        incremental = project.dedup("minhash", THRESHOLD, field="output")
        incremental_s = time.perf_counter() - t
        t = time.perf_counter()
        again = project.dedup("minhash", THRESHOLD, field="output")
        again_s = time.perf_counter() - t
        index = {gid: i for i, gid in enumerate(ids)}
        flagged = _same_cluster_pairs(_clusters(project), index)
        t = time.perf_counter()
        exact = project.dedup("exact", field="output")
        exact_s = time.perf_counter() - t
    finally:
        with lake._transaction(project) as conn:
            conn.execute("DELETE FROM projects WHERE id = %s", (project.id,))
    # planted truth: every pair within a family, measured exactly
    shingler = Shingler()
    sets = shingler.shingle(texts)
    members: dict[int, list[int]] = {}
    for i, fam in enumerate(families):
        if fam >= 0:
            members.setdefault(fam, []).append(i)
    truth = {
        (a, b): jaccard(sets.get(a), sets.get(b))
        for group in members.values()
        for a, b in itertools.combinations(group, 2)
    }
    high = [pair for pair, j in truth.items() if j >= 0.85]
    low = [pair for pair, j in truth.items() if j < 0.5]
    flagged_j = {pair: truth.get(pair, jaccard(sets.get(pair[0]), sets.get(pair[1])))
                 for pair in flagged}  # fmt: skip
    by_level = {}
    for lo, hi in ((1.0, 1.01), (0.9, 1.0), (0.85, 0.9), (0.8, 0.85), (0.7, 0.8), (0.5, 0.7),
                   (0.0, 0.5)):  # fmt: skip
        pairs = [pair for pair, j in truth.items() if lo <= j < hi]
        by_level[f"{lo:g}-{min(hi, 1):g}"] = {
            "pairs": len(pairs),
            "flagged": round(sum(p in flagged for p in pairs) / len(pairs), 4) if pairs else None,
        }
    # brute force on a subsample: whole families first, then unrelated documents
    chosen: list[int] = []
    for group in members.values():
        if len(chosen) + len(group) > sample // 2:
            break
        chosen += group
    chosen += [i for i, fam in enumerate(families) if fam < 0][: sample - len(chosen)]
    chosen.sort()
    bf = _brute_force([texts[i] for i in chosen])
    position = {doc: k for k, doc in enumerate(chosen)}
    sub_flagged = {
        (position[a], position[b]) for a, b in flagged if a in position and b in position
    }
    bf_high = {pair for pair, j in bf.items() if j >= 0.85}
    bf_true = {pair for pair, j in bf.items() if j >= THRESHOLD}
    return {
        "docs": docs,
        "mean_chars": round(sum(map(len, texts)) / len(texts)),
        "threshold": THRESHOLD,
        "bands": full.details.get("bands"),
        "rows": full.details.get("rows"),
        "generate_s": round(generate_s, 2),
        "ingest_s": round(ingest_s, 2),
        "full_docs": docs - held,
        "full_s": round(full_s, 2),
        "docs_per_s": round((docs - held) / full_s),
        "incremental_docs": held,
        "incremental_s": round(incremental_s, 2),
        "incremental_checked": incremental.newly_checked,
        "rerun_s": round(again_s, 2),
        "rerun_changes": sum(again.changes.values()),
        "exact_s": round(exact_s, 2),
        "exact_duplicates": exact.duplicates,
        "clusters": again.clusters,
        "duplicate_rate": round(again.duplicate_rate, 4),
        "candidates": full.details.get("candidates"),
        "planted_pairs": len(truth),
        "planted_kinds": {k: kinds.count(k) for k in sorted(set(kinds))},
        "recall_at_0.85": round(sum(p in flagged for p in high) / len(high), 4) if high else None,
        "low_pairs_flagged": round(sum(p in flagged for p in low) / len(low), 4) if low else None,
        "precision": round(sum(j >= THRESHOLD for j in flagged_j.values()) / len(flagged_j), 4)
        if flagged_j
        else None,
        "by_jaccard": by_level,
        "bruteforce_docs": len(chosen),
        "bruteforce_pairs_at_0.85": len(bf_high),
        "bruteforce_recall_at_0.85": round(len(bf_high & sub_flagged) / len(bf_high), 4)
        if bf_high
        else None,
        "bruteforce_precision": round(len(bf_true & sub_flagged) / len(sub_flagged), 4)
        if sub_flagged
        else None,
        "bruteforce_low_flagged": sum(bf.get(pair, 0.0) < 0.5 for pair in sub_flagged),
        "load_average": [round(x, 2) for x in (*load_before, *os.getloadavg())],
        "cores": os.cpu_count(),
    }


def format_report(result: dict[str, Any]) -> str:
    def ok(value: float | None, target: float, above: bool = True) -> str:
        if value is None:
            return "n/a"
        met = value >= target if above else value <= target
        return "met" if met else "NOT met"

    lines = [
        f"MinHash dedup of {result['docs']:,} documents (~{result['mean_chars']} characters,"
        f" threshold {result['threshold']}, {result['bands']} bands x {result['rows']} rows):",
        f"  full run        {result['full_docs']:>8,} docs {result['full_s']:7.1f} s"
        f"  {result['docs_per_s']:,} docs/s (100k in <= 60 s:"
        f" {ok(60 - 100_000 / max(result['docs_per_s'], 1), 0)})",
        f"  incremental     {result['incremental_docs']:>8,} docs {result['incremental_s']:7.1f} s",
        f"  second run      {'':>13} {result['rerun_s']:7.1f} s, rows changed:"
        f" {result['rerun_changes']}",
        f"  planted pairs {result['planted_pairs']:,}: recall at J >= 0.85"
        f" {result['recall_at_0.85']} ({ok(result['recall_at_0.85'], 0.95)}), pairs below 0.5"
        f" flagged {result['low_pairs_flagged']}, precision {result['precision']}"
        f" ({ok(result['precision'], 0.95)})",
        f"  brute force on {result['bruteforce_docs']:,} docs"
        f" ({result['bruteforce_pairs_at_0.85']:,} pairs at J >= 0.85): recall"
        f" {result['bruteforce_recall_at_0.85']}, precision {result['bruteforce_precision']},"
        f" flagged pairs below 0.5: {result['bruteforce_low_flagged']}",
        "  flagged share by true Jaccard: "
        + ", ".join(f"{k} {v['flagged']} ({v['pairs']})" for k, v in result["by_jaccard"].items()),
        f"  exact method: {result['exact_s']:.1f} s, {result['exact_duplicates']:,} exact copies",
        f"  {result['clusters']:,} clusters, duplicate rate {result['duplicate_rate']:.1%};"
        f" ingest {result['ingest_s']:.1f} s; load average {result['load_average']}",
    ]
    return "\n".join(lines)


def storage_comparison(
    lake: Lake,
    rows: int = 20_000,
    prompt_repeat: float = 0.6,
    output_repeat: float = 0.3,
    seed: int = 0,
) -> dict[str, Any]:
    """Bytes of text stored per row vs content-addressed, on the same generations.

    Prompts (~200 characters) and outputs (~800) repeat an earlier one with the given
    probabilities. ``per_row`` is a table holding both texts and the three ingest hashes of
    each generation, indexed like ``generations``; ``content_addressed`` is a texts table
    keyed by ``(project_id, hash)`` plus the same per-generation table without the texts.
    Runs on temporary tables of the owner's connection: nothing is left behind."""
    import hashlib

    import psycopg

    rng = np.random.default_rng(seed)
    pool_p, pool_o = make_corpus(rows // 4 + 10, seed)[0], make_corpus(rows + 10, seed + 1)[0]
    prompts: list[str] = []
    outputs: list[str] = []
    fresh_p = fresh_o = 0
    for _ in range(rows):
        if prompts and rng.random() < prompt_repeat:
            prompts.append(prompts[int(rng.integers(len(prompts)))])
        else:
            prompts.append(pool_p[fresh_p % len(pool_p)][:200] + f" #{fresh_p}")
            fresh_p += 1
        if outputs and rng.random() < output_repeat:
            outputs.append(outputs[int(rng.integers(len(outputs)))])
        else:
            outputs.append(pool_o[fresh_o % len(pool_o)] + f" #{fresh_o}")
            fresh_o += 1
    project = uuid.uuid4()

    def digest(text: str) -> bytes:
        return hashlib.sha256(text.encode()).digest()

    data = []
    for prompt, output in zip(prompts, outputs, strict=True):
        ih, oh = digest(prompt), digest(output)
        data.append(
            (project, uuid.uuid4(), prompt, output, ih, oh, hashlib.sha256(ih + oh).digest())
        )
    dsn = lake.url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "CREATE TEMP TABLE per_row (project_id uuid, id uuid, input_text text,"
            " output text, input_hash bytea, output_hash bytea, content_hash bytea,"
            " PRIMARY KEY (project_id, id))"
        )
        conn.execute("CREATE INDEX ON per_row (project_id, content_hash)")
        conn.execute(
            "CREATE TEMP TABLE texts (project_id uuid, hash bytea, body text,"
            " PRIMARY KEY (project_id, hash))"
        )
        conn.execute(
            "CREATE TEMP TABLE refs (project_id uuid, id uuid, input_hash bytea,"
            " output_hash bytea, content_hash bytea, PRIMARY KEY (project_id, id))"
        )
        conn.execute("CREATE INDEX ON refs (project_id, content_hash)")
        with conn.cursor() as cur:
            with cur.copy("COPY per_row FROM STDIN") as copy:
                for row in data:
                    copy.write_row(row)
            with cur.copy("COPY refs FROM STDIN") as copy:
                for p, i, _, _, ih, oh, ch in data:
                    copy.write_row((p, i, ih, oh, ch))
            unique = {ih: prompt for _, _, prompt, _, ih, _, _ in data}
            unique.update({oh: output for _, _, _, output, _, oh, _ in data})
            with cur.copy("COPY texts FROM STDIN") as copy:
                for h, body in unique.items():
                    copy.write_row((project, h, body))
        sizes = {
            name: conn.execute(f"SELECT pg_total_relation_size('{name}')").fetchone()[0]
            for name in ("per_row", "texts", "refs")
        }
    per_row = sizes["per_row"]
    addressed = sizes["texts"] + sizes["refs"]
    return {
        "rows": rows,
        "prompt_repeat": prompt_repeat,
        "output_repeat": output_repeat,
        "distinct_texts": len(unique),
        "per_row_mib": round(per_row / 2**20, 2),
        "content_addressed_mib": round(addressed / 2**20, 2),
        "saving": round(1 - addressed / per_row, 3),
    }
