"""What the experiment machinery costs per item, against calling the task in a loop.

A fresh project gets N generations (question/answer pairs) and a dataset version over
them; the task is instant (it returns the reference answer), so everything measured is
machinery: reading the items, the worker threads, validating, hashing and anonymizing each
output as every write path does, the batched writes of generations, scores and
``experiment_items``, and the run (``tracking=False``: MLflow's cost per experiment is the
tracking bench's). Configurations: no scorer, and exact match + ROUGE-L (the extra
``eval``), each at concurrency 1 and 4; then the same experiment run again (resumed:
everything done, nothing runs). Overhead per item = (experiment − loop) / N, where the
loop calls the task and the same scorers on every item: what the scorers compute is the
scorers' cost, not the machinery's.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from . import as_login, drop_projects

if TYPE_CHECKING:
    from ..client import Lake

PREFIX = "bench-experiments-"


def _setup(lake: Lake, items: int) -> tuple[Any, Any]:
    from ..datasets import registry
    from ..datasets.params import parse

    project = lake.project(f"{PREFIX}{int(time.time())}")
    project.set_pii_policy(apply_at="export")
    ids = []
    with project.writer() as writer:
        for i in range(items):
            g = writer.log(
                prompt=f"Question {i}: how does step {i % 17} of procedure {i % 5} work?",
                output=f"Answer {i}: step {i % 17} first checks the input, then writes"
                f" {i % 9} records and reports the outcome of procedure {i % 5}.",
                model="reference",
            )
            ids.append(str(g))
    params = parse(
        {"dataset": {"name": "bench", "mlflow": False}, "export": {"project": project.name}}
    )
    version, _ = registry.record(project, params, {"test": ids}, md5="bench.dir", path="bench")
    return project, version


def run_experiments_bench(lake: Lake, items: int = 500) -> dict[str, Any]:
    from ..experiments.items import dataset_items
    from ..experiments.runner import _scorer_list

    drop_projects(lake, PREFIX)
    project, version = _setup(lake, items)
    as_login(lake, "CHECKPOINT")

    def task(item: Any) -> str | None:
        return item.expected

    loaded = dataset_items(project, version.id, None)
    configs: list[dict[str, Any]] = []
    try:
        import rouge_score  # noqa: F401

        scorer_sets = {"none": [], "exact_match+rougeL": ["exact_match", "rougeL"]}
    except ImportError:
        scorer_sets = {"none": [], "exact_match": ["exact_match"]}
    loops: dict[str, float] = {}
    for label, scorers in scorer_sets.items():
        objects = _scorer_list(scorers)
        started = time.perf_counter()
        for item in loaded:  # the baseline: the task and the same scorers, in a loop
            output = task(item)
            for scorer in objects:
                scorer(output, item)
        loops[label] = time.perf_counter() - started
        for concurrency in (1, 4):
            name = f"bench {label} c{concurrency}"
            report = project.experiments.run(
                version,
                task,
                scorers,
                name=name,
                concurrency=concurrency,
                tracking=False,
                progress=False,
            )
            configs.append(
                {
                    "scorers": label,
                    "concurrency": concurrency,
                    "seconds": round(report.elapsed_s, 3),
                    "loop_seconds": round(loops[label], 4),
                    "overhead_ms_per_item": round(
                        (report.elapsed_s - loops[label]) / items * 1000, 3
                    ),
                }
            )
    resumed = project.experiments.run(
        version, task, [], name="bench none c1", tracking=False, progress=False
    )
    drop_projects(lake, PREFIX, vacuum="generations, scores")
    return {
        "items": items,
        "configs": configs,
        "resume_seconds": round(resumed.elapsed_s, 3),
        "resume_ran": resumed.ran,
    }


def format_report(result: dict[str, Any]) -> str:
    lines = [
        f"experiments bench: {result['items']:,} items, an instant task; overhead per item ="
        " (experiment - the task and scorers in a loop) / items",
    ]
    for c in result["configs"]:
        lines.append(
            f"  scorers {c['scorers']:<20} concurrency {c['concurrency']}  {c['seconds']:.3f} s"
            f" (loop {c['loop_seconds']:.3f} s)"
            f"  overhead {c['overhead_ms_per_item']:.2f} ms/item (target < 5)"
        )
    lines.append(
        f"  resumed (all done)  {result['resume_seconds']:.3f} s, {result['resume_ran']} items run"
    )
    return "\n".join(lines)
