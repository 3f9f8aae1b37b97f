"""What a dedup run returns: counts, duplicate rate, the largest clusters with examples."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .clusters import Items, Result


@dataclass(frozen=True)
class ClusterExample:
    """One cluster: its representative, size, and its least similar member, with snippets."""

    id: uuid.UUID
    size: int
    min_similarity: float
    representative_text: str
    member_id: uuid.UUID | None
    member_text: str | None


@dataclass
class DedupReport:
    """The state of one dedup index after a run.

    ``checked`` generations are covered; ``duplicates`` of them are members of a cluster
    other than its representative, so ``duplicate_rate = duplicates / checked`` is the
    share of rows a deduplicated export drops. ``changes`` counts rows written by this run
    (all zero when nothing changed since the last run).
    """

    project: str
    method: str
    field: str
    threshold: float
    within_origin: bool
    checked: int
    newly_checked: int
    clusters: int
    duplicates: int
    stored: bool
    seconds: float
    pending: int = 0
    examples: list[ClusterExample] = field(default_factory=list)
    changes: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def duplicate_rate(self) -> float:
        return self.duplicates / self.checked if self.checked else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["duplicate_rate"] = round(self.duplicate_rate, 6)
        return out

    def __str__(self) -> str:
        scope = ", within origin" if self.within_origin else ""
        lines = [
            f"{self.method} dedup of {self.project!r} ({self.field}, threshold"
            f" {self.threshold:g}{scope}): {self.checked:,} generations checked"
            f" ({self.newly_checked:,} this run) in {self.seconds:.1f} s",
            f"  {self.clusters:,} clusters, {self.duplicates:,} duplicates,"
            f" duplicate rate {self.duplicate_rate:.2%}",
        ]
        if self.pending:
            lines.append(f"  {self.pending:,} generations logged since; run again to check them")
        if self.changes:
            lines.append("  written: " + ", ".join(f"{k} {v}" for k, v in self.changes.items()))
        if not self.stored:
            lines.append("  (not stored: computed for this report only)")
        for ex in self.examples:
            lines.append(
                f"  cluster {ex.id} ({ex.size} generations, min similarity"
                f" {ex.min_similarity:.2f}): {_snip(ex.representative_text)}"
            )
            if ex.member_text is not None:
                lines.append(f"      e.g. {ex.member_id}: {_snip(ex.member_text)}")
        return "\n".join(lines)


def _snip(text: str, width: int = 90) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= width else flat[: width - 1] + "…")


def examples_from(
    largest: list[tuple[uuid.UUID, int, float, uuid.UUID | None]], texts: dict[uuid.UUID, str]
) -> list[ClusterExample]:
    return [
        ClusterExample(cid, size, low, texts.get(cid, ""), member,
                       texts.get(member) if member is not None else None)
        for cid, size, low, member in largest
    ]  # fmt: skip


def largest_clusters(
    result: Result, items: Items, n: int
) -> list[tuple[uuid.UUID, int, float, uuid.UUID | None]]:
    """The ``n`` largest clusters of an unstored result, as :func:`store.stored_summary`
    gives them: (id, size, min similarity, least similar member)."""
    ordered = sorted(result.clusters, key=lambda c: (-len(c.members), items.ids[c.representative]))
    out = []
    for c in ordered[:n]:
        others = [
            (float(sim), items.ids[int(m)])
            for m, sim in zip(c.members, c.similarities, strict=True)
            if m != c.representative
        ]
        low = min(others)[1] if others else None
        out.append((items.ids[c.representative], len(c.members), float(min(c.similarities)), low))
    return out
