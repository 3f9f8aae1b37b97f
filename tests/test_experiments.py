"""Experiments on the MT-bench questions and GPT-4 reference answers: a dataset version cut
from them, two deterministic tasks of known quality (the reference answer, and a damaged
copy), the comparison that must find the better one with the expected wins, resuming,
per-item errors and retries, scorers over stored generations, MLflow metrics, the views
under row-level security, and the CLI."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from click.testing import CliRunner

from promptlake import PermissionDeniedError, ValidationError
from promptlake.cli import main
from promptlake.datasets import export as exporter
from promptlake.datasets import registry, transform
from promptlake.datasets.params import parse
from promptlake.experiments import Judge, ScoreResult


def _cut(project, tmp_path, shared_data):
    """Import MT-bench with the GPT-4 answers and cut a dataset version of it, as the DVC
    pipeline's export, split and record stages do."""
    project.import_file(
        shared_data / "mt_bench_questions.jsonl",
        "mtbench",
        answers=[shared_data / "mt_bench_gpt4_reference.jsonl"],
    )
    params = parse(
        {"dataset": {"name": "mtbench", "mlflow": False}, "export": {"project": project.name}}
    )
    exporter.export(project, params.export, tmp_path / "x.parquet")
    splits, _ = transform.split_table(exporter.read_parquet(tmp_path / "x.parquet"), params.split)
    ids = {s: t.column("id").to_pylist() for s, t in splits.items()}
    version, _ = registry.record(project, params, ids, md5="0123abcd.dir", path="data/split")
    return version


@pytest.fixture
def version(project, tmp_path, shared_data):
    return _cut(project, tmp_path, shared_data)


def reference(item):
    return item.expected


def _intact(item) -> bool:
    return item.metadata["question_id"] % 3 == 0


def damaged(item):
    """The reference, cut to its first half of words, except on every third question."""
    if _intact(item):
        return item.expected
    words = item.expected.split()
    return " ".join(words[: len(words) // 2])


def _items(project, version):
    from promptlake.experiments.items import dataset_items

    return dataset_items(project, version.id, None)


def test_comparison_finds_the_better_task_with_the_expected_wins(project, version) -> None:
    items = _items(project, version)
    assert len(items) == 60 and version.row_count == 60
    n_damaged = sum(not _intact(i) for i in items)
    assert 0 < n_damaged < 60
    scorers = ["exact_match", "rougeL", "bleu", "similarity", "length"]
    good = project.experiments.run(
        version, reference, scorers, name="reference", tracking=False, progress=False
    )
    bad = project.experiments.run(
        version, damaged, scorers, name="damaged", concurrency=3, tracking=False, progress=False
    )
    assert (good.items, good.ran, good.errors, bad.ran) == (60, 60, 0, 60)
    assert good.scores["exact_match"].estimate == 1.0
    assert good.scores["similarity"].estimate == pytest.approx(1.0)
    assert bad.scores["exact_match"].estimate == pytest.approx((60 - n_damaged) / 60)

    c = project.experiments.compare("reference", "damaged", log=False)
    for name in ("exact_match", "rougeL", "bleu", "similarity"):
        s = c.scores[name]
        assert (s.paired, s.a_wins, s.b_wins, s.ties) == (60, n_damaged, 0, 60 - n_damaged), name
        assert s.better == "a" and s.sign_p < 1e-6 and s.wilcoxon_p < 1e-6, name
        assert s.difference.high < 0 and s.a.low <= s.a.estimate <= s.a.high
        assert s.b.high < s.a.low or name != "exact_match"
    # length goes the other way: the damaged answers are shorter on every damaged item
    assert c.scores["length"].a_wins == n_damaged
    assert c.errors == {"a": 0, "b": 0}
    # the worst regressions come with the input and both outputs
    assert c.regressions and all(r.value_b < r.value_a for r in c.regressions)
    r = c.regressions[0]
    item = next(i for i in items if i.id == r.item_id)
    assert r.output_a == item.expected and r.output_b == damaged(item)
    assert item.input in r.input
    # the other way round, the wins swap sides
    back = project.experiments.compare("damaged", "reference", log=False)
    assert back.scores["rougeL"].b_wins == n_damaged and back.scores["rougeL"].better == "b"
    # the generations are linked to the run, the model and the dataset item
    _, rows = project.query(
        "SELECT count(*), count(DISTINCT g.run_id), count(DISTINCT g.metadata->>'item_id')"
        " FROM generations g WHERE g.metadata->>'experiment' = 'reference'"
    )
    assert rows == [(60, 1, 60)]


class Interrupt(BaseException):
    """Stands in for Ctrl-C in the middle of an experiment."""


@pytest.mark.parametrize("concurrency", [1, 3])
def test_resumed_experiment_runs_no_item_twice(project, version, concurrency) -> None:
    calls: list[uuid.UUID] = []
    lock = threading.Lock()

    def interrupted(item):
        with lock:
            calls.append(item.id)
            if len(calls) == 25:
                raise Interrupt
        return item.expected

    with pytest.raises(Interrupt):
        project.experiments.run(
            version,
            interrupted,
            ["exact_match"],
            name="resumable",
            concurrency=concurrency,
            batch_size=4,
            tracking=False,
        )
    assert project.experiments.get("resumable").status == "failed"
    _, stored = project.query(
        "SELECT item_id FROM experiment_items WHERE experiment_id = :e",
        {"e": project.experiments.get("resumable").id},
    )
    done = {r[0] for r in stored}
    # what finished before the interruption was kept (other workers may have finished a
    # few more items meanwhile); the interrupted item was not
    assert 0 < len(done) < 60 and calls[24] not in done
    if concurrency == 1:  # in this thread: exactly the items before the interrupted one
        assert done == set(calls[:24])

    second: list[uuid.UUID] = []

    def counting(item):
        with lock:
            second.append(item.id)
        return item.expected

    report = project.experiments.run(
        version, counting, ["exact_match", "contains"], name="resumable", tracking=False
    )
    assert report.skipped == len(done) and report.ran == 60 - len(done)
    assert len(second) == len(set(second)) == 60 - len(done)
    assert not done & set(second)
    assert project.experiments.get("resumable").status == "finished"
    # the scorer added on resume scored the items done before too
    assert report.scores["contains"].n == 60 and report.scores["exact_match"].n == 60
    again = project.experiments.run(
        version, counting, ["exact_match"], name="resumable", tracking=False
    )
    assert (again.ran, again.skipped) == (0, 60)
    _, counts = project.query(
        "SELECT count(*), count(DISTINCT generation_id) FROM experiment_items"
        " WHERE experiment_id = :e AND status = 'ok'",
        {"e": report.experiment.id},
    )
    assert counts == [(60, 60)]
    with pytest.raises(ValidationError, match="already names an experiment"):
        project.experiments.run(version, counting, name="resumable", split="test", tracking=False)


def test_failing_item_is_recorded_and_skipped_and_flaky_ones_retried(project, version) -> None:
    broken = _items(project, version)[7].id
    tries: dict[uuid.UUID, int] = {}
    lock = threading.Lock()

    def flaky(item):
        with lock:
            tries[item.id] = tries.get(item.id, 0) + 1
            first = tries[item.id] == 1
        if item.id == broken:
            raise ValueError(f"model refused item {item.id} for ann.lee@example.com")
        if first:
            raise TimeoutError("transient")
        return item.expected

    report = project.experiments.run(
        version, flaky, ["exact_match"], name="flaky", retries=2, backoff=0, tracking=False
    )
    assert (report.ran, report.errors) == (60, 1)
    assert tries[broken] == 3 and all(n == 2 for i, n in tries.items() if i != broken)
    df = project.experiments.results("flaky")
    failed = df[df.status == "error"]
    assert list(failed.item_id) == [broken] and failed.generation_id.isna().all()
    assert "ValueError: model refused" in failed.error.iloc[0] and failed.attempts.iloc[0] == 3
    assert "ann.lee@example.com" not in failed.error.iloc[0]  # the PII policy applies
    assert (df[df.status == "ok"].attempts == 2).all()
    assert report.scores["exact_match"].n == 59
    # without retry_errors nothing runs; with a task that works the item is done
    assert (
        project.experiments.run(
            version, flaky, ["exact_match"], name="flaky", retry_errors=False, tracking=False
        ).ran
        == 0
    )
    fixed = project.experiments.run(
        version, reference, ["exact_match"], name="flaky", tracking=False
    )
    assert (fixed.ran, fixed.errors, fixed.scores["exact_match"].n) == (1, 0, 60)


def test_task_returning_fields_and_bad_input(project, version) -> None:
    def with_usage(item):
        return {
            "output": item.expected,
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "model": "candidate-1",
            "metadata": {"temperature": 0},
        }

    def picky(output, item):
        if item.metadata["turn"] == 2:
            raise RuntimeError("cannot judge follow-ups")
        return 1.0

    pv = project.prompts.register("answer", "Answer: {question}")
    report = project.experiments.run(
        version,
        with_usage,
        [picky],
        name="usage",
        split="train",
        tracking=False,
        prompt_version=pv,
    )
    assert report.experiment.prompt_version_id == pv.id
    assert report.items == version.split_counts["train"] and report.errors == 0
    # a scorer's failure costs that score only, and is noted on the item
    _, noted = project.query(
        "SELECT count(*) FILTER (WHERE metadata->'scorer_errors' ? 'picky'),"
        " count(*) FILTER (WHERE metadata = '{}') FROM experiment_items"
    )
    turn2 = sum(
        1 for i in _items(project, version) if i.split == "train" and i.metadata["turn"] == 2
    )
    assert (
        noted == [(turn2, report.items - turn2)]
        and report.scores["picky"].n == report.items - turn2
    )
    _, rows = project.query(
        "SELECT DISTINCT m.name, g.prompt_tokens, g.metadata->>'temperature' FROM generations g"
        " JOIN models m ON m.id = g.model_id WHERE g.metadata->>'experiment' = 'usage'"
    )
    assert rows == [("candidate-1", 10, "0")]
    _, linked = project.query(
        "SELECT DISTINCT prompt_version_id FROM generations WHERE metadata->>'experiment' = 'usage'"
    )
    assert linked == [(pv.id,)]
    points = project.experiments.trends("picky").points
    assert {p.prompt_version for p in points} == {None, "answer v1"}
    wrong = project.experiments.run(
        version, lambda item: {"outptu": "x"}, name="typo", tracking=False
    )
    assert wrong.errors == wrong.items  # every item records the unknown field, once each
    assert "outptu" in project.experiments.results("typo").error.iloc[0]
    with pytest.raises(ValidationError) as caught:
        project.experiments.run(version, "not callable", ["nope"], concurrency=0, split="dev")
    assert {"task", "concurrency", "split"} <= {p.field for p in caught.value.problems}
    with pytest.raises(ValidationError, match="scorer"):
        project.experiments.run(version, reference, ["nope"], tracking=False)


def test_judge_rationale_and_scoring_stored_generations(project, version) -> None:
    from promptlake.dedup import Selection

    def judge(output, item):
        return (len(output) > 200, f"{len(output)} characters")

    project.experiments.run(version, damaged, [], name="plain", tracking=False)
    first = project.experiments.score("plain", [Judge(judge, name="long"), "rouge1"])
    assert (first.generations, first.scored, first.existing) == (60, 120, 0)
    again = project.experiments.score("plain", [Judge(judge, name="long"), "rouge1"])
    assert (again.scored, again.existing) == (0, 120)
    df = project.experiments.results("plain")
    long = df[df.score == "long"]
    assert (
        set(long.score_source) == {"model"} and long.score_comment.str.endswith("characters").all()
    )
    # generations outside experiments: the reference is metadata.reference where there is one
    answered = project.experiments.score(Selection(model="gpt-4"), ["length", "contains"])
    assert answered.generations == 60 and answered.scored >= 60
    _, rows = project.query(
        "SELECT count(*) FILTER (WHERE s.name = 'length'),"
        " count(*) FILTER (WHERE s.name = 'contains')"
        " FROM scores s JOIN generations g ON g.id = s.generation_id"
        " WHERE g.metadata ? 'question_id' AND g.run_id IS NULL"
    )
    with_reference = sum(
        1 for i in _items(project, version) if isinstance(i.metadata.get("reference"), str)
    )
    assert rows == [(60, with_reference)]

    def broken(output, item):
        raise RuntimeError("judge down")

    failing = project.experiments.score("plain", [Judge(broken, name="down")])
    assert failing.errors == {"down": 60} and failing.scored == 0


def test_metrics_go_to_mlflow_and_views_follow_rls(project, version, lake, mlflow_store) -> None:
    import promptlake

    a = project.experiments.run(
        version, reference, ["exact_match"], name="a", model="gpt-4", progress=False
    )
    b = project.experiments.run(version, damaged, ["exact_match"], name="b", progress=False)
    project.experiments.compare("a", "b")
    from mlflow.tracking import MlflowClient

    from promptlake.tracking.runs import default_tracking_uri

    client = MlflowClient(default_tracking_uri(project.lake.url, project.id))
    ra = client.get_run(a.experiment.mlflow_run_id)
    assert ra.data.metrics["experiment.exact_match.mean"] == 1.0
    assert ra.data.metrics["score.exact_match"] == 1.0 and ra.data.params["model"] == "gpt-4"
    assert [i.tags[0].value for i in ra.inputs.dataset_inputs] == ["evaluation"]
    rb = client.get_run(b.experiment.mlflow_run_id).data.metrics
    assert rb["compare.a.exact_match.a_wins"] > 0 and rb["compare.a.exact_match.b_wins"] == 0
    _, lineage = project.query(
        "SELECT run_name, context FROM dataset_lineage WHERE relation = 'used' ORDER BY 1"
    )
    assert lineage == [("experiment:a", "evaluation"), ("experiment:b", "evaluation")]
    _, pairs = project.query(
        "SELECT winner, count(*) FROM experiment_comparison WHERE name_a = 'a' AND name_b = 'b'"
        " GROUP BY 1 ORDER BY 1"
    )
    n_damaged = sum(not _intact(i) for i in _items(project, version))
    assert pairs == [("a", n_damaged), ("tie", 60 - n_damaged)]

    project.grant("ana", "analyst")
    project.grant("wri", "writer")
    lake.project("other")  # another project, whose admin sees none of this
    with promptlake.connect(principal="ana") as as_ana:
        p = as_ana.project("test-project", create=False)
        assert len(p.experiments.results("a")) == 60
        assert p.experiments.compare("a", "b", log=False).scores["exact_match"].a_wins == n_damaged
        with pytest.raises(PermissionDeniedError):
            p.experiments.run(version, reference, name="c", tracking=False)
    with promptlake.connect(principal="wri") as as_wri:
        p = as_wri.project("test-project", create=False)
        assert {e.name for e in p.experiments.list()} == {"a", "b"}  # metadata only
        assert p.query("SELECT count(*) FROM experiments")[1] == [(2,)]
        with pytest.raises(PermissionDeniedError):  # its own login: no item results at all
            p.query("SELECT count(*) FROM experiment_items")
    _, seen = lake.project("other").query("SELECT count(*) FROM experiment_results")
    assert seen == [(0,)]


def test_cli_run_compare_list_show(project, version, tmp_path, monkeypatch) -> None:
    (tmp_path / "mytasks.py").write_text(
        "def reference(item):\n    return item.expected\n\n"
        "def short(item):\n    return ' '.join(item.expected.split()[:5])\n"
    )
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    base = ["--project", "test-project", "--dataset", "mtbench@0123", "--no-tracking"]
    for name, task in (("ref", "mytasks:reference"), ("short", "mytasks:short")):
        result = runner.invoke(
            main,
            [
                "experiment",
                "run",
                *base,
                "--task",
                task,
                "--name",
                name,
                "--scorer",
                "exact_match",
                "--scorer",
                "rougeL",
                "--json",
            ],
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["ran"] == 60
    compared = runner.invoke(
        main, ["experiment", "compare", "ref", "short", "--project", "test-project", "--json"]
    )
    assert compared.exit_code == 0, compared.output
    rouge = json.loads(compared.output)["scores"]["rougeL"]
    assert rouge["better"] == "a" and rouge["b_wins"] == 0 and rouge["a_wins"] > 40
    table = runner.invoke(
        main, ["experiment", "compare", "ref", "short", "--project", "test-project"]
    )
    assert table.exit_code == 0 and "worst regressions" in table.output
    listed = runner.invoke(main, ["experiment", "list", "--project", "test-project"])
    assert "ref" in listed.output and "short" in listed.output
    shown = runner.invoke(main, ["experiment", "show", "short", "--project", "test-project"])
    assert shown.exit_code == 0 and "ok 60" in shown.output
    bad = runner.invoke(main, ["experiment", "run", *base, "--task", "mytasks:nope"])
    assert bad.exit_code == 1 and "has no 'nope'" in bad.output


def test_trends_flag_a_drop(project) -> None:
    import datetime as dt
    import random

    rng = random.Random(7)
    t0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    for day in range(14):
        quality = 0.8 if day < 10 else 0.45
        for k in range(12):
            g = project.log(
                prompt=f"q{day}-{k}",
                output="a",
                model="m-1",
                created_at=t0 + dt.timedelta(days=day, minutes=k),
                prompt_tokens=10,
                completion_tokens=day,
            )
            project.score(g, "quality", min(1.0, max(0.0, rng.gauss(quality, 0.1))))
    report = project.experiments.trends("quality", window=5, min_drop=0.1)
    assert len(report.points) == 14
    flagged = [p.period.day for p in report.alerts]
    assert flagged and flagged[0] == 11  # the first day of the drop (March 11)
    assert all(day >= 11 for day in flagged)
    p = report.points[3]
    assert p.calls == 12 and p.score.n == 12 and p.score.low < 0.8 < p.score.high
    assert p.total_tokens == 12 * 13
    assert p.error_rate.estimate == 0 and 0 < p.error_rate.high < 0.3
    weekly = project.experiments.trends("quality", by="week")
    assert sum(p.calls for p in weekly.points) == 168
    result = CliRunner().invoke(
        main,
        [
            "trends",
            "--project",
            "test-project",
            "--score",
            "quality",
            "--window",
            "5",
            "--min-drop",
            "0.1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["alerts"]) == len(report.alerts)
    with pytest.raises(ValidationError, match="by"):
        project.experiments.trends("quality", by="month")


def test_scorers_unit() -> None:
    from promptlake.experiments import (
        Contains,
        ExactMatch,
        JsonSchema,
        JsonValid,
        Length,
        Refusal,
        Regex,
        Rouge,
    )
    from promptlake.experiments.items import Item

    item = Item(uuid.uuid4(), "q", expected="The Answer is 42.")
    assert ExactMatch()("the answer  is 42.", item).value is True
    assert ExactMatch(strict=True)("the answer is 42.", item).value is False
    assert Contains()("So: the answer is 42. Done", item).value is True
    assert Contains("43")("42", item).value is False
    assert Regex(r"\b42\b")("it is 42", item).value is True
    assert JsonValid()('```json\n{"a": 1}\n```', item).value is True
    bad = JsonValid()("{a: 1}", item)
    assert bad.value is False and "not JSON" in bad.comment
    schema = JsonSchema(
        {"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}}
    )
    assert schema('{"a": 1}', item).value is True
    wrong = schema('{"a": "x"}', item)
    assert wrong.value is False and wrong.comment.startswith("a:")
    with pytest.raises(ValidationError, match="schema"):
        JsonSchema({"type": "nonsense"})
    assert Length("words")("one two three", item).value == 3
    assert Refusal()("I'm sorry, but I can't help with that.", item).value is True
    assert Refusal()("I’m sorry, but I can’t do that.", item).value is True
    assert Refusal()("Sure! Here is how to sort a list.", item).value is False
    assert Rouge("rouge1")("The answer is 42.", item).value == pytest.approx(1.0)
    assert ExactMatch()("x", Item(uuid.uuid4(), "q")) is None  # no reference: no score
    assert Judge(lambda o, i: {"score": 0.5, "rationale": "meh"})("x", item) == ScoreResult(
        0.5, "meh"
    )
    with pytest.raises(ValidationError, match="regular expression"):
        Regex("(")


def test_stats() -> None:
    from promptlake.experiments import stats

    assert stats.sign_test(9, 1) == pytest.approx(22 / 1024)
    assert stats.sign_test(0, 0) == 1.0 and stats.sign_test(5, 5) == 1.0
    diffs = [0.5, 0.4, -0.1, 0.3, 0.2, 0.6, 0.0, 0.35, 0.45, -0.05, 0.25, 0.3]
    p, method = stats.wilcoxon(diffs)
    assert p < 0.05 and "wilcoxon" in method
    assert stats._wilcoxon_normal([d for d in diffs if d]) == pytest.approx(p, abs=0.01)
    ci = stats.bootstrap_mean([1.0, 2.0, 3.0, 4.0], seed=1)
    assert ci == stats.bootstrap_mean([1.0, 2.0, 3.0, 4.0], seed=1)  # deterministic
    assert ci.low < 2.5 < ci.high and ci.estimate == 2.5
    t, p_drop = stats.welch_one_sided([0.8, 0.82, 0.79, 0.81], [0.5, 0.52, 0.49, 0.5])
    assert t < 0 and p_drop < 1e-4
