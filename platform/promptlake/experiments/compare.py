"""``proj.experiments.compare(a, b)``: two experiments item by item, score by score.

Items pair by their dataset item (the same generation of the dataset), so two
experiments on the same version compare on every item both finished. Per score: each
side's mean with a bootstrap interval over all its items, the paired mean difference
(b − a) with a paired bootstrap interval, wins, losses and ties item by item, the exact
sign test on them and a Wilcoxon signed-rank test on the differences (scipy's when
installed), and which side is better when the sign test says so at the chosen level.
The items where b fell furthest below a come with their input and both outputs.
The figures go to b's MLflow run as ``compare.<a>.<score>.*`` metrics.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .items import _last_user_text
from .runner import Experiment, experiment_scores, get
from .stats import Interval, bootstrap_mean, sign_test, wilcoxon

if TYPE_CHECKING:
    from ..client import Project


@dataclass(frozen=True)
class ScoreComparison:
    """One score of two experiments. ``a_wins``: items where a scored higher."""

    score: str
    a: Interval
    b: Interval
    difference: Interval  # mean of b - a over paired items, paired bootstrap interval
    paired: int
    a_wins: int
    b_wins: int
    ties: int
    sign_p: float
    wilcoxon_p: float
    test: str
    better: str | None  # "a", "b" or None (no significant difference)

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
            "difference": self.difference.to_dict(),
            "paired": self.paired,
            "a_wins": self.a_wins,
            "b_wins": self.b_wins,
            "ties": self.ties,
            "sign_p": self.sign_p,
            "wilcoxon_p": self.wilcoxon_p,
            "test": self.test,
            "better": self.better,
        }


@dataclass(frozen=True)
class Regression:
    """An item where b scored below a, with what both produced."""

    item_id: uuid.UUID
    score: str
    value_a: float
    value_b: float
    input: str | None
    output_a: str | None
    output_b: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": str(self.item_id),
            "score": self.score,
            "value_a": self.value_a,
            "value_b": self.value_b,
            "input": self.input,
            "output_a": self.output_a,
            "output_b": self.output_b,
        }


@dataclass
class Comparison:
    a: Experiment
    b: Experiment
    scores: dict[str, ScoreComparison] = field(default_factory=dict)
    regressions: list[Regression] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)  # "a"/"b" -> items that failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": {"name": self.a.name, "id": str(self.a.id)},
            "b": {"name": self.b.name, "id": str(self.b.id)},
            "scores": {k: v.to_dict() for k, v in self.scores.items()},
            "regressions": [r.to_dict() for r in self.regressions],
            "errors": self.errors,
        }


def compare(
    project: Project,
    a: Any,
    b: Any,
    *,
    scores: list[str] | None = None,
    confidence: float = 0.95,
    regressions: int = 5,
    seed: int = 0,
    log: bool = True,
    tracking_uri: str | None = None,
) -> Comparison:
    """Compare experiment ``b`` with ``a`` (see the module docstring). ``scores``: only
    these names; ``regressions``: how many of the worst items per score to return."""
    from ..errors import Problem, ValidationError

    if not 0 < confidence < 1:
        raise ValidationError([Problem("confidence", "must be between 0 and 1")])
    if not isinstance(regressions, int) or regressions < 0:
        raise ValidationError([Problem("regressions", "must be an integer >= 0")])
    ea, eb = get(project, a), get(project, b)
    sa, sb = experiment_scores(project, ea.id), experiment_scores(project, eb.id)
    names = sorted(set(sa) & set(sb))
    if scores is not None:
        unknown = sorted(set(scores) - set(names))
        if unknown:
            raise ValidationError(
                [
                    Problem(
                        "scores",
                        f"{', '.join(unknown)}: not scored in both experiments"
                        f" (both have: {', '.join(names) or 'none'})",
                    )
                ]
            )
        names = [n for n in names if n in scores]
    result = Comparison(ea, eb)
    alpha = 1 - confidence
    worst: list[tuple[float, str, uuid.UUID, float, float]] = []
    for k, name in enumerate(names):
        va, vb = dict(sa[name]), dict(sb[name])
        common = sorted(set(va) & set(vb))
        diffs = [vb[i] - va[i] for i in common]
        a_wins = sum(d < 0 for d in diffs)
        b_wins = sum(d > 0 for d in diffs)
        p_sign = sign_test(b_wins, a_wins)
        p_wilcoxon, method = wilcoxon(diffs)
        better = None
        if p_sign < alpha:
            better = "b" if b_wins > a_wins else "a"
        result.scores[name] = ScoreComparison(
            name,
            bootstrap_mean(list(va.values()), confidence=confidence, seed=seed + 2 * k),
            bootstrap_mean(list(vb.values()), confidence=confidence, seed=seed + 2 * k + 1),
            bootstrap_mean(diffs, confidence=confidence, seed=seed + 7919 + k),
            len(common),
            a_wins,
            b_wins,
            len(common) - a_wins - b_wins,
            p_sign,
            p_wilcoxon,
            f"sign test (exact); {method}",
            better,
        )
        ranked = sorted((d, i) for d, i in zip(diffs, common, strict=True) if d < 0)
        worst += [(d, name, i, va[i], vb[i]) for d, i in ranked[:regressions]]
    result.regressions = _regressions(project, ea, eb, worst)
    result.errors = _errors(project, ea, eb)
    if log:
        _log(project, result, tracking_uri)
    return result


def _regressions(
    project: Project,
    ea: Experiment,
    eb: Experiment,
    worst: list[tuple[float, str, uuid.UUID, float, float]],
) -> list[Regression]:
    if not worst:
        return []
    items = list({w[2] for w in worst})
    with project.lake._transaction(project) as conn:
        rows = conn.execute(
            "SELECT d.id, d.input_text, d.input_messages, ga.output, gb.output"
            " FROM generations d"
            " JOIN experiment_items ia ON ia.project_id = d.project_id AND ia.item_id = d.id"
            "  AND ia.experiment_id = %s"
            " JOIN experiment_items ib ON ib.project_id = d.project_id AND ib.item_id = d.id"
            "  AND ib.experiment_id = %s"
            " LEFT JOIN generations ga ON ga.project_id = d.project_id AND ga.id = ia.generation_id"
            " LEFT JOIN generations gb ON gb.project_id = d.project_id AND gb.id = ib.generation_id"
            " WHERE d.project_id = %s AND d.id = ANY(%s)",
            (ea.id, eb.id, project.id, items),
        ).fetchall()
    found = {r[0]: (r[1] if r[1] is not None else _last_user_text(r[2]), r[3], r[4]) for r in rows}
    out = []
    for _, name, item, value_a, value_b in sorted(worst, key=lambda w: (w[1], w[0], w[2])):
        text, output_a, output_b = found.get(item, (None, None, None))
        out.append(Regression(item, name, value_a, value_b, text, output_a, output_b))
    return out


def _errors(project: Project, ea: Experiment, eb: Experiment) -> dict[str, int]:
    with project.lake._transaction(project) as conn:
        rows = dict(
            conn.execute(
                "SELECT experiment_id, count(*) FROM experiment_items WHERE project_id = %s"
                " AND experiment_id = ANY(%s) AND status = 'error' GROUP BY 1",
                (project.id, [ea.id, eb.id]),
            ).fetchall()
        )
    return {"a": rows.get(ea.id, 0), "b": rows.get(eb.id, 0)}


def _metric_name(text: str) -> str:
    return re.sub(r"[^\w\-. /]", "_", text)


def _log(project: Project, result: Comparison, tracking_uri: str | None) -> None:
    """The comparison as metrics of b's MLflow run (nothing when b has none)."""
    if result.b.mlflow_run_id is None:
        return
    import time

    from mlflow.entities import Metric

    from ..tracking.runs import _mlflow_client, default_tracking_uri

    client = _mlflow_client(tracking_uri or default_tracking_uri(project.lake.url, project.id))
    now = int(time.time() * 1000)
    prefix = f"compare.{_metric_name(result.a.name)}"
    metrics = []
    for name, s in result.scores.items():
        values = {
            "a_wins": s.a_wins,
            "b_wins": s.b_wins,
            "ties": s.ties,
            "sign_p": s.sign_p,
            "wilcoxon_p": s.wilcoxon_p,
            "difference": s.difference.estimate,
            "difference_low": s.difference.low,
            "difference_high": s.difference.high,
        }
        for key, value in values.items():
            if value is not None:
                metrics.append(Metric(f"{prefix}.{_metric_name(name)}.{key}", float(value), now, 0))
    if metrics:
        client.log_batch(result.b.mlflow_run_id, metrics=metrics)
