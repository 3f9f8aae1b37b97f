"""Experiments: run a task over a dataset version, score it, compare runs item by item,
and watch a score over time.

``proj.experiments`` is the Python face (:class:`Experiments`); ``promptlake experiment
run|compare|list|show`` and ``promptlake trends`` the shell's. The parts:
``runner.py`` (running, resuming, storing), ``scorers.py`` (built-in and user scorers),
``scoring.py`` (scorers over stored generations), ``compare.py`` (paired comparison),
``trends.py`` (series and drop detection), ``stats.py`` (the statistics).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .items import Item
from .runner import Experiment, ExperimentReport
from .scorers import (
    Bleu,
    ChrF,
    Contains,
    ExactMatch,
    FunctionScorer,
    JsonSchema,
    JsonValid,
    Judge,
    Length,
    Refusal,
    Regex,
    Rouge,
    Scorer,
    ScoreResult,
    Similarity,
    get_scorer,
)

if TYPE_CHECKING:
    import pandas

    from ..client import Project
    from .compare import Comparison
    from .scoring import ScoreReport
    from .trends import TrendReport

__all__ = [
    "Bleu",
    "ChrF",
    "Contains",
    "ExactMatch",
    "Experiment",
    "ExperimentReport",
    "Experiments",
    "FunctionScorer",
    "Item",
    "JsonSchema",
    "JsonValid",
    "Judge",
    "Length",
    "Refusal",
    "Regex",
    "Rouge",
    "ScoreResult",
    "Scorer",
    "Similarity",
    "get_scorer",
]


class Experiments:
    """``proj.experiments``: run, score, compare, list, results, trends."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def __repr__(self) -> str:
        return f"<Experiments of {self.project.name!r}>"

    def run(
        self,
        dataset: Any,
        task: Callable[[Item], Any],
        scorers: Iterable[Any] = (),
        **options: Any,
    ) -> ExperimentReport:
        """Run ``task`` on every item of a dataset version and score it; rerunning the same
        ``name`` resumes. See :func:`promptlake.experiments.runner.run` for the options
        (name, split, concurrency, retries, backoff, model, prompt_version, params,
        retry_errors, batch_size, tracking, progress)."""
        from .runner import run

        return run(self.project, dataset, task, scorers, **options)

    def score(self, selection: Any, scorers: Iterable[Any], **options: Any) -> ScoreReport:
        """Score stored generations: an experiment (by name or object), a
        :class:`promptlake.dedup.Selection`, or generation ids."""
        from .scoring import score

        return score(self.project, selection, scorers, **options)

    def compare(self, a: Any, b: Any, **options: Any) -> Comparison:
        """Experiment ``b`` against ``a``: means with bootstrap intervals, wins/losses/ties,
        paired tests, the worst regressions. See :mod:`promptlake.experiments.compare`."""
        from .compare import compare

        return compare(self.project, a, b, **options)

    def get(self, ref: Experiment | uuid.UUID | str) -> Experiment:
        from .runner import get

        return get(self.project, ref)

    def list(self) -> list[Experiment]:
        """The project's experiments, newest first."""
        from .runner import find

        return find(self.project)

    def results(self, ref: Any) -> pandas.DataFrame:
        """The ``experiment_results`` rows of one experiment: one per item and score."""
        experiment = self.get(ref)
        return self.project.sql(
            "SELECT * FROM experiment_results WHERE experiment_id = :e ORDER BY item_id, score",
            {"e": experiment.id},
        )

    def trends(self, score: str, **options: Any) -> TrendReport:
        """A score's and usage's series per model and prompt version with drop alerts.
        See :func:`promptlake.experiments.trends.trends`."""
        from .trends import trends

        return trends(self.project, score, **options)
