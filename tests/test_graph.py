"""The entity graph: extraction into the tables, incremental runs, resolution and hand
corrections, PII kept out, the entity filters of search and export, neighbours and paths
against a hand-built graph, lineage, and precision/recall on the labelled sample."""

from __future__ import annotations

import json
import uuid

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from promptlake import NotFoundError, PermissionDeniedError, ValidationError
from promptlake.bench.entity_sample import DICTIONARY, labelled_sample, score
from promptlake.cli import main
from promptlake.graph import ner
from promptlake.graph.extract import BuiltinExtractor, Dictionary

SUPPORT = (
    "Hi, I'm Dana Whitfield from Northwind Traders. Our Acme Cloud dashboard at"
    " https://console.acme.io/billing shows a 502. Contact bob@example.com please."
)
CODE = (
    "Run `pip install requests` first.\nimport pandas as pd\n"
    "Then call load_config() and read docs.python.org for details."
)


def _names(found) -> set[tuple[str, str]]:
    return {(e.kind, e.name) for e in found}


def test_extract_resolve_incremental_and_cascade(project, dbq) -> None:
    project.entities.set_dictionary({"product": {"Acme Cloud": ["AcmeCloud", "acme-cloud"]}})
    g1 = project.log(prompt=SUPPORT, output="Sorry Dana Whitfield, AcmeCloud is back up.")
    g2 = project.log(prompt="How do I parse CSV?", output=CODE)
    report = project.entities.extract()
    assert report.generations == 2 and report.mentions > 0
    found = _names(project.entities(limit=100))
    assert {("product", "Acme Cloud"), ("name", "Dana Whitfield"), ("name", "Northwind Traders"),
            ("url", "https://console.acme.io/billing"), ("package", "requests"),
            ("package", "pandas"), ("code", "load_config"),
            ("domain", "docs.python.org")} <= found  # fmt: skip
    # the default policy pseudonymized the address at ingest: the pseudonym is the entity
    emails = project.entities("email")
    assert len(emails) == 1 and emails[0].name.startswith("<EMAIL_")
    assert "bob@example.com" not in str(dbq("SELECT * FROM entities")[1])
    # AcmeCloud (the dictionary alias) and "Acme Cloud" are one entity
    acme = project.entities.get("acme cloud")
    assert acme.mentions == 2 and acme.generations == 1
    mention = project.entities.mentions(acme.id)[0]
    text = {"input": SUPPORT, "output": "Sorry Dana Whitfield, AcmeCloud is back up."}
    assert text[mention.field][mention.start : mention.end] == mention.surface
    # nothing new: nothing read; a changed text is read again
    assert project.entities.extract().generations == 0
    near = {n.name for n in project.entities.neighbors("Acme Cloud")}
    assert "https://console.acme.io/billing" in near
    dbq("UPDATE generations SET output = 'Fixed by Priya Raman.', content_hash = '\\x01'"
        " WHERE id = :g", {"g": g1.id})  # fmt: skip
    again = project.entities.extract()
    assert again.generations == 1
    assert ("name", "Priya Raman") in _names(project.entities(limit=100))
    assert project.entities.get("Acme Cloud").mentions == 1  # the output's mention went
    # a new dictionary is a new extractor version: everything is read again
    project.entities.set_dictionary({"product": {"Acme Cloud": []}, "model": {"Atlas": []}})
    assert project.entities.extract().generations == 2
    # deleting a generation takes its mentions; pruning drops the entities only it named
    dbq("DELETE FROM generations WHERE id = :g", {"g": g2.id})
    assert project.entities.extract().pruned_entities == 4  # requests pandas load_config docs
    assert ("package", "requests") not in _names(project.entities(limit=100))
    _, rows = dbq("SELECT count(*) FROM entity_mentions WHERE generation_id = :g", {"g": g2.id})
    assert rows == [(0,)]


def test_entities_never_carry_pii_the_policy_removes(project, dbq) -> None:
    raw = "Write to jane.roe@example.org or call +1 415 555 0143 about Blue Harbor Bank."
    project.set_pii_policy({"EMAIL": "pseudonymize", "PHONE": "redact"}, apply_at="export")
    project.log(prompt=raw, output="ok")  # stored raw: the policy applies at export
    project.entities.extract()
    _, rows = dbq("SELECT e.name, m.surface FROM entities e JOIN entity_mentions m"
                  " ON m.entity_id = e.id")  # fmt: skip
    flat = json.dumps(rows)
    assert "jane.roe" not in flat and "555" not in flat
    (email,) = project.entities("email")
    assert email.name.startswith("<EMAIL_") and email.name.endswith(">")
    # the same address written differently gets the same pseudonym (one entity)
    project.log(prompt="cc JANE.ROE@example.org", output="ok")
    project.entities.extract()
    assert len(project.entities("email")) == 1
    # a policy that removes addresses outright leaves no e-mail entity at all
    other = project.lake.project("redacting")
    other.set_pii_policy({"EMAIL": "redact"}, apply_at="export")
    other.log(prompt=raw, output="ok")
    assert other.entities.extract().dropped_for_pii >= 1
    assert other.entities("email") == []


def test_merge_rename_relate_and_embedding_resolution(project) -> None:
    project.log(prompt="Northwind Traders called.", output="Northwind Trader is the client.")
    project.log(prompt="We met Grace Nakamura today.", output="Grace Nakamura agreed.")
    project.entities.extract()
    proposed = project.entities.resolve(embedder="hashing-384", threshold=0.8, apply=False)
    assert [(a, b) for a, b, _ in proposed] == [("Northwind Traders", "Northwind Trader")]
    assert len(project.entities("name")) == 3  # nothing applied
    merged = project.entities.merge("Northwind Trader", "Northwind Traders")
    assert merged.aliases == ["Northwind Trader"] and merged.mentions == 2
    with pytest.raises(NotFoundError):
        project.entities.get("nobody at all")
    # later extractions resolve the alias to the kept entity
    project.log(prompt="northwind trader again", output="Northwind Trader, again.")
    project.entities.extract()
    assert project.entities.get("Northwind Traders").mentions == 3
    renamed = project.entities.rename("Northwind Traders", "Northwind Traders Ltd")
    assert renamed.name == "Northwind Traders Ltd" and "Northwind Traders" in renamed.aliases
    with pytest.raises(ValidationError, match="merge them"):
        project.entities.rename("Grace Nakamura", "Northwind Traders Ltd")
    rel = project.entities.relate("Grace Nakamura", "works_at", "Northwind Traders Ltd")
    assert isinstance(rel, uuid.UUID)
    assert [(n.name, n.predicate) for n in project.entities.neighbors("Grace Nakamura")] == [
        ("Northwind Traders Ltd", "works_at")
    ]
    assert [e.action for e in project.audit_log()].count("entities") == 2


def test_search_and_export_filter_by_entity(project, tmp_path, monkeypatch) -> None:
    project.entities.set_dictionary({"product": {"PostgreSQL": ["Postgres"]}})
    pg = project.log(prompt="tune Postgres autovacuum", output="set scale factor lower")
    project.log(prompt="tune Redis eviction", output="set maxmemory policy")
    project.entities.extract()
    project.embed()  # the full-text index search reads
    hits = project.search("tune", mode="text", entity="postgresql")
    assert [h.generation_id for h in hits] == [pg.id]
    assert project.search("tune", mode="text", entity="no such thing") == []
    assert len(project.search("tune", mode="text")) == 2
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "pg.parquet"
    done = CliRunner().invoke(main, ["dataset", "export", "--project", "test-project", "--out",
                                     str(out), "--entity", "Postgres"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert [r["id"] for r in pq.read_table(out).to_pylist()] == [str(pg.id)]


def _hand_built(dbq, project) -> dict[str, uuid.UUID]:
    """a - b - c - d, a - e - d (two paths of 3 and 2 edges from a to d), f alone,
    a cycle b - c - g - b; support: a-b twice, a-e once."""
    ids = {n: uuid.uuid4() for n in "abcdefg"}
    for n, eid in ids.items():
        dbq("INSERT INTO entities (project_id, id, kind, name, key) VALUES (:p, :e, 'name',"
            " :n, :n)", {"p": project.id, "e": eid, "n": f"node {n}"})  # fmt: skip
    gens = [project.log(prompt=f"p{i}", output="o").id for i in range(2)]
    for s, o in ("ab", "bc", "cd", "ae", "ed", "cg", "gb"):
        rid = uuid.uuid4()
        dbq("INSERT INTO entity_relations (project_id, id, subject_id, predicate, object_id)"
            " VALUES (:p, :r, :s, 'mentioned_with', :o)",
            {"p": project.id, "r": rid, "s": ids[s], "o": ids[o]})  # fmt: skip
        for g in gens[: 2 if s + o == "ab" else 1]:
            dbq("INSERT INTO relation_support VALUES (:p, :r, :g)",
                {"p": project.id, "r": rid, "g": g})  # fmt: skip
    return ids


def test_neighbors_and_paths_on_a_hand_built_graph(project, dbq) -> None:
    ids = _hand_built(dbq, project)
    graph = project.entities
    first = graph.neighbors("node a")
    assert [(n.name, n.support) for n in first] == [("node b", 2), ("node e", 1)]
    two = {(n.name, n.depth) for n in graph.neighbors("node a", depth=2)}
    assert two == {("node b", 1), ("node e", 1), ("node c", 2), ("node d", 2), ("node g", 2)}
    path = graph.path("node a", "node d")
    assert [n for _, _, n, _ in path] == ["node a", "node e", "node d"]  # the shorter one
    assert [p for *_, p in path] == [None, "mentioned_with", "mentioned_with"]
    assert [n for _, _, n, _ in graph.path("node d", "node a")] == ["node d", "node e", "node a"]
    assert [n for _, _, n, _ in graph.path("node g", "node e")] in (
        ["node g", "node b", "node a", "node e"],
        ["node g", "node c", "node d", "node e"],
    )
    assert graph.path("node a", "node f") is None
    assert graph.path("node a", "node d", max_depth=1) is None
    assert [n for _, _, n, _ in graph.path("node a", "node a")] == ["node a"]
    assert graph.neighbors(ids["f"]) == []
    with pytest.raises(ValidationError, match="depth"):
        graph.neighbors("node a", depth=9)


def test_lineage_of_chains_synthetic_rows_and_dataset_versions(project, dbq) -> None:
    root = project.log(prompt="real question", output="real answer")
    child = project.log(prompt="follow-up", output="answer 2", parent=root)
    synthetic = project.log(
        prompt="paraphrased question", output="synthetic answer", origin="synthetic",
        generator="llama-3-70b", lineage={"seed_generation_ids": [str(child.id)], "method": "x"},
    )  # fmt: skip
    version = uuid.uuid4()
    dbq("INSERT INTO dataset_versions (project_id, id, name, filter, row_count, path, md5)"
        " VALUES (:p, :v, 'sft', '{}', 1, 'data/split', 'abc.dir')",
        {"p": project.id, "v": version})  # fmt: skip
    dbq("INSERT INTO dataset_items VALUES (:p, :v, :g, 'train')",
        {"p": project.id, "v": version, "g": synthetic.id})  # fmt: skip
    up = project.lineage(version)
    assert [(n.kind, n.id, n.depth, n.relation) for n in up] == [
        ("generation", synthetic.id, 1, "cut_from"),
        ("generation", child.id, 2, "synthetic_from"),
        ("generation", root.id, 3, "chain"),
    ]
    down = project.lineage(root.id, direction="descendants")
    assert [(n.kind, n.id, n.depth) for n in down] == [
        ("generation", child.id, 1), ("generation", synthetic.id, 2),
        ("dataset_version", version, 3),
    ]  # fmt: skip
    assert project.lineage(root) == []
    with pytest.raises(NotFoundError):
        project.lineage(uuid.uuid4())
    with pytest.raises(ValidationError, match="direction"):
        project.lineage(root, direction="sideways")


def test_only_admins_extract_and_correct(project, monkeypatch, database_url) -> None:
    import promptlake

    project.log(prompt="Dana Whitfield asked.", output="ok")
    project.entities.extract()
    project.grant("analyst-1", "analyst")
    monkeypatch.setenv("PROMPTLAKE_DATABASE_URL", database_url)
    with promptlake.connect(principal="analyst-1") as lake:
        proj = lake.project("test-project", create=False)
        assert [e.name for e in proj.entities()] == ["Dana Whitfield"]
        with pytest.raises(PermissionDeniedError):
            proj.entities.extract()
        with pytest.raises(PermissionDeniedError):
            proj.entities.rename("Dana Whitfield", "D. Whitfield")
        _, rows = proj.query("SELECT name, generations FROM entity_mentions_daily")
        assert rows == [("Dana Whitfield", 1)]


def test_cli_entities_commands(project) -> None:
    project.log(prompt="Dana Whitfield from Northwind Traders", output="ok")
    runner = CliRunner()
    base = ["--project", "test-project"]
    done = runner.invoke(main, ["entities", "extract", *base])
    assert done.exit_code == 0 and "generations/s" in done.output, done.output
    listed = runner.invoke(main, ["entities", "list", *base, "--json"])
    assert {e["name"] for e in json.loads(listed.output)} == {"Dana Whitfield", "Northwind Traders"}
    shown = runner.invoke(main, ["entities", "show", "dana whitfield", *base])
    assert shown.exit_code == 0 and "1 mentions in 1 generations" in shown.output
    near = runner.invoke(main, ["entities", "neighbors", "Dana Whitfield", *base, "--json"])
    assert [n["name"] for n in json.loads(near.output)] == ["Northwind Traders"]
    path = runner.invoke(main, ["entities", "path", "Dana Whitfield", "Northwind Traders", *base])
    assert "name:Dana Whitfield -[mentioned_with]- name:Northwind Traders" in path.output
    merged = runner.invoke(main, ["entities", "merge", "Northwind Traders", "Dana Whitfield",
                                  *base])  # fmt: skip
    assert merged.exit_code == 0 and "aliases Northwind Traders" in merged.output
    missing = runner.invoke(main, ["entities", "show", "nobody", *base])
    assert missing.exit_code == 1 and "no entity 'nobody'" in missing.output
    lineage = runner.invoke(main, ["lineage", str(uuid.uuid4()), *base])
    assert lineage.exit_code == 1 and "no generation, run or dataset version" in lineage.output


def _print_scores(title: str, scores: dict) -> None:
    print(f"\n{title}")
    for kind, s in scores.items():
        print(f"  {kind:8} gold {s['gold']:4}  precision {s['precision']:.3f}"
              f"  recall {s['recall']:.3f}")  # fmt: skip


def test_builtin_precision_recall_per_kind() -> None:
    extractor = BuiltinExtractor(Dictionary(DICTIONARY))
    dev = score(extractor.extract, labelled_sample(300))
    held = score(extractor.extract, labelled_sample(200, held_out=True))
    _print_scores("built-in extractor, development templates", dev)
    _print_scores("built-in extractor, held-out templates", held)
    assert sum(s["gold"] for s in dev.values()) >= 900
    assert set(held) >= {"url", "email", "domain", "package", "code", "model", "product", "name"}
    for kind, s in held.items():  # floors well under the measured figures: regressions fail
        assert s["precision"] >= 0.85, (kind, s)
        assert s["recall"] >= 0.6, (kind, s)


@pytest.mark.skipif(not ner.available(), reason="the ner extra (spaCy model) is not installed")
def test_spacy_precision_recall_per_kind() -> None:
    extractor = ner.SpacyExtractor()
    sample = labelled_sample(200, held_out=True)
    found = dict(zip((t for t, _ in sample), extractor.extract_many([t for t, _ in sample]),
                     strict=True))  # fmt: skip
    scores = score(found.__getitem__, sample, ner=True)
    _print_scores(f"spaCy {extractor.version}, held-out templates", scores)
    assert set(scores) == {"person", "org", "place"}
    assert scores["person"]["recall"] >= 0.5
