"""Contamination: rows of one selection that near-duplicate rows of a reference selection.

The typical question: do any training or synthetic rows copy (or nearly copy) the prompts
of an evaluation set? Datasets are a later issue, so both sides are :class:`Selection`\\ s of
the project's generations (by origin, tags, model, run, session or ids). The comparison is
the near-duplicate method (word 5-gram MinHash LSH, every candidate verified by exact
Jaccard), computed in memory and stored nowhere, so analysts may run it too; it compares
the ``input`` side by default, because leaked benchmark questions are what contaminates.
Rows in both selections are not compared with themselves.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from psycopg import sql

from ..errors import Problem, ValidationError
from .minhash import Signer, band_keys, candidate_pairs, lsh_params
from .shingles import FIELD_TEXT_SQL, Shingler, check_field, jaccard

if TYPE_CHECKING:
    from ..client import Project


@dataclass(frozen=True)
class Selection:
    """Generations of a project: every given condition must hold (tags: all of them)."""

    origin: str | None = None
    tags: Sequence[str] | None = None
    model: str | None = None
    run: uuid.UUID | None = None
    session: uuid.UUID | None = None
    ids: Sequence[uuid.UUID] | None = None

    def where(self) -> tuple[sql.Composable, list[Any]]:
        parts: list[sql.Composable] = [sql.SQL("g.project_id = %s")]
        params: list[Any] = []
        if self.origin is not None:
            parts.append(sql.SQL("g.origin = %s"))
            params.append(self.origin)
        if self.tags:
            parts.append(sql.SQL("g.tags @> %s::text[]"))
            params.append(list(self.tags))
        if self.model is not None:
            parts.append(
                sql.SQL(
                    "g.model_id = (SELECT m.id FROM models m WHERE m.project_id = g.project_id"
                    " AND m.name = %s)"
                )
            )
            params.append(self.model)
        for column, value in (("run_id", self.run), ("session_id", self.session)):
            if value is not None:
                parts.append(sql.SQL("g.{} = %s").format(sql.Identifier(column)))
                params.append(value)
        if self.ids is not None:
            parts.append(sql.SQL("g.id = ANY(%s)"))
            params.append(list(self.ids))
        return sql.SQL(" AND ").join(parts), params

    def is_empty(self) -> bool:
        return all(v is None for v in asdict(self).values())


@dataclass(frozen=True)
class Match:
    suspect_id: uuid.UUID
    reference_id: uuid.UUID
    similarity: float


@dataclass
class ContaminationReport:
    """``matches``: every (suspect, reference) pair at or above the threshold, most similar
    first; ``contaminated_references``: reference rows with at least one match."""

    field: str
    threshold: float
    suspects: int
    references: int
    contaminated_suspects: int
    contaminated_references: int
    matches: list[Match] = field(default_factory=list)

    @property
    def contamination_rate(self) -> float:
        return self.contaminated_references / self.references if self.references else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["contamination_rate"] = round(self.contamination_rate, 6)
        return out

    def __str__(self) -> str:
        return (
            f"{self.contaminated_references:,} of {self.references:,} reference rows"
            f" ({self.contamination_rate:.2%}) have near-duplicates (Jaccard >="
            f" {self.threshold:g}, {self.field}) among {self.suspects:,} suspect rows"
            f" ({self.contaminated_suspects:,} of them involved)"
        )


def _texts(project: Project, selection: Selection, field: str) -> tuple[list[uuid.UUID], list[str]]:
    where, params = selection.where()
    query = sql.SQL("SELECT g.id, {} FROM generations g WHERE {} ORDER BY g.id").format(
        sql.SQL(FIELD_TEXT_SQL[field]), where
    )
    with project.lake._transaction(project) as conn:
        rows = conn.execute(query, [project.id, *params]).fetchall()
    return [r[0] for r in rows], [r[1] or "" for r in rows]


def contamination(
    project: Project,
    suspects: Selection,
    references: Selection,
    *,
    threshold: float = 0.8,
    field: str = "input",
) -> ContaminationReport:
    """Which ``suspects`` rows near-duplicate ``references`` rows (e.g. synthetic or
    training rows against an evaluation set), at Jaccard >= ``threshold``."""
    check_field(field)
    if not 0 < threshold <= 1:
        raise ValidationError([Problem("threshold", f"must be in (0, 1], got {threshold}")])
    if references.is_empty():
        raise ValidationError(
            [Problem("references", "select the reference rows (e.g. tags=['eval'])")]
        )
    suspect_ids, suspect_texts = _texts(project, suspects, field)
    reference_ids, reference_texts = _texts(project, references, field)
    ids = suspect_ids + reference_ids
    sets = Shingler().shingle(suspect_texts + reference_texts)
    n_suspects = len(suspect_ids)
    signer = Signer()
    bands, rows = lsh_params(threshold, signer.num_perm)
    keys = band_keys(signer.sign(sets), bands, rows)
    is_reference = np.arange(len(ids)) >= n_suspects
    pairs, _ = candidate_pairs(keys, sets.sizes() > 0, is_reference)
    matches = []
    for a, b in pairs:
        if is_reference[a] == is_reference[b] or ids[a] == ids[b]:
            continue
        s, r = (a, b) if b >= n_suspects else (b, a)
        sim = jaccard(sets.get(int(s)), sets.get(int(r)))
        if sim >= threshold:
            matches.append(Match(ids[s], ids[r], round(sim, 6)))
    matches.sort(key=lambda m: (-m.similarity, str(m.reference_id), str(m.suspect_id)))
    return ContaminationReport(
        field=field,
        threshold=threshold,
        suspects=n_suspects,
        references=len(reference_ids),
        contaminated_suspects=len({m.suspect_id for m in matches}),
        contaminated_references=len({m.reference_id for m in matches}),
        matches=matches,
    )
