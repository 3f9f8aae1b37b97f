"""Lineage in the graph language of the entity graph: recursive walks over provenance.

The nodes are generations, runs and dataset versions; an edge points from what was made
to what it was made from:

================  ==================  ===============================================
from              to                  why
================  ==================  ===============================================
generation        generation          ``chain``: its ``parent_id`` (prompt chain, turn)
generation        generation          ``synthetic_from``: a seed its ``lineage`` names
                                      (``seed_generation_ids``: [...] or
                                      ``seed_generation_id``)
generation        run                 ``logged_in``: its ``run_id``
run               dataset version     ``used``: ``run_datasets``
dataset version   generation          ``cut_from``: ``dataset_items``
================  ==================  ===============================================

``ancestors`` follows the edges (what real generations a synthetic set descends from,
what a dataset version was cut from), ``descendants`` follows them backwards (which
datasets and synthetic rows a generation went into). One ``WITH RECURSIVE`` query with
``SEARCH BREADTH FIRST`` and ``CYCLE``; every step is an index lookup in a ``LATERAL``
subquery, except synthetic descendants, which read the project's synthetic rows'
``lineage`` (no index on it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError, Problem, ValidationError

if TYPE_CHECKING:
    from ..client import Project

KINDS = ("generation", "run", "dataset_version")
DIRECTIONS = ("ancestors", "descendants")
_UUID = "'^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$'"


@dataclass(frozen=True)
class LineageNode:
    kind: str
    id: uuid.UUID
    depth: int
    relation: str  # the edge that reached it first
    via: uuid.UUID  # the node it was reached from

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "id": str(self.id), "via": str(self.via)}


_SEEDS = (
    "SELECT s.v::uuid FROM generations g CROSS JOIN LATERAL (SELECT jsonb_array_elements_text("
    " CASE jsonb_typeof(g.lineage->'seed_generation_ids') WHEN 'array'"
    " THEN g.lineage->'seed_generation_ids' ELSE '[]'::jsonb END)"
    " UNION ALL SELECT g.lineage->>'seed_generation_id') s(v)"
    f" WHERE g.project_id = %(p)s AND g.id = w.id AND s.v ~ {_UUID}"
)

ANCESTOR_STEPS = f"""
  SELECT 'generation', g.parent_id, 'chain' FROM generations g
   WHERE w.kind = 'generation' AND g.project_id = %(p)s AND g.id = w.id AND g.parent_id IS NOT NULL
  UNION ALL SELECT 'generation', seed.v, 'synthetic_from' FROM ({_SEEDS}) seed(v)
   WHERE w.kind = 'generation'
  UNION ALL SELECT 'run', g.run_id, 'logged_in' FROM generations g
   WHERE w.kind = 'generation' AND g.project_id = %(p)s AND g.id = w.id AND g.run_id IS NOT NULL
  UNION ALL SELECT 'dataset_version', rd.dataset_version_id, 'used' FROM run_datasets rd
   WHERE w.kind = 'run' AND rd.project_id = %(p)s AND rd.run_id = w.id
  UNION ALL SELECT 'generation', i.generation_id, 'cut_from' FROM dataset_items i
   WHERE w.kind = 'dataset_version' AND i.project_id = %(p)s AND i.dataset_version_id = w.id"""

DESCENDANT_STEPS = """
  SELECT 'generation', g.id, 'chain' FROM generations g
   WHERE w.kind = 'generation' AND g.project_id = %(p)s AND g.parent_id = w.id
  UNION ALL SELECT 'generation', g.id, 'synthetic_from' FROM generations g
   WHERE w.kind = 'generation' AND g.project_id = %(p)s AND g.origin = 'synthetic'
     AND (g.lineage->'seed_generation_ids' ? w.id::text
          OR g.lineage->>'seed_generation_id' = w.id::text)
  UNION ALL SELECT 'dataset_version', i.dataset_version_id, 'cut_from' FROM dataset_items i
   WHERE w.kind = 'generation' AND i.project_id = %(p)s AND i.generation_id = w.id
  UNION ALL SELECT 'run', rd.run_id, 'used' FROM run_datasets rd
   WHERE w.kind = 'dataset_version' AND rd.project_id = %(p)s AND rd.dataset_version_id = w.id
  UNION ALL SELECT 'generation', g.id, 'logged_in' FROM generations g
   WHERE w.kind = 'run' AND g.project_id = %(p)s AND g.run_id = w.id"""

_EXISTS = {
    "generation": "SELECT 1 FROM generations WHERE project_id = %s AND id = %s",
    "run": "SELECT 1 FROM runs WHERE project_id = %s AND id = %s",
    "dataset_version": "SELECT 1 FROM dataset_versions WHERE project_id = %s AND id = %s",
}


def _node(project: Project, conn: Any, ref: Any, kind: str | None) -> tuple[str, uuid.UUID]:
    from ..access import as_uuid

    if kind is not None and kind not in KINDS:
        raise ValidationError([Problem("kind", f"must be one of {', '.join(KINDS)}")])
    if kind is None:
        name = type(ref).__name__
        kind = {"Generation": "generation", "DatasetVersion": "dataset_version",
                "Run": "run", "TrackedRun": "run"}.get(name)  # fmt: skip
    try:
        nid = as_uuid(ref)
    except (TypeError, ValueError, AttributeError):
        raise ValidationError(
            [Problem("node", "must be a generation, run or dataset version (or its id)")]
        ) from None
    for candidate in [kind] if kind else list(KINDS):
        if conn.execute(_EXISTS[candidate], (project.id, nid)).fetchone():
            return candidate, nid
    raise NotFoundError(
        f"no {kind or 'generation, run or dataset version'} {nid} in project {project.name}"
    )


def lineage(
    project: Project,
    node: Any,
    *,
    direction: str = "ancestors",
    kind: str | None = None,
    max_depth: int = 10,
    limit: int = 10_000,
) -> list[LineageNode]:
    """The ancestors (or descendants) of ``node``, nearest first, each once (at the depth
    it is first reached). ``node``: a generation, run or dataset version, or its id
    (``kind`` says which when an id could be several)."""
    if direction not in DIRECTIONS:
        raise ValidationError([Problem("direction", "must be ancestors or descendants")])
    if not 1 <= max_depth <= 100:
        raise ValidationError([Problem("max_depth", "must be between 1 and 100")])
    steps = ANCESTOR_STEPS if direction == "ancestors" else DESCENDANT_STEPS
    with project.lake._transaction(project) as conn:
        start_kind, start = _node(project, conn, node, kind)
        rows = conn.execute(
            "WITH RECURSIVE walk(kind, id, depth, relation, via) AS ("
            " SELECT %(k)s::text, %(n)s::uuid, 0, NULL::text, NULL::uuid"
            " UNION ALL SELECT x.kind, x.id, w.depth + 1, x.relation, w.id"
            f"  FROM walk w CROSS JOIN LATERAL ({steps}) x(kind, id, relation)"
            "  WHERE w.depth < %(d)s"
            ") SEARCH BREADTH FIRST BY kind, id SET ord CYCLE kind, id SET is_cycle USING path"
            " SELECT DISTINCT ON (kind, id) kind, id, depth, relation, via FROM walk"
            " WHERE NOT is_cycle AND depth > 0 AND NOT (kind = %(k)s AND id = %(n)s)"
            " ORDER BY kind, id, depth, ord",
            {"p": project.id, "k": start_kind, "n": start, "d": max_depth},
        ).fetchall()
    nodes = [LineageNode(*r) for r in rows]
    nodes.sort(key=lambda n: (n.depth, KINDS.index(n.kind), str(n.id)))
    return nodes[:limit]
