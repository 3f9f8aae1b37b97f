"""What is stored, in a few tables: the report behind ``promptlake stats`` and the demo.

Each section is plain SQL over the base tables, so the same numbers can be had from psql;
the analytics views (a later migration) build on the same queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import Lake


@dataclass(frozen=True)
class Section:
    """One table of the report."""

    title: str
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "rows": [dict(zip(self.columns, r, strict=True)) for r in self.rows],
        }


_FILTER = "(CAST(:project AS text) IS NULL OR p.name = :project)"

QUERIES: list[tuple[str, str]] = [
    (
        "Projects",
        f"""SELECT p.name AS project,
               (SELECT count(*) FROM sessions s WHERE s.project_id = p.id) AS sessions,
               (SELECT count(*) FROM generations g WHERE g.project_id = p.id) AS generations,
               (SELECT count(*) FROM scores c WHERE c.project_id = p.id) AS scores
          FROM projects p WHERE {_FILTER} ORDER BY p.name""",
    ),
    (
        "Generations per model",
        f"""SELECT p.name AS project, coalesce(m.name, '(none)') AS model, count(*) AS calls,
               sum(g.prompt_tokens) AS prompt_tokens, sum(g.completion_tokens) AS completion_tokens,
               round(avg(g.latency_ms)::numeric, 1) AS avg_latency_ms,
               round(sum(g.cost_usd), 4) AS cost_usd,
               count(*) FILTER (WHERE g.status = 'error') AS errors
          FROM generations g JOIN projects p ON p.id = g.project_id
          LEFT JOIN models m ON m.project_id = g.project_id AND m.id = g.model_id
         WHERE {_FILTER} GROUP BY p.name, m.name ORDER BY p.name, calls DESC, model""",
    ),
    (
        "Origin (real vs synthetic)",
        f"""SELECT p.name AS project, g.origin, coalesce(g.generator, '') AS generator,
               count(*) AS generations
          FROM generations g JOIN projects p ON p.id = g.project_id
         WHERE {_FILTER} GROUP BY p.name, g.origin, g.generator ORDER BY p.name, g.origin""",
    ),
    (
        "Sessions",
        f"""SELECT p.name AS project, count(*) AS sessions,
               round(avg(t.turns), 2) AS avg_turns, max(t.turns) AS max_turns,
               count(DISTINCT s.end_user_id) AS end_users
          FROM sessions s JOIN projects p ON p.id = s.project_id
          JOIN LATERAL (SELECT count(*) AS turns FROM generations g
                         WHERE g.project_id = s.project_id AND g.session_id = s.id) t ON true
         WHERE {_FILTER} GROUP BY p.name ORDER BY p.name""",
    ),
    (
        "Chain lengths",
        f"""WITH RECURSIVE chain AS (
                SELECT g.project_id, g.id, g.id AS root, 1 AS depth
                  FROM generations g JOIN projects p ON p.id = g.project_id
                 WHERE g.parent_id IS NULL AND {_FILTER}
                UNION ALL
                SELECT g.project_id, g.id, c.root, c.depth + 1
                  FROM generations g JOIN chain c
                    ON g.project_id = c.project_id AND g.parent_id = c.id
            ), lengths AS (
                SELECT project_id, root, max(depth) AS length FROM chain GROUP BY project_id, root
            )
            SELECT p.name AS project, l.length AS chain_length, count(*) AS chains
              FROM lengths l JOIN projects p ON p.id = l.project_id
             GROUP BY p.name, l.length ORDER BY p.name, l.length""",
    ),
    (
        "Scores",
        f"""SELECT p.name AS project, c.name AS score, c.source, count(*) AS n,
               round(avg(c.value_numeric)::numeric, 3) AS mean,
               round(avg(c.value_bool::int)::numeric, 3) AS share_true,
               mode() WITHIN GROUP (ORDER BY c.value_text) AS top_label
          FROM scores c JOIN projects p ON p.id = c.project_id
         WHERE {_FILTER} GROUP BY p.name, c.name, c.source ORDER BY p.name, c.name""",
    ),
]


def stats(lake: Lake, project: str | None = None) -> list[Section]:
    """The report for one project, or for every project the principal is a member of
    (one query per section: the policies admit all of the principal's projects)."""
    handle = lake.project(project, create=False) if project is not None else None
    if handle is None and not lake.projects():
        return [Section(title, *_empty(lake, query)) for title, query in QUERIES]
    sections = []
    for title, query in QUERIES:
        columns, rows = lake.query(query, {"project": None}, project=handle)
        sections.append(Section(title, columns, rows))
    return sections


def _empty(lake: Lake, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The columns of a section with no rows (a principal with no project yet)."""
    import sqlalchemy as sa

    with lake._sa_transaction(None) as conn:
        result = conn.execute(sa.text(f"SELECT * FROM ({query}) q LIMIT 0"), {"project": None})
        return list(result.keys()), []
