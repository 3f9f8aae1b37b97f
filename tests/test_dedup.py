"""Deduplication: planted duplicates of known similarity, incremental = full, scope rules,
idempotence, contamination, semantic pairs, row-level security; against a real database."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pytest

import promptlake
from promptlake import NotFoundError, PermissionDeniedError, ValidationError
from promptlake.dedup import Selection
from promptlake.dedup.minhash import Signer, band_keys, candidate_pairs, lsh_params
from promptlake.dedup.semantic import store_embeddings
from promptlake.dedup.shingles import Shingler, jaccard
from promptlake.ingest.records import content_hashes

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def words(seed: int, n: int = 104) -> list[str]:
    """Random words from a large vocabulary: unrelated texts share no 5-gram."""
    rng = random.Random(seed)
    return ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(7)) for _ in range(n)]


def text(ws: list[str]) -> str:
    return " ".join(ws)


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def snapshot(dbq, project) -> tuple[list, list]:
    """Stored members and clusters of a project, without timestamps."""
    _, members = dbq(
        "SELECT i.key, m.generation_id, m.cluster_id, m.similarity, m.source_hash"
        " FROM dedup_members m JOIN dedup_indexes i ON i.project_id = m.project_id"
        " AND i.id = m.index_id WHERE m.project_id = :p ORDER BY 1, 2",
        {"p": project.id},
    )
    _, clusters = dbq(
        "SELECT i.key, c.id, c.size, c.min_similarity FROM dedup_clusters c JOIN dedup_indexes i"
        " ON i.project_id = c.project_id AND i.id = c.index_id WHERE c.project_id = :p"
        " ORDER BY 1, 2",
        {"p": project.id},
    )
    return members, clusters


def clusters_of(dbq, project, method: str = "minhash") -> dict:
    """generation id -> cluster id (None: no duplicate)."""
    _, rows = dbq(
        "SELECT m.generation_id, m.cluster_id FROM dedup_members m JOIN dedup_indexes i"
        " ON i.project_id = m.project_id AND i.id = m.index_id"
        " WHERE m.project_id = :p AND i.method = :m",
        {"p": project.id, "m": method},
    )
    return dict(rows)


# -- the pieces against datasketch ---------------------------------------------------------


def test_signatures_and_buckets_equal_datasketch() -> None:
    from datasketch import MinHash, MinHashLSH

    texts = [text(words(i)) for i in range(30)]
    texts += [text(words(i)[:-12]) for i in range(10)]  # Jaccard 0.88 with their originals
    sets = Shingler().shingle(texts)
    signer = Signer()
    signatures = signer.sign(sets)
    bands, rows = lsh_params(0.8)
    lsh = MinHashLSH(num_perm=128, params=(bands, rows))
    reference = []
    for i in range(len(texts)):
        m = MinHash(num_perm=128, seed=1, hashfunc=lambda x: x)
        m.update_batch([int(v) for v in sets.get(i)])
        assert (m.hashvalues == signatures[i]).all()
        reference.append(m)
        lsh.insert(i, m)
    expected = {
        (min(i, j), max(i, j)) for i, m in enumerate(reference) for j in lsh.query(m) if i != j
    }
    keys = band_keys(signatures, bands, rows)
    everything = np.ones(len(texts), dtype=bool)
    pairs, _ = candidate_pairs(keys, everything, everything)
    assert {(int(a), int(b)) for a, b in pairs} == expected
    assert len(expected) >= 10


def test_shingling_normalizes_case_punctuation_and_whitespace() -> None:
    base = text(words(1))
    variants = [base.upper(), base.replace(" ", "  \n"), base.replace(" ", ", ") + "!"]
    sets = Shingler().shingle([base, *variants, text(words(1)[:-10]), "", "one two"])
    for i in range(1, 4):
        assert jaccard(sets.get(0), sets.get(i)) == 1.0
        assert sets.set_hashes[i] == sets.set_hashes[0]
    assert jaccard(sets.get(0), sets.get(4)) == pytest.approx(0.9)
    assert len(sets.get(5)) == 0 and len(sets.get(6)) == 1


# -- planted duplicates --------------------------------------------------------------------


def plant(project) -> dict[str, promptlake.Generation]:
    """Texts with known Jaccard to ``base``: copies, format changes, truncations."""
    ws = words(0)
    boiler = words(99, 50)
    planted = {
        "base": text(ws),
        "copy": text(ws),
        "spaces": "  " + "\n".join(ws) + "  ",  # same normalized text: an exact duplicate
        "upper": text(ws).upper(),  # exact hashes keep case; shingles fold it
        "j95": text(ws[:-5]),
        "j90": text(ws[:-10]),
        "j85": text(ws[:-15]),
        "j60": text(ws[:-40]),
        "j40": text(ws[:-60]),
        "boiler1": text(boiler + words(50, 54)),  # share 46 of 154 shingles: Jaccard 0.30
        "boiler2": text(boiler + words(51, 54)),
        "other": text(words(7)),
    }
    return {
        name: project.log(prompt="Write it.", output=body, created_at=at(i))
        for i, (name, body) in enumerate(planted.items())
    }


def test_planted_duplicates_exact_and_minhash(project, dbq) -> None:
    g = plant(project)
    exact = project.dedup("exact")
    assert exact.clusters == 1 and exact.duplicates == 2
    clusters = clusters_of(dbq, project, "exact")
    assert {n for n in g if clusters[g[n].id] == g["base"].id} == {"base", "copy", "spaces"}

    near = project.dedup("minhash", 0.8, field="output")
    clusters = clusters_of(dbq, project)
    same = {n for n in g if clusters[g[n].id] == g["base"].id}
    assert same == {"base", "copy", "spaces", "upper", "j95", "j90", "j85"}
    assert all(clusters[g[n].id] is None for n in ("j60", "j40", "boiler1", "boiler2", "other"))
    assert near.clusters == 1 and near.duplicates == 6 and near.checked == len(g)
    assert near.duplicate_rate == pytest.approx(6 / len(g))
    _, sims = dbq(
        "SELECT generation_id, similarity FROM dedup_members WHERE cluster_id = :c"
        " AND index_id = (SELECT id FROM dedup_indexes WHERE method = 'minhash')",
        {"c": g["base"].id},
    )
    by_id = dict(sims)
    assert by_id[g["j90"].id] == pytest.approx(0.9) and by_id[g["j85"].id] == pytest.approx(0.85)
    assert near.examples[0].id == g["base"].id and near.examples[0].size == 7
    assert near.examples[0].min_similarity == pytest.approx(0.85)
    _, rates = project.query(
        "SELECT method, field, threshold, day, checked, duplicates, duplicate_rate"
        " FROM dedup_rates ORDER BY method"
    )
    assert rates == [
        ("exact", "content", 1.0, T0.date(), 12, 2, 2 / 12),
        ("minhash", "output", 0.8, T0.date(), 12, 6, 0.5),
    ]
    # the content field compares the prompt too: same verdicts here
    assert project.dedup("minhash", field="content").duplicates == 6
    # at 0.7 the 0.6 edit joins through the 0.85 one (J 0.71): clusters are connected
    # components, so a member may be less similar to the representative than the threshold
    lower = project.dedup("minhash", 0.7, field="output")  # a second index
    assert lower.duplicates == 7 and lower.examples[0].min_similarity == pytest.approx(0.6)
    assert project.dedup("minhash", 0.8, field="output").changes["members_written"] == 0


def test_distinct_content_is_one_query(project) -> None:
    g = plant(project)
    _, rows = project.query(
        "SELECT generation_id, canonical_id FROM generation_canonical ORDER BY generation_id"
    )
    canonical = dict(rows)
    assert canonical[g["copy"].id] == canonical[g["spaces"].id] == g["base"].id
    assert canonical[g["upper"].id] == g["upper"].id
    _, distinct = project.query(
        "SELECT count(*) FROM generation_canonical WHERE generation_id = canonical_id"
    )
    assert distinct == [(len(g) - 2,)]


# -- incremental runs, idempotence, scope ---------------------------------------------------


def test_incremental_runs_equal_a_full_run(project, dbq) -> None:
    x0 = words(10)
    x1, x2 = x0[:-12], x0[:-24]  # J(x0,x1) 0.88, J(x1,x2) 0.86, J(x0,x2) 0.76
    first = [
        project.log(prompt="p", output=text(x0), created_at=at(10)),
        project.log(prompt="p", output=text(x2), created_at=at(12)),
        project.log(prompt="p", output=text(words(11)), created_at=at(13)),
        project.log(prompt="p", output=text(words(12)), created_at=at(14)),
        project.log(prompt="p", output=text(words(12)[:-6]), created_at=at(15)),
    ]
    assert project.dedup("minhash").clusters == 1
    bridge = project.log(prompt="p", output=text(x1), created_at=at(1))  # backfilled, earliest
    project.log(prompt="p", output=text(words(11)).upper(), created_at=at(16))
    report = project.dedup("minhash")
    assert report.newly_checked == 2 and report.clusters == 3
    incremental = snapshot(dbq, project)
    clusters = clusters_of(dbq, project)
    assert clusters[first[0].id] == clusters[first[1].id] == bridge.id  # merged, new rep
    project.dedup("minhash", rebuild=True)
    assert snapshot(dbq, project) == incremental

    # a text rewritten after the fact (as anonymization does) and a deleted representative
    new_text = text(words(13))
    hashes = content_hashes("p", None, new_text)
    dbq(
        "UPDATE generations SET output = :o, input_hash = :i, output_hash = :h,"
        " content_hash = :c WHERE id = :g",
        {"o": new_text, "i": hashes[0], "h": hashes[1], "c": hashes[2], "g": first[3].id},
    )
    dbq("DELETE FROM generations WHERE id = :g", {"g": bridge.id})
    report = project.dedup("minhash")
    assert report.clusters == 1  # the chain x0-x1-x2 broke; x3's pair dissolved
    incremental = snapshot(dbq, project)
    project.dedup("minhash", rebuild=True)
    assert snapshot(dbq, project) == incremental


def test_running_twice_changes_nothing(project, dbq) -> None:
    plant(project)
    for method in ("exact", "minhash"):
        project.dedup(method)
        _, before = dbq("SELECT xmin::text, * FROM dedup_members ORDER BY generation_id, index_id")
        _, clusters = dbq("SELECT xmin::text, * FROM dedup_clusters ORDER BY index_id, id")
        again = project.dedup(method)
        assert again.newly_checked == 0 and sum(again.changes.values()) == 0
        assert (
            dbq("SELECT xmin::text, * FROM dedup_members ORDER BY generation_id, index_id")[1]
            == before
        )
        assert dbq("SELECT xmin::text, * FROM dedup_clusters ORDER BY index_id, id")[1] == clusters


def test_no_cluster_crosses_projects(lake, dbq) -> None:
    a, b = lake.project("a"), lake.project("b")
    for proj in (a, b):
        proj.log(prompt="p", output=text(words(1)))
        proj.log(prompt="p", output=text(words(1)[:-5]))
        proj.log(prompt="p", output=text(words(2)))
    a.log(prompt="p", output=text(words(2)[:-3]))  # its twin is in both projects
    for method in ("exact", "minhash"):
        assert a.dedup(method).checked == 4 and b.dedup(method).checked == 3
    assert a.dedup("minhash").clusters == 2 and b.dedup("minhash").clusters == 1
    _, crossing = dbq(
        "SELECT count(*) FROM dedup_members m JOIN generations g ON g.id = m.cluster_id"
        " WHERE g.project_id <> m.project_id"
        " UNION ALL SELECT count(*) FROM dedup_clusters c JOIN dedup_indexes i"
        " ON i.id = c.index_id WHERE i.project_id <> c.project_id"
    )
    assert crossing == [(0,), (0,)]


def test_within_origin(project, dbq) -> None:
    real = project.log(prompt="p", output=text(words(3)), created_at=at(1))
    synthetic = project.log(prompt="p", output=text(words(3)), origin="synthetic",
                            generator="llm-x", created_at=at(2))  # fmt: skip
    project.log(prompt="p", output=text(words(3)[:-4]), origin="synthetic", generator="llm-x",
                created_at=at(3))  # fmt: skip
    assert project.dedup("minhash").clusters == 1
    scoped = project.dedup("minhash", within_origin=True)
    assert scoped.clusters == 1 and scoped.duplicates == 1
    assert project.dedup("exact", within_origin=True).clusters == 0
    _, rows = dbq(
        "SELECT m.generation_id, m.cluster_id FROM dedup_members m JOIN dedup_indexes i"
        " ON i.id = m.index_id WHERE i.within_origin AND i.method = 'minhash'"
    )
    assert dict(rows)[real.id] is None and dict(rows)[synthetic.id] == synthetic.id


def test_contamination_between_two_selections(project) -> None:
    evals = [project.log(prompt=text(words(100 + i, 40)), output="ref", tags=["eval"])
             for i in range(5)]  # fmt: skip
    leaked = project.log(prompt=text(words(100, 40)[:-2]) + " please", output="x",
                         origin="synthetic", generator="gen", tags=["train"])  # fmt: skip
    project.log(prompt=text(words(103, 40)[:20] + words(200, 20)), output="x", tags=["train"])
    project.log(prompt=text(words(300, 40)), output="x", tags=["train"])
    report = project.contamination(Selection(tags=["train"]), Selection(tags=["eval"]))
    assert report.references == 5 and report.suspects == 3
    assert [(m.suspect_id, m.reference_id) for m in report.matches] == [(leaked.id, evals[0].id)]
    assert report.contamination_rate == pytest.approx(0.2)
    synthetic = project.contamination(Selection(origin="synthetic"), Selection(tags=["eval"]))
    assert synthetic.contaminated_suspects == 1
    with pytest.raises(ValidationError, match="references"):
        project.contamination(Selection(tags=["train"]), Selection())


# -- semantic ------------------------------------------------------------------------------


def test_semantic_pairs_on_stored_embeddings(project, dbq) -> None:
    with pytest.raises(NotFoundError, match="no stored embeddings"):
        project.dedup("semantic")
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 16))
    gens, vectors = [], {}
    for i in range(9):
        g = project.log(prompt=f"q{i}", output="a", created_at=at(i))
        gens.append(g)
        noise = 0.02 if i < 6 else 5.0  # six near two centers, three far from everything
        vectors[g.id] = centers[i % 2] + rng.normal(scale=noise, size=16)
    assert store_embeddings(project, "toy-16", dict(list(vectors.items())[:6])) == 6
    report = project.dedup("semantic", 0.95)
    assert report.clusters == 2 and report.duplicates == 4
    store_embeddings(project, "toy-16", dict(list(vectors.items())[6:]))
    report = project.dedup("semantic", 0.95)
    assert report.newly_checked == 3 and report.clusters == 2
    incremental = snapshot(dbq, project)
    project.dedup("semantic", 0.95, rebuild=True)
    assert snapshot(dbq, project) == incremental
    clusters = clusters_of(dbq, project, "semantic")
    assert clusters[gens[2].id] == gens[0].id and clusters[gens[3].id] == gens[1].id
    store_embeddings(project, "other", {gens[0].id: [1.0, 0.0]})
    with pytest.raises(ValidationError, match="embedder"):
        project.dedup("semantic")


# -- access --------------------------------------------------------------------------------


def test_who_may_dedup(lake, database_url, monkeypatch) -> None:
    admin = lake.project("shared")
    plant(admin)
    for role in ("writer", "analyst", "viewer"):
        admin.grant(f"{role}-p", role)
    admin.dedup("minhash")
    monkeypatch.setenv("PROMPTLAKE_DATABASE_URL", database_url)
    with promptlake.connect(principal="analyst-p") as as_analyst:
        proj = as_analyst.project("shared", create=False)
        with pytest.raises(PermissionDeniedError, match="store=False"):
            proj.dedup("minhash")
        assert proj.dedup("minhash", store=False).duplicates == 6
        assert proj.dedup("exact", store=False).duplicates == 2
        _, rows = proj.query("SELECT count(*) FROM dedup_clusters")
        assert rows == [(1,)]
        with pytest.raises(PermissionDeniedError):  # its own login may not delete at all
            proj.query("DELETE FROM dedup_clusters")
        assert proj.query("SELECT count(*) FROM dedup_clusters")[1] == [(1,)]
    with promptlake.connect(principal="writer-p") as as_writer:
        proj = as_writer.project("shared", create=False)
        with pytest.raises(PermissionDeniedError, match="writer"):
            proj.dedup("exact", store=False)
        g = proj.log(prompt="by a writer", output="o")
        assert store_embeddings(proj, "e", {g.id: [1.0, 2.0]}) == 1
        for table in ("dedup_members", "generation_embeddings"):
            with pytest.raises(PermissionDeniedError):  # writers read nothing back
                proj.query(f"SELECT count(*) FROM {table}")
    with promptlake.connect(principal="viewer-p") as as_viewer:
        viewer_project = as_viewer.project("shared", create=False)
        with pytest.raises(PermissionDeniedError, match="viewer"):
            viewer_project.dedup("exact", store=False)


def test_bad_arguments_are_named(project) -> None:
    with pytest.raises(ValidationError, match="method"):
        project.dedup("fuzzy")
    with pytest.raises(ValidationError, match="threshold"):
        project.dedup("minhash", 1.5)
    with pytest.raises(ValidationError, match="field"):
        project.dedup("minhash", field="prompt")


# -- command line and benchmark --------------------------------------------------------------


def test_cli_dedup_and_bench(lake, database_url, tmp_path) -> None:
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    plant(lake.project("cli"))
    exe = Path(sys.executable).with_name("promptlake")
    env = {**os.environ, "PROMPTLAKE_DATABASE_URL": database_url,
           "PROMPTLAKE_HOME": str(tmp_path / "home")}  # fmt: skip

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env)

    out = run("dedup", "--project", "cli", "--method", "minhash", "--field", "output", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["duplicates"] == 6 and report["clusters"] == 1 and report["stored"] is True
    assert report["examples"][0]["size"] == 7
    out = run("dedup", "--project", "cli", "--method", "exact")
    assert out.returncode == 0 and "1 clusters, 2 duplicates" in out.stdout, out.stderr
    out = run("dedup", "--project", "cli", "--method", "semantic")
    assert out.returncode == 1 and "no stored embeddings" in out.stderr
    out = run("dedup", "--project", "cli", "--threshold", "2")
    assert out.returncode == 2
    out = run("bench", "dedup", "--docs", "300", "--json")
    assert out.returncode == 0, out.stderr
    figures = json.loads(out.stdout)
    assert figures["recall_at_0.85"] == 1.0 and figures["rerun_changes"] == 0
    assert figures["precision"] >= 0.9 and figures["bruteforce_docs"] == 300
    assert lake.projects() == ["cli"]  # the bench cleaned up after itself
