"""The README's main job: load the bundled sample data, score it, report what is stored.

The sample files ship inside the package (``sample_data/``, with their licences), so the
demo needs no network and no checkout of anything else. Every id is derived from the data,
so running the demo twice stores nothing twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from .ids import stable_id

if TYPE_CHECKING:
    from .client import Lake

REFUSAL = re.compile(r"\b(I'm sorry|I am sorry|as an AI|I cannot|I can't)\b", re.IGNORECASE)


def sample_path(name: str) -> Path:
    return Path(str(resources.files("promptlake") / "sample_data" / name))


def run_demo(lake: Lake, project_name: str = "demo") -> Iterator[str]:
    """Import the samples into ``project_name`` and add heuristic scores; yield progress."""
    project = lake.project(project_name, description="promptlake demo: bundled sample data")
    report = project.import_file(
        sample_path("mt_bench_questions.jsonl"),
        "mtbench",
        answers=[sample_path("mt_bench_gpt4_reference.jsonl")],
    )
    yield _line("MT-bench questions + GPT-4 reference answers", report)
    report = project.import_file(
        sample_path("sharegpt_identity_conversations.json"),
        "sharegpt",
        origin="synthetic",
        generator="fastchat-identity-template",
        model="vicuna",
    )
    yield _line("ShareGPT identity conversations (synthetic)", report)
    scored = add_heuristic_scores(lake, project_name)
    yield f"heuristic scores: {scored} new (words, refusal)"


def _line(what: str, report) -> str:
    text = f"{what}: stored {report.stored}, rejected {len(report.rejected)}"
    if report.duplicates:
        text += f", already stored {report.duplicates}"
    return text


def add_heuristic_scores(lake: Lake, project_name: str) -> int:
    """Score every output of the project by length and by whether it refuses."""
    project = lake.project(project_name)
    _, rows = project.query("SELECT id, output FROM generations WHERE output IS NOT NULL")
    with project.writer() as writer:
        for gid, output in rows:
            words = len(output.split())
            writer.score(gid, "words", words, source="heuristic", id=stable_id(gid, "words"))
            refusal = bool(REFUSAL.search(output))
            writer.score(gid, "refusal", refusal, source="heuristic", id=stable_id(gid, "refusal"))
    return writer.stats.scores_stored
