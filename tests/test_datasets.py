"""Datasets: the export filter and its determinism, the file stages (dedup, anonymize,
split), recorded versions (list, get, items, diff), runs using versions (MLflow inputs,
the ``dataset_lineage`` view) and the CLI over them. The DVC pipeline itself runs in
``test_dvc_pipeline.py``."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from promptlake import ValidationError
from promptlake.cli import main
from promptlake.datasets import export as exporter
from promptlake.datasets import registry, transform
from promptlake.datasets.params import DedupParams, SplitParams, parse

T0 = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
BASE = {"dataset": {"name": "sft", "mlflow": False}, "export": {"project": "test-project"}}


def _params(**sections):
    raw = {**BASE, **sections}
    raw["export"] = {**BASE["export"], **sections.get("export", {})}
    return parse(raw)


def _fill(project, n: int = 30) -> list[uuid.UUID]:
    """n generations: two models, every fifth synthetic, tags, scores, spread over days."""
    ids = []
    for i in range(n):
        synthetic = i % 5 == 4
        g = project.log(
            prompt=f"question number {i} about topic {i % 7}: how do I do thing {i}?",
            output=f"answer {i}: first do step {i}, then step {i + 1}, and check the result.",
            model="gpt-4o" if i % 2 else "llama-3",
            tags=["eval"] if i % 3 == 0 else ["prod"],
            created_at=T0 + dt.timedelta(days=i),
            origin="synthetic" if synthetic else "real",
            generator="llama-3-70b" if synthetic else None,
            prompt_tokens=10 + i,
            completion_tokens=20,
        )
        project.score(g, "helpfulness", (i % 10) / 10)
        ids.append(g.id)
    return ids


def test_params_report_every_problem_at_once() -> None:
    with pytest.raises(ValidationError) as caught:
        parse({
            "dataset": {"name": "x"},
            "export": {"project": "p", "origins": ["real", "fake"], "limt": 3,
                       "min_scores": {"helpfulness": float("nan")}},
            "split": {"train": 0.9, "validation": 0.2, "test": 0.1},
            "dedup": {"near_threshold": 2},
            "extra": {},
        })  # fmt: skip
    fields = {p.field for p in caught.value.problems}
    assert {"export.origins", "export.limt", "export.min_scores.helpfulness", "split",
            "dedup.near_threshold", "extra"} <= fields  # fmt: skip
    with pytest.raises(ValidationError, match=r"export\.project"):
        parse({"dataset": {"name": "x"}})


def test_export_filters_and_is_byte_identical(project, lake, tmp_path) -> None:
    ids = _fill(project)
    other = lake.project("other")
    other.log(prompt="question number 1", output="not ours", model="gpt-4o")
    out = tmp_path / "all.parquet"
    report = exporter.export(project, _params().export, out)
    table = pq.read_table(out)
    assert report.rows == table.num_rows == 30
    assert table.column("id").to_pylist() == sorted(str(i) for i in ids)
    assert "not ours" not in table.column("output").to_pylist()
    again = tmp_path / "again.parquet"
    exporter.export(project, _params().export, again)
    assert hashlib.md5(out.read_bytes()).digest() == hashlib.md5(again.read_bytes()).digest()

    row = table.slice(0, 1).to_pylist()[0]
    assert row["created_at"] == T0 and row["model"] == "llama-3"
    assert json.loads(row["scores"]) == {"helpfulness": 0.0}
    assert json.loads(row["tags"]) == ["eval"] and row["total_tokens"] == 30

    def exported(**flt) -> set[int]:
        path = tmp_path / "f.parquet"
        exporter.export(project, _params(export=flt).export, path)
        return {int(t.split()[1].rstrip(":")) for t in pq.read_table(path)["output"].to_pylist()}

    assert exported(models=["gpt-4o"]) == {i for i in range(30) if i % 2}
    assert exported(origins=["synthetic"]) == {i for i in range(30) if i % 5 == 4}
    assert exported(tags=["eval"]) == {i for i in range(30) if i % 3 == 0}
    assert exported(min_scores={"helpfulness": 0.75}) == {i for i in range(30) if i % 10 >= 8}
    assert exported(since="2026-05-11", until="2026-05-13") == {10, 11}
    assert exported(limit=3) == {0, 1, 2}
    assert exported(models=["x' OR '1'='1"]) == set()  # bound, not formatted into SQL
    _, audit = project.query("SELECT action, details->>'rows' FROM audit_log")
    assert ("export", "30") in audit


def test_dedup_keeps_the_first_of_each_group(project, tmp_path) -> None:
    project.set_pii_policy(apply_at="export")
    text = "the quick brown fox jumps over the lazy dog near the river bank today " * 3
    a = project.log(prompt="p", output=text, model="m")
    b = project.log(prompt="p", output=text, model="m")  # exact copy
    c = project.log(prompt="p", output=text + " again", model="m")  # near copy
    d = project.log(prompt="p", output="something else entirely different here", model="m")
    exporter.export(project, _params().export, tmp_path / "x.parquet")
    table = exporter.read_parquet(tmp_path / "x.parquet")
    kept, result = transform.dedup_table(table, DedupParams(near_threshold=0.8))
    assert kept.column("id").to_pylist() == [str(a.id), str(d.id)]
    assert (result.exact_removed, result.near_removed) == (1, 1)
    exact_only, _ = transform.dedup_table(table, DedupParams(near_threshold=None))
    assert exact_only.column("id").to_pylist() == [str(a.id), str(c.id), str(d.id)]
    assert b.id  # logged, then removed as the second of its group


def test_anonymize_stage_uses_the_project_key(project, tmp_path) -> None:
    project.set_pii_policy(apply_at="export")
    g = project.log(prompt="mail me at jane.doe@example.com", output="ok",
                    messages=[{"role": "user", "content": "call +1 415 555 0100"}])  # fmt: skip
    exporter.export(project, _params().export, tmp_path / "x.parquet")
    table, result = transform.anonymize_table(
        project, exporter.read_parquet(tmp_path / "x.parquet")
    )
    row = table.to_pylist()[0]
    assert row["id"] == str(g.id)
    assert "jane.doe@example.com" not in row["input_text"]
    assert "415" not in row["input_messages"]
    assert result.rows_changed == 1 and result.findings == {"EMAIL": 1, "PHONE": 1}
    project.set_pii_policy(apply_at="ingest")  # the same pseudonym as ingest would make
    ingested = project.log(prompt="mail me at jane.doe@example.com", output="ok")
    assert project.generation(ingested.id).input_text == row["input_text"]
    redacted, _ = transform.anonymize_table(
        project, exporter.read_parquet(tmp_path / "x.parquet"), {"EMAIL": "redact"}
    )
    assert "jane.doe" not in redacted.to_pylist()[0]["input_text"]


def test_split_is_stable_and_keeps_synthetic_out_of_test(project, tmp_path) -> None:
    _fill(project, 60)
    exporter.export(project, _params().export, tmp_path / "x.parquet")
    table = exporter.read_parquet(tmp_path / "x.parquet")
    params = SplitParams(train=0.5, validation=0.25, test=0.25)
    splits, result = transform.split_table(table, params)
    where = {i: s for s, t in splits.items() for i in t.column("id").to_pylist()}
    assert len(where) == 60 and result.dropped_synthetic == 0
    assert result.synthetic["test"] == 0 and result.counts["test"] > 0
    # a smaller dataset (other rows gone) puts every remaining row where it was
    subset, _ = transform.split_table(table.slice(10, 30), params)
    assert all(where[i] == s for s, t in subset.items() for i in t.column("id").to_pylist())
    capped, result = transform.split_table(table, SplitParams(max_synthetic_share=0.1))
    for s, t in capped.items():
        share = t.column("origin").to_pylist().count("synthetic") / max(t.num_rows, 1)
        assert share <= 0.1, s
    assert result.dropped_synthetic > 0


def _record(project, tmp_path, md5: str, **split):
    params = _params(split=split)
    exporter.export(project, params.export, tmp_path / "x.parquet")
    splits, _ = transform.split_table(exporter.read_parquet(tmp_path / "x.parquet"), params.split)
    ids = {s: t.column("id").to_pylist() for s, t in splits.items()}
    return registry.record(project, params, ids, md5=md5, path="data/split")


def test_versions_are_recorded_listed_and_diffed(project, tmp_path, mlflow_store) -> None:
    _fill(project, 40)
    v1, created = _record(project, tmp_path, "aaaa1111.dir")
    assert created and v1.row_count == 40 and sum(v1.split_counts.values()) == 40
    assert _record(project, tmp_path, "aaaa1111.dir") == (v1, False)  # same cut: no new row
    project.log(prompt="a new question", output="a new answer", model="gpt-4o")
    v2, _ = _record(project, tmp_path, "bbbb2222.dir")
    assert [v.id for v in project.datasets.list()] == [v2.id, v1.id]
    assert project.datasets.get("sft").id == v2.id
    assert project.datasets.get("sft@aaaa").id == v1.id
    assert project.datasets.get(str(v1.id)[:13]).id == v1.id
    d = project.datasets.diff(v1, v2)
    assert sum(d.added.values()) == 1 and d.removed == {} and d.moved == 0 and d.unchanged == 40
    v3, _ = _record(project, tmp_path, "cccc3333.dir", seed="other")
    assert project.datasets.diff(v2, v3).moved > 0  # a new seed reshuffles
    items = project.datasets.items(v1)
    assert sum(len(v) for v in items.values()) == 40

    from mlflow.tracking import MlflowClient

    from promptlake.tracking.runs import default_tracking_uri

    with project.run("fine-tune", model="llama-3") as run:
        used = run.use_dataset("sft@aaaa", context="training")
    assert used.id == v1.id
    client = MlflowClient(default_tracking_uri(project.lake.url, project.id))
    inputs = client.get_run(run.mlflow_run_id).inputs.dataset_inputs
    assert [(i.dataset.name, i.dataset.digest) for i in inputs] == [("sft", "aaaa1111.dir")]
    assert inputs[0].tags[0].value == "training"
    _, lineage = project.query(
        "SELECT relation, run_name, context FROM dataset_lineage WHERE dataset_version_id = :v"
        " ORDER BY relation",
        {"v": v1.id},
    )
    assert [list(r) for r in lineage] == [["produced", "dataset:sft", None],
                                       ["used", "fine-tune", "training"]]  # fmt: skip


def test_cut_needs_generations_of_this_project(project, lake, tmp_path) -> None:
    other = lake.project("other").log(prompt="q", output="a", model="m")
    with pytest.raises(ValidationError, match="not generations of this project"):
        registry.record(project, _params(), {"train": [str(other.id)]}, md5="x.dir", path="d")
    assert project.datasets.list() == []


def test_cli_list_show_diff(project, tmp_path, lake) -> None:
    _fill(project, 12)
    v1, _ = _record(project, tmp_path, "aaaa.dir")
    project.log(prompt="another", output="one", model="m")
    v2, _ = _record(project, tmp_path, "bbbb.dir")
    runner = CliRunner()
    listed = runner.invoke(main, ["dataset", "list", "--project", "test-project", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [v["id"] for v in json.loads(listed.output)] == [str(v2.id), str(v1.id)]
    shown = runner.invoke(main, ["dataset", "show", "sft@aaaa", "--project", "test-project"])
    assert shown.exit_code == 0 and str(v1.id) in shown.output and "produced" in shown.output
    diffed = runner.invoke(
        main, ["dataset", "diff", str(v1.id), "sft", "--project", "test-project", "--json"]
    )
    assert json.loads(diffed.output)["unchanged"] == 12
    missing = runner.invoke(main, ["dataset", "show", "nope", "--project", "test-project"])
    assert missing.exit_code == 1 and "no dataset version 'nope'" in missing.output


def test_roles_export_record_and_use(project, tmp_path, monkeypatch) -> None:
    import promptlake
    from promptlake import PermissionDeniedError

    _fill(project, 6)
    v, _ = _record(project, tmp_path, "aaaa.dir")
    project.grant("ana", "analyst")
    project.grant("wri", "writer")
    with promptlake.connect(principal="ana") as lake:
        as_analyst = lake.project("test-project", create=False)
        report = as_analyst.datasets.export(tmp_path / "a.parquet")
        assert report.rows == 6 and as_analyst.datasets.get("sft").id == v.id
        with pytest.raises(PermissionDeniedError, match="needs admin"):
            registry.record(as_analyst, _params(), {}, md5="b.dir", path="d")
    with promptlake.connect(principal="wri") as lake:
        as_writer = lake.project("test-project", create=False)
        with pytest.raises(PermissionDeniedError):
            as_writer.datasets.export(tmp_path / "w.parquet")
        assert not (tmp_path / "w.parquet").exists()
        with as_writer.run("train", tracking=False) as run:
            assert run.use_dataset("sft").id == v.id  # training jobs log as writers


def test_cli_contamination_between_selections_and_splits(project, tmp_path) -> None:
    project.set_pii_policy(apply_at="export")
    question = "explain the difference between a process and a thread in operating systems"
    leaked = project.log(prompt=question + " please", output="a", model="m",
                         origin="synthetic", generator="g")  # fmt: skip
    reference = project.log(prompt=question, output="b", model="m", tags=["eval"])
    project.log(prompt="what is the capital of france and why", output="c", model="m")
    v, _ = _record(project, tmp_path, "aaaa.dir")
    runner = CliRunner()
    base = ["contamination", "--project", "test-project", "--json"]
    found = runner.invoke(main, [*base, "--suspects", "origin=synthetic",
                                 "--references", "tag=eval"])  # fmt: skip
    assert found.exit_code == 0, found.output
    report = json.loads(found.output)
    assert [(m["suspect_id"], m["reference_id"]) for m in report["matches"]] == [
        (str(leaked.id), str(reference.id))
    ]
    train_vs_test = runner.invoke(main, [*base, "--suspects", f"dataset={v.id}:train",
                                         "--references", "dataset=sft:test"])  # fmt: skip
    assert train_vs_test.exit_code == 0, train_vs_test.output
    items = project.datasets.items(v)
    assert json.loads(train_vs_test.output)["suspects"] == len(items["train"])
    bad = runner.invoke(main, [*base, "--references", "colour=red"])
    assert bad.exit_code == 2 and "unknown key 'colour'" in bad.output


def test_cli_export_with_options_and_bad_params(project, tmp_path, monkeypatch) -> None:
    _fill(project, 10)
    monkeypatch.chdir(tmp_path)  # no params.yaml here
    runner = CliRunner()
    out = tmp_path / "gpt.parquet"
    done = runner.invoke(main, ["dataset", "export", "--project", "test-project", "--out",
                                str(out), "--model", "gpt-4o", "--min-score",
                                "helpfulness=0.5"])  # fmt: skip
    assert done.exit_code == 0, done.output
    rows = pq.read_table(out).to_pylist()
    assert rows and all(r["model"] == "gpt-4o" for r in rows)
    assert all(json.loads(r["scores"])["helpfulness"] >= 0.5 for r in rows)
    (tmp_path / "params.yaml").write_text("export: [unclosed\n")
    bad = runner.invoke(main, ["dataset", "export", "--out", str(out)])
    assert bad.exit_code == 1 and "params.yaml: is not valid YAML" in bad.output
    (tmp_path / "params.yaml").write_text("dataset: {name: x}\nexport: {project: test-project,"
                                          " modles: [gpt-4o]}\n")  # fmt: skip
    typo = runner.invoke(main, ["dataset", "export", "--out", str(out)])
    assert typo.exit_code == 1 and "export.modles: unknown parameter" in typo.output
    score = runner.invoke(main, ["dataset", "export", "--project", "test-project", "--out",
                                 str(out), "--min-score", "helpfulness=high"])  # fmt: skip
    assert score.exit_code == 2 and "NAME=NUMBER" in score.output
