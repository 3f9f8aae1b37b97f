"""Exact duplicates: generations whose normalized input and/or output are the same.

The hashes are computed at ingest (``ingest/records.py``, ``HASH_VERSION`` 1: Unicode NFC,
whitespace runs folded to one space, ends stripped, case kept; chat messages as
``role: content`` lines) and stored with their version on every row; ``content_hash`` is
indexed per project. Nothing more is done on the ingest path: generations are events and
are never dropped, and each one's canonical (first) occurrence is answered by SQL:

* the view ``generation_canonical`` gives every generation its ``canonical_id`` (the
  earliest generation with the same content hash, by ``created_at`` then id), always
  current, with no job to run; "distinct content" is
  ``SELECT ... FROM generation_canonical WHERE generation_id = canonical_id``;
* :func:`run_exact` stores the groups as clusters of a dedup index (method ``exact``),
  like the near-duplicate methods, so exports and the ``dedup_rates`` view treat every
  method alike; it is one set-based statement per table and costs about a second per
  100k rows, so it simply recomputes the project and writes only the rows that changed.

Assigning a canonical id at ingest would need a lookup per row against rows the writer
role may not read (row-level security), on the hot path; a backfilled earlier row would
still change the answer. Computing it on read costs nothing on the write path.

Text is stored per row, not content-addressed (as ``llm`` does with its ``responses``).
Measured with :func:`promptlake.bench.dedup.storage_comparison` (20,000 generations, a
~200-character prompt and a ~800-character output each; per-row: the texts and the
three hashes in one table indexed like ``generations``; content-addressed: a texts table
keyed by ``(project_id, hash)`` plus the per-generation hashes, same indexes):

=====================================  ==========  ==================  ========
prompts / outputs repeating an earlier  per row     content-addressed   saving
=====================================  ==========  ==================  ========
30% / 5% (logged traffic)               28.7 MiB    31.6 MiB            -10%
60% / 30%                               28.7 MiB    24.4 MiB             15%
90% / 60% (re-run evaluations)          27.8 MiB    15.4 MiB             45%
=====================================  ==========  ==================  ========

Content addressing only pays when most text repeats, and then the repeating rows are
exactly what dedup marks for exports to drop. Against that saving it would put a second
insert with a conflict check on every logged generation, make erasure and anonymization
reference-counted (one person's text shared with another person's row can be neither
deleted nor rewritten in place), and give row-level security a second table to guard on
every read. Per-row storage stays; the hashes make "distinct content" a query instead.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from psycopg import sql

from .report import DedupReport, examples_from
from .shingles import FIELD_HASH_SQL, check_field
from .store import fetch_texts, find_index, finish_index, pending_count, stored_summary

if TYPE_CHECKING:
    from ..client import Project

_GROUPS = """
CREATE TEMP TABLE promptlake_dedup_exact ON COMMIT DROP AS
SELECT g.id, g.h,
       first_value(g.id) OVER (PARTITION BY g.h{origin} ORDER BY g.created_at, g.id) AS rep,
       count(*) OVER (PARTITION BY g.h{origin}) AS size
  FROM (SELECT g.id, g.created_at, g.origin, {hash} AS h FROM generations g
         WHERE g.project_id = %(p)s) g
"""
_MEMBERS = """
INSERT INTO dedup_members (project_id, generation_id, index_id, cluster_id, similarity,
                           source_hash)
SELECT %(p)s, e.id, %(i)s, CASE WHEN e.size > 1 THEN e.rep END,
       CASE WHEN e.size > 1 THEN 1.0::float8 END, e.h
  FROM promptlake_dedup_exact e
ON CONFLICT (project_id, generation_id, index_id) DO UPDATE
   SET cluster_id = excluded.cluster_id, similarity = excluded.similarity,
       source_hash = excluded.source_hash, checked_at = now()
 WHERE (dedup_members.cluster_id, dedup_members.similarity, dedup_members.source_hash)
       IS DISTINCT FROM (excluded.cluster_id, excluded.similarity, excluded.source_hash)
"""
_CLUSTERS = """
INSERT INTO dedup_clusters (project_id, index_id, id, size, min_similarity)
SELECT DISTINCT %(p)s, %(i)s, e.rep, e.size::int, 1.0::float8
  FROM promptlake_dedup_exact e WHERE e.size > 1
ON CONFLICT (project_id, index_id, id) DO UPDATE
   SET size = excluded.size, updated_at = now()
 WHERE dedup_clusters.size IS DISTINCT FROM excluded.size
"""
_STALE_CLUSTERS = """
DELETE FROM dedup_clusters c WHERE c.project_id = %(p)s AND c.index_id = %(i)s
   AND NOT EXISTS (SELECT FROM promptlake_dedup_exact e WHERE e.size > 1 AND e.rep = c.id)
"""
_GROUPED = """
SELECT g.id, first_value(g.id) OVER (PARTITION BY g.h{origin} ORDER BY g.created_at, g.id) AS rep,
       count(*) OVER (PARTITION BY g.h{origin}) AS size
  FROM (SELECT g.id, g.created_at, g.origin, {hash} AS h FROM generations g
         WHERE g.project_id = %(p)s) g
"""
_READ_ONLY = (
    "SELECT count(*), count(DISTINCT rep) FILTER (WHERE size > 1),"
    " count(*) FILTER (WHERE size > 1 AND id <> rep) FROM (" + _GROUPED + ") e"
)
_READ_ONLY_LARGEST = (
    "SELECT rep, size::int, 1.0::float8, (array_agg(id ORDER BY id) FILTER (WHERE id <> rep))[1]"
    " FROM (" + _GROUPED + ") e WHERE size > 1 GROUP BY rep, size"
    " ORDER BY size DESC, rep LIMIT %(n)s"
)


def run_exact(
    project: Project,
    *,
    field: str = "content",
    within_origin: bool = False,
    store: bool = True,
    rebuild: bool = False,
    examples: int = 5,
) -> DedupReport:
    """Group generations by the ingest hash of ``field``; store the groups as clusters."""
    started = time.perf_counter()
    check_field(field)
    parts = {
        "hash": sql.SQL(FIELD_HASH_SQL[field]),
        "origin": sql.SQL(", g.origin" if within_origin else ""),
    }
    args = {"p": project.id}
    report = DedupReport(
        project=project.name, method="exact", field=field, threshold=1.0,
        within_origin=within_origin, checked=0, newly_checked=0, clusters=0, duplicates=0,
        stored=store, seconds=0.0,
    )  # fmt: skip
    with project.lake._transaction(project) as conn:
        if not store:
            row = conn.execute(sql.SQL(_READ_ONLY).format(**parts), args).fetchone()
            report.checked, report.clusters, report.duplicates = (int(v) for v in row or (0, 0, 0))
            report.newly_checked = report.checked
            largest = [
                tuple(r)
                for r in conn.execute(
                    sql.SQL(_READ_ONLY_LARGEST).format(**parts), {**args, "n": examples}
                )
            ]
        else:
            index_id = find_index(conn, project, method="exact", field=field, threshold=1.0,
                                  within_origin=within_origin, params={}, create=True)  # fmt: skip
            args["i"] = index_id
            if rebuild:
                conn.execute("DELETE FROM dedup_members WHERE project_id = %(p)s"
                             " AND index_id = %(i)s", args)  # fmt: skip
                conn.execute("DELETE FROM dedup_clusters WHERE project_id = %(p)s"
                             " AND index_id = %(i)s", args)  # fmt: skip
            before = conn.execute(
                "SELECT count(*) FROM dedup_members WHERE project_id = %(p)s AND index_id = %(i)s",
                args,
            ).fetchone()
            conn.execute(sql.SQL(_GROUPS).format(**parts), args)
            conn.execute("ANALYZE promptlake_dedup_exact")
            removed = conn.execute(_STALE_CLUSTERS, args).rowcount
            written = conn.execute(_CLUSTERS, args).rowcount
            members = conn.execute(_MEMBERS, args).rowcount
            report.changes = {
                "members_written": members, "members_removed": 0,
                "clusters_written": written, "clusters_removed": removed,
            }  # fmt: skip
            checked, clusters, duplicates, largest = stored_summary(
                conn, project, index_id, examples
            )
            report.checked, report.clusters, report.duplicates = checked, clusters, duplicates
            report.newly_checked = checked - int(before[0] if before else 0)
            finish_index(conn, project, index_id, dict(report.changes))
            report.pending = pending_count(conn, project, index_id)
        wanted = [x for cid, _, _, member in largest for x in (cid, member) if x is not None]
        texts = fetch_texts(conn, project, field, wanted)
    report.examples = examples_from(largest, {k: v[0] for k, v in texts.items()})
    report.seconds = round(time.perf_counter() - started, 3)
    return report
