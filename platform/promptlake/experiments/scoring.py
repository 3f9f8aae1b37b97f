"""``proj.experiments.score(selection, scorers)``: scorers over generations already stored.

The selection is an experiment (its items' outputs, with the dataset items as references),
a :class:`promptlake.dedup.Selection` or a list of generation ids. Outside an experiment
a generation's reference is its ``metadata.expected`` or ``metadata.reference`` when that
is text (the MT-bench importer stores the question's reference answer there), else none,
and scorers that need one give no score. Score ids are derived from (generation, scorer),
so scoring twice stores nothing new and only missing scores are computed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..access import as_uuid, require_member
from ..errors import Problem, ValidationError
from ..scores import insert_scores
from .items import Item, generations_by_id, item_from_row
from .runner import Experiment, _scorer_list, apply_scorers, get, score_id

if TYPE_CHECKING:
    from ..client import Project
    from .scorers import Scorer


@dataclass
class ScoreReport:
    """What :func:`score` did: generations looked at, scores stored, already there."""

    generations: int = 0
    scored: int = 0
    existing: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # scorer -> generations it failed on

    def to_dict(self) -> dict[str, Any]:
        return {
            "generations": self.generations,
            "scored": self.scored,
            "existing": self.existing,
            "errors": self.errors,
        }


def _reference(metadata: dict[str, Any] | None) -> str | None:
    for key in ("expected", "reference"):
        value = (metadata or {}).get(key)
        if isinstance(value, str):
            return value
    return None


_GEN = "g.id, g.input_text, g.input_messages, g.output, g.metadata"


def _targets(project: Project, selection: Any) -> list[tuple[uuid.UUID, str | None, Item]]:
    """(generation id, output, item) of each selected generation."""
    from ..dedup import Selection

    with project.lake._transaction(project) as conn:
        if isinstance(selection, Experiment | str) and not _looks_like_uuid(selection):
            experiment = get(project, selection)
            pairs = conn.execute(
                "SELECT item_id, generation_id FROM experiment_items"
                " WHERE project_id = %s AND experiment_id = %s AND status = 'ok'"
                " ORDER BY item_id",
                (project.id, experiment.id),
            ).fetchall()
            # keys first, then rows by id (see items.generations_by_id)
            outputs = generations_by_id(conn, project, [g for _, g in pairs])
            inputs = generations_by_id(conn, project, [i for i, _ in pairs])
            out = []
            for item_id, gid in pairs:
                if gid in outputs and item_id in inputs:
                    _, text, messages, expected, metadata, _ = inputs[item_id]
                    item = item_from_row((item_id, text, messages, expected, metadata, None, None))
                    out.append((gid, outputs[gid][3], item))
            return out
        if isinstance(selection, Selection):
            where, params = selection.where()
            query = f"SELECT {_GEN} FROM generations g WHERE " + where.as_string(conn)
            rows = conn.execute(query + " ORDER BY g.id", (project.id, *params)).fetchall()
        else:
            ids = _ids(selection)
            rows = conn.execute(
                f"SELECT {_GEN} FROM generations g WHERE g.project_id = %s AND g.id = ANY(%s)"
                " ORDER BY g.id",
                (project.id, ids),
            ).fetchall()
    out = []
    for gid, text, messages, output, metadata in rows:
        item = item_from_row((gid, text, messages, _reference(metadata), metadata, None, None))
        out.append((gid, output, item))
    return out


def _looks_like_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _ids(selection: Any) -> list[uuid.UUID]:
    if isinstance(selection, str | uuid.UUID):
        selection = [selection]
    if not isinstance(selection, Iterable):
        raise ValidationError(
            [Problem("selection", "must be an experiment, a Selection or generation ids")]
        )
    try:
        return [as_uuid(g) for g in selection]
    except (ValueError, AttributeError, TypeError) as exc:
        raise ValidationError([Problem("selection", f"not a generation id: {exc}")]) from None


def score(
    project: Project,
    selection: Any,
    scorers: Iterable[Any],
    *,
    concurrency: int = 1,
    batch_size: int = 500,
) -> ScoreReport:
    """Run ``scorers`` on the selected generations and store the scores they lack."""
    require_member(project, ("admin",))
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ValidationError([Problem("concurrency", "must be an integer >= 1")])
    objects = _scorer_list(scorers)
    for scorer in objects:
        scorer.bind(project)
    return _score_targets(project, _targets(project, selection), objects, concurrency, batch_size)


def score_experiment_items(
    project: Project, experiment: Experiment, scorers: Sequence[Scorer]
) -> ScoreReport:
    """The scores an experiment's done items lack (a resumed run with a new scorer)."""
    return _score_targets(project, _targets(project, experiment), list(scorers), 1, 500)


def _score_targets(
    project: Project,
    targets: list[tuple[uuid.UUID, str | None, Item]],
    scorers: list[Scorer],
    concurrency: int,
    batch_size: int,
) -> ScoreReport:
    report = ScoreReport(generations=len(targets))
    if not targets or not scorers:
        return report
    wanted = {score_id(gid, s.name): (gid, s.name) for gid, _, _ in targets for s in scorers}
    with project.lake._transaction(project) as conn:
        have = {
            r[0]
            for r in conn.execute(
                "SELECT id FROM scores WHERE project_id = %s AND id = ANY(%s)",
                (project.id, list(wanted)),
            )
        }
    report.existing = len(have)
    max_bytes = project.lake.settings.max_text_bytes

    def one(target: tuple[uuid.UUID, str | None, Item]) -> tuple[list[dict], dict[str, str]]:
        gid, output, item = target
        missing = [s for s in scorers if score_id(gid, s.name) not in have]
        return apply_scorers(missing, gid, output, item, max_bytes) if missing else ([], {})

    if len(have) == len(wanted):
        return report  # nothing missing (a resumed experiment, usually)
    if concurrency == 1:
        results = [one(t) for t in targets]
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            results = list(pool.map(one, targets))
    rows = [r for rs, _ in results for r in rs]
    for _, errors in results:
        for name in errors:
            report.errors[name] = report.errors.get(name, 0) + 1
    for start in range(0, len(rows), batch_size):
        with project.lake._transaction(project) as conn:
            report.scored += insert_scores(conn, project.id, rows[start : start + batch_size])
    return report
