"""The pipeline's parameters (``params.yaml``), checked before any stage does work.

DVC passes nothing to a stage but its command line, so every stage reads the same
``params.yaml`` and takes its own section. A typo in a parameter must stop the stage with
a message naming the key, not cut a silently different dataset, so each section is
validated in full: unknown keys, wrong types and out-of-range values are all reported at
once, as a :class:`~promptlake.errors.ValidationError`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..db.models import ORIGINS
from ..errors import ConfigurationError, Problem, ValidationError

STATUSES = ("ok", "error")


@dataclass(frozen=True)
class ExportFilter:
    """Which generations a dataset is cut from (the ``export`` section)."""

    project: str
    models: tuple[str, ...] = ()
    origins: tuple[str, ...] = ORIGINS
    statuses: tuple[str, ...] = ("ok",)
    tags: tuple[str, ...] = ()  # any of them; empty: no tag filter
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    min_scores: Mapping[str, float] = field(default_factory=dict)  # mean score >= threshold
    limit: int | None = None
    entities: tuple[str, ...] = ()  # rows mentioning any of them (see graph/filters.py)

    def to_dict(self) -> dict[str, Any]:
        extra = {"entities": list(self.entities)} if self.entities else {}
        return {
            **extra,
            "project": self.project,
            "models": list(self.models),
            "origins": list(self.origins),
            "statuses": list(self.statuses),
            "tags": list(self.tags),
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "min_scores": dict(sorted(self.min_scores.items())),
            "limit": self.limit,
        }


@dataclass(frozen=True)
class DedupParams:
    exact: bool = True
    near_threshold: float | None = 0.85  # word 5-gram Jaccard; None: exact only
    field: str = "content"


@dataclass(frozen=True)
class AnonymizeParams:
    # entity type -> operator; empty: the project's live PII policy
    operators: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SplitParams:
    train: float = 0.8
    validation: float = 0.1
    test: float = 0.1
    seed: str = "promptlake"
    synthetic_in_test: bool = False
    max_synthetic_share: float = 1.0


@dataclass(frozen=True)
class PipelineParams:
    name: str
    export: ExportFilter
    dedup: DedupParams
    anonymize: AnonymizeParams
    split: SplitParams
    mlflow: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "dedup": vars(self.dedup),
            "anonymize": {"operators": dict(self.anonymize.operators)},
            "split": vars(self.split),
        }


class _Section:
    """Reads one mapping, collecting problems under ``prefix``."""

    def __init__(self, raw: Any, prefix: str, problems: list[Problem]) -> None:
        self.prefix = prefix
        self.problems = problems
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            problems.append(Problem(prefix, f"must be a mapping, got {type(raw).__name__}"))
            raw = {}
        self.raw = dict(raw)
        self.seen: set[str] = set()

    def _fail(self, key: str, reason: str) -> None:
        self.problems.append(Problem(f"{self.prefix}.{key}", reason))

    def get(self, key: str, default: Any) -> Any:
        self.seen.add(key)
        return self.raw.get(key, default)

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.get(key, default)
        if value is not None and (not isinstance(value, str) or not value):
            self._fail(key, "must be a non-empty string")
            return default
        return value

    def texts(self, key: str, default: tuple[str, ...], allowed: tuple[str, ...] = ()) -> tuple:
        value = self.get(key, list(default))
        if value is None:
            return default
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self._fail(key, "must be a list of non-empty strings")
            return default
        for v in value:
            if allowed and v not in allowed:
                self._fail(key, f"{v!r} is not one of {', '.join(allowed)}")
        return tuple(dict.fromkeys(value))

    def number(self, key: str, default: float | None, low: float, high: float) -> float | None:
        value = self.get(key, default)
        if value is None:
            return None
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or not low <= value <= high:
            self._fail(key, f"must be a number from {low} to {high}, got {value!r}")
            return default
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            self._fail(key, f"must be true or false, got {value!r}")
            return default
        return value

    def moment(self, key: str) -> dt.datetime | None:
        value = self.get(key, None)
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            moment = value
        elif isinstance(value, dt.date):
            moment = dt.datetime.combine(value, dt.time())
        else:
            try:
                moment = dt.datetime.fromisoformat(str(value))
            except ValueError:
                self._fail(key, f"must be an ISO date or time, got {value!r}")
                return None
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.get(key, {})
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self._fail(key, "must be a mapping")
            return {}
        return dict(value)

    def done(self) -> None:
        for key in sorted(set(self.raw) - self.seen):
            self._fail(key, "unknown parameter")


def parse(raw: Mapping[str, Any]) -> PipelineParams:
    """``params.yaml`` contents -> :class:`PipelineParams`, or a ValidationError listing
    every problem."""
    problems: list[Problem] = []
    top = _Section(raw, "params", problems)
    dataset = _Section(top.get("dataset", {}), "dataset", problems)
    name = dataset.text("name") or ""
    if not name:
        problems.append(Problem("dataset.name", "is required"))
    tracking = dataset.flag("mlflow", True)
    dataset.done()

    ex = _Section(top.get("export", {}), "export", problems)
    project = ex.text("project") or ""
    if not project:
        problems.append(Problem("export.project", "is required"))
    min_scores: dict[str, float] = {}
    for score, threshold in ex.mapping("min_scores").items():
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            problems.append(Problem(f"export.min_scores.{score}", "must be a number"))
        elif not math.isfinite(threshold):
            problems.append(Problem(f"export.min_scores.{score}", "must be finite"))
        else:
            min_scores[str(score)] = float(threshold)
    limit = ex.get("limit", None)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        problems.append(Problem("export.limit", f"must be a positive integer, got {limit!r}"))
        limit = None
    export = ExportFilter(
        project=project,
        models=ex.texts("models", ()),
        origins=ex.texts("origins", ORIGINS, ORIGINS),
        statuses=ex.texts("statuses", ("ok",), STATUSES),
        tags=ex.texts("tags", ()),
        since=ex.moment("since"),
        until=ex.moment("until"),
        min_scores=min_scores,
        limit=limit,
        entities=ex.texts("entities", ()),
    )
    ex.done()

    dd = _Section(top.get("dedup", {}), "dedup", problems)
    dedup = DedupParams(
        exact=dd.flag("exact", True),
        near_threshold=dd.number("near_threshold", 0.85, 0.01, 1.0),
        field=dd.text("field", "content") or "content",
    )
    if dedup.field not in ("content", "input", "output"):
        problems.append(Problem("dedup.field", "must be content, input or output"))
    dd.done()

    an = _Section(top.get("anonymize", {}), "anonymize", problems)
    operators = {str(k): v for k, v in an.mapping("operators").items()}
    an.done()
    if operators:
        from ..privacy.policy import validate

        problems.extend(
            Problem(f"anonymize.{p.field}", p.reason) for p in validate(operators, "export", [])
        )

    sp = _Section(top.get("split", {}), "split", problems)
    split = SplitParams(
        train=sp.number("train", 0.8, 0.0, 1.0) or 0.0,
        validation=sp.number("validation", 0.1, 0.0, 1.0) or 0.0,
        test=sp.number("test", 0.1, 0.0, 1.0) or 0.0,
        seed=sp.text("seed", "promptlake") or "promptlake",
        synthetic_in_test=sp.flag("synthetic_in_test", False),
        max_synthetic_share=sp.number("max_synthetic_share", 1.0, 0.0, 1.0) or 0.0,
    )
    if abs(split.train + split.validation + split.test - 1.0) > 1e-9:
        problems.append(Problem("split", "train + validation + test must add up to 1"))
    sp.done()
    for key in sorted(set(top.raw) - {"dataset", "export", "dedup", "anonymize", "split"}):
        problems.append(Problem(key, "unknown section"))
    if problems:
        raise ValidationError(problems)
    return PipelineParams(
        name=name,
        export=export,
        dedup=dedup,
        anonymize=AnonymizeParams(operators),
        split=split,
        mlflow=tracking,
    )


def read_raw(path: str | Path = "params.yaml") -> dict[str, Any]:
    """The contents of a params file (YAML, or JSON, which is YAML too), unchecked."""
    try:
        import yaml
    except ImportError:
        raise ConfigurationError(
            "reading params.yaml needs PyYAML: pip install 'promptlake[datasets]'"
        ) from None
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"{path}: no such parameters file") from None
    except UnicodeDecodeError as exc:
        raise ValidationError([Problem(str(path), f"is not UTF-8 ({exc.reason})")]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
        problem = Problem(str(path), f"is not valid YAML{where}: {reason}")
        raise ValidationError([problem]) from None
    if raw is not None and not isinstance(raw, dict):
        raise ValidationError([Problem(str(path), "must hold a mapping of sections")])
    return raw or {}


def load(path: str | Path = "params.yaml") -> PipelineParams:
    """Read and check a params file."""
    raw = read_raw(path)
    try:
        return parse(raw)
    except ValidationError as exc:
        raise ValidationError(
            [Problem(f"{path}: {p.field}", p.reason) for p in exc.problems]
        ) from None
