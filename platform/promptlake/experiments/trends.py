"""Behaviour over time: a score's and usage's series per model and prompt version, by day
or week, with confidence intervals and a detector that flags significant drops.

Each point is one (model, prompt version, period) of the generations created in that
period (UTC): calls, error rate (with a Wilson interval), tokens, cost, median latency,
and the mean of the score (booleans as 0/1; several scores of one generation averaged)
with a t interval. The change detector compares each point with the pooled previous
``window`` points of the same series by Welch's one-sided t-test and flags it when the
mean fell by at least ``min_drop`` with p below ``alpha`` (default 0.01: a long daily
series tests many points, so a loose level would raise false alarms). Everything is
computed from per-group counts, means and variances aggregated in PostgreSQL, so a year
of generations is one query per side.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import Problem, ValidationError
from .stats import Interval, pooled, t_interval, welch_summary, wilson

if TYPE_CHECKING:
    from ..client import Project


@dataclass(frozen=True)
class TrendPoint:
    period: dt.date
    model: str | None
    prompt_version: str | None  # "template vN"
    calls: int
    error_rate: Interval  # with its Wilson interval
    total_tokens: int
    cost_usd: float
    latency_p50_ms: float | None
    score: Interval  # mean of the score with its interval (n = scored generations)
    baseline: float | None = None  # pooled mean of the previous window
    drop_p: float | None = None
    flagged: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.period.isoformat(),
            "model": self.model,
            "prompt_version": self.prompt_version,
            "calls": self.calls,
            "error_rate": self.error_rate.to_dict(),
            "total_tokens": self.total_tokens,
            "cost_usd": self.cost_usd,
            "latency_p50_ms": self.latency_p50_ms,
            "score": self.score.to_dict(),
            "baseline": self.baseline,
            "drop_p": self.drop_p,
            "flagged": self.flagged,
        }


@dataclass
class TrendReport:
    score: str
    by: str
    points: list[TrendPoint] = field(default_factory=list)

    @property
    def alerts(self) -> list[TrendPoint]:
        return [p for p in self.points if p.flagged]

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "by": self.by,
            "points": [p.to_dict() for p in self.points],
            "alerts": [p.to_dict() for p in self.alerts],
        }


_GROUP = """
  FROM generations g
  LEFT JOIN models m ON m.project_id = g.project_id AND m.id = g.model_id
  LEFT JOIN prompt_versions v ON v.project_id = g.project_id AND v.id = g.prompt_version_id
  LEFT JOIN prompt_templates t ON t.project_id = v.project_id AND t.id = v.template_id
"""
_KEYS = (
    "date_trunc(%(unit)s, g.created_at AT TIME ZONE 'UTC')::date AS period, m.name AS model,"
    " CASE WHEN t.name IS NULL THEN NULL ELSE t.name || ' v' || v.version END AS prompt_version"
)


def trends(
    project: Project,
    score: str,
    *,
    by: str = "day",
    model: str | None = None,
    since: dt.datetime | dt.date | None = None,
    until: dt.datetime | dt.date | None = None,
    window: int = 7,
    alpha: float = 0.01,
    min_drop: float = 0.0,
    confidence: float = 0.95,
) -> TrendReport:
    """The series of ``score`` and usage (see the module docstring)."""
    problems = []
    if by not in ("day", "week"):
        problems.append(Problem("by", "must be day or week"))
    if not isinstance(window, int) or window < 1:
        problems.append(Problem("window", "must be an integer >= 1"))
    if not 0 < alpha < 1:
        problems.append(Problem("alpha", "must be between 0 and 1"))
    if not 0 < confidence < 1:
        problems.append(Problem("confidence", "must be between 0 and 1"))
    if not isinstance(score, str) or not score.strip():
        problems.append(Problem("score", "is required"))
    if problems:
        raise ValidationError(problems)
    params: dict[str, Any] = {"project": project.id, "unit": by, "score": score}
    where = ["g.project_id = %(project)s"]
    if model is not None:
        where.append("m.name = %(model)s")
        params["model"] = model
    for key, value, op in (("since", since, ">="), ("until", until, "<")):
        if value is not None:
            where.append(f"g.created_at {op} %({key})s")
            params[key] = value
    condition = " AND ".join(where)
    usage_sql = (
        f"SELECT {_KEYS}, count(*), count(*) FILTER (WHERE g.status = 'error'),"
        " coalesce(sum(coalesce(g.prompt_tokens, 0) + coalesce(g.completion_tokens, 0)), 0),"
        " coalesce(sum(g.cost_usd), 0),"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY g.latency_ms)"
        f" {_GROUP} WHERE {condition} GROUP BY 1, 2, 3"
    )
    score_sql = (
        f"SELECT {_KEYS}, count(*), avg(s.value), coalesce(var_samp(s.value), 0)"
        f" {_GROUP} JOIN (SELECT generation_id, avg(coalesce(value_numeric, value_bool::int))"
        "  AS value FROM scores WHERE project_id = %(project)s AND name = %(score)s"
        "  AND data_type <> 'categorical' GROUP BY generation_id) s ON s.generation_id = g.id"
        f" WHERE {condition} GROUP BY 1, 2, 3"
    )
    with project.lake._transaction(project) as conn:
        usage = {tuple(r[:3]): r[3:] for r in conn.execute(usage_sql, params)}
        scored = {tuple(r[:3]): r[3:] for r in conn.execute(score_sql, params)}
    report = TrendReport(score, by)
    series: dict[tuple, list[tuple]] = {}
    for key in sorted(usage, key=lambda k: (k[1] or "", k[2] or "", k[0])):
        series.setdefault(key[1:], []).append(key)
    for (model_name, version), keys in sorted(
        series.items(), key=lambda kv: (kv[0][0] or "", kv[0][1] or "")
    ):
        history: list[tuple[int, float, float]] = []
        for key in keys:
            calls, errors, tokens, cost, p50 = usage[key]
            n, mean, variance = scored.get(key, (0, None, 0.0))
            stats = (int(n), float(mean) if mean is not None else 0.0, float(variance))
            interval = t_interval(*stats, confidence) if n else Interval(None, None, None, 0)
            baseline = drop_p = None
            flagged = False
            recent = [h for h in history[-window:] if h[0] > 0]
            if n and recent:
                bn, bm, bv = pooled(recent)
                baseline = bm
                _, drop_p = welch_summary(bn, bm, bv, *stats)
                flagged = drop_p is not None and drop_p < alpha and bm - stats[1] >= min_drop
            report.points.append(
                TrendPoint(
                    key[0],
                    model_name,
                    version,
                    int(calls),
                    wilson(int(errors), int(calls), confidence),
                    int(tokens),
                    float(cost),
                    None if p50 is None else float(p50),
                    interval,
                    baseline,
                    drop_p,
                    flagged,
                )
            )
            history.append(stats)
    return report
