"""Backfill of the search structures, in batches, off the logging path.

- **Embeddings** (``generation_embeddings``): rows without a vector of the embedder are read
  in batches (ordered by id, one transaction each, so an interrupted run resumes where it
  stopped); each distinct text is embedded once: rows sharing a ``content_hash`` share the
  vector, and a hash embedded before (any earlier batch or run) is copied, not recomputed.
- **Full text** (``generation_search``): ``to_tsvector(language, prompt || output)`` for rows
  not indexed yet, or whose content hash or language changed, in batched INSERT … SELECTs.
- **HNSW** (cosine), one partial expression index per embedder, built after the backfill as
  the database owner: ``CREATE INDEX hnsw_… ON generation_embeddings USING hnsw
  ((vector::vector(D)) vector_cosine_ops) WITH (m = 16, ef_construction = 128) WHERE
  embedder = '…'``. Never on the logging path (COPY into a table with an HNSW index runs
  ≈ 100 rows/s, DESIGN.md). ``ef_construction`` 128 rather than pgvector's 64: at 100k rows
  and ``ef_search`` 100 it lifted recall@10 from 0.85–0.91 to 0.98–0.99 (clustered vectors
  and ``hashing-384`` vectors of generated text alike) for 1.5–2.5× the build time (≈ 30–65 s
  instead of ≈ 21–32 s, on 2 shared cores); ``m`` 24 with ``ef_construction`` 100 built
  slower still and recalled less (0.97); with the old graph ``ef_search`` 200 alone reached
  0.95–0.975. Queries use ``ef_search`` 200 (search/query.py). An index made before keeps
  its parameters (``CREATE INDEX IF NOT EXISTS``): :func:`drop_hnsw`, then ``promptlake
  embed``, rebuilds it.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from psycopg import sql

from ..dedup.shingles import FIELD_TEXT_SQL
from ..errors import Problem, ValidationError
from .embedders import Embedder, get_embedder

if TYPE_CHECKING:
    from ..client import Project

CONTENT_SQL = FIELD_TEXT_SQL["content"]
MAX_EMBED_CHARS = 20_000  # embedders see at most this much of a text
MAX_TSV_CHARS = 500_000  # a tsvector holds at most 1 MB
# Right after a bulk load the side tables' statistics say "empty" (the application role
# cannot ANALYZE), and the planner probes them with a nested loop that re-reads the whole
# project per row: measured 300 rows/s at 20k rows. Hash or merge anti-joins stay linear.
NO_NESTLOOP = "SELECT set_config('enable_nestloop', 'off', true)"
HNSW_M = 16  # pgvector's default graph degree
HNSW_EF_CONSTRUCTION = 128  # see the module docstring


@dataclass
class IndexReport:
    """What one ``embed`` run did."""

    project: str
    embedder: str | None
    dimension: int | None
    embedded: int = 0  # rows that got a vector
    computed: int = 0  # distinct texts actually embedded (the rest reused a hash's vector)
    text_indexed: int = 0
    hnsw_index: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        parts = [f"project {self.project}"]
        if self.embedder:
            parts.append(
                f"embedded {self.embedded} rows with {self.embedder}"
                f" ({self.computed} distinct texts computed)"
            )
        parts.append(f"full-text indexed {self.text_indexed} rows")
        if self.hnsw_index:
            parts.append(f"HNSW index {self.hnsw_index}")
        timing = ", ".join(f"{k} {v:.2f}s" for k, v in self.seconds.items())
        return "; ".join(parts) + (f" [{timing}]" if timing else "")


def hnsw_index_name(embedder: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", embedder.lower()).strip("_")[:30]
    digest = hashlib.sha1(embedder.encode()).hexdigest()[:8]
    return f"hnsw_ge_{slug}_{digest}"


def vector_expr(dimension: int) -> sql.Composable:
    """The indexed expression: ``vector`` cast to its fixed dimension."""
    return sql.SQL("(vector::vector({}))").format(sql.Literal(int(dimension)))


def _missing_sql() -> str:
    return (
        "FROM generations g WHERE g.project_id = %s AND NOT EXISTS ("
        " SELECT 1 FROM generation_embeddings x WHERE x.project_id = g.project_id"
        " AND x.generation_id = g.id AND x.embedder = %s)"
    )


def embed_missing(
    project: Project,
    embedder: Embedder,
    *,
    batch_size: int = 1000,
    progress: Callable[[int, int], None] | None = None,
    limit: int | None = None,
) -> tuple[int, int]:
    """Embed rows of ``project`` that lack a vector of ``embedder``; (rows, texts computed)."""
    from pgvector.psycopg import register_vector

    lake = project.lake
    with lake._transaction(project) as conn:
        conn.execute(NO_NESTLOOP)
        total = conn.execute(
            "SELECT count(*) " + _missing_sql(), (project.id, embedder.name)
        ).fetchone()[0]
    if limit is not None:
        total = min(total, limit)
    done = computed = 0
    after = uuid.UUID(int=0)  # keyset cursor: each batch reads only rows after the last one
    if progress:
        progress(0, total)
    while done < total:
        size = min(batch_size, total - done)
        with lake._transaction(project) as conn:
            register_vector(conn)
            conn.execute(NO_NESTLOOP)
            rows = conn.execute(
                f"SELECT g.id, g.content_hash, left({CONTENT_SQL}, {MAX_EMBED_CHARS}) "
                + _missing_sql()
                + " AND g.id > %s ORDER BY g.id LIMIT %s",
                (project.id, embedder.name, after, size),
            ).fetchall()
            if not rows:
                break
            after = rows[-1][0]
            hashes = list({bytes(r[1]) for r in rows})
            known: dict[bytes, np.ndarray] = {}
            for h, vec in conn.execute(
                "SELECT DISTINCT ON (g.content_hash) g.content_hash, e.vector"
                " FROM generations g JOIN generation_embeddings e"
                " ON e.project_id = g.project_id AND e.generation_id = g.id AND e.embedder = %s"
                " WHERE g.project_id = %s AND g.content_hash = ANY(%s)",
                (embedder.name, project.id, hashes),
            ):
                known[bytes(h)] = np.asarray(vec.to_numpy(), dtype=np.float32)
            todo: dict[bytes, str] = {}
            for _, h, text in rows:
                if bytes(h) not in known:
                    todo.setdefault(bytes(h), text or "")
            if todo:
                vectors = embedder.embed(list(todo.values()))
                for h, vec in zip(todo, vectors, strict=True):
                    array = np.asarray(vec, dtype=np.float32)
                    if array.shape != (embedder.dimension,) or not np.isfinite(array).all():
                        raise ValidationError(
                            [Problem("embedder", f"{embedder.name} returned a bad vector")]
                        )
                    known[h] = array
                computed += len(todo)
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO generation_embeddings (project_id, generation_id, embedder,"
                    " dimension, vector) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [
                        (project.id, gid, embedder.name, embedder.dimension, known[bytes(h)])
                        for gid, h, _ in rows
                    ],
                )
        done += len(rows)
        if progress:
            progress(done, total)
    return done, computed


def check_language(conn: Any, language: str) -> str:
    row = conn.execute("SELECT count(*) FROM pg_ts_config WHERE cfgname = %s", (language,))
    if row.fetchone()[0] == 0:
        names = [r[0] for r in conn.execute("SELECT cfgname FROM pg_ts_config ORDER BY 1")]
        raise ValidationError(
            [
                Problem(
                    "language",
                    f"{language!r} is not a text search configuration; one of {', '.join(names)}",
                )
            ]
        )
    return language


def index_text(
    project: Project,
    *,
    language: str = "english",
    batch_size: int = 2000,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Fill ``generation_search`` for rows not indexed (or stale); returns rows indexed."""
    lake = project.lake
    stale = (
        " FROM generations g LEFT JOIN generation_search s"
        " ON s.project_id = g.project_id AND s.generation_id = g.id"
        " WHERE g.project_id = %(p)s AND (s.generation_id IS NULL"
        " OR s.source_hash <> g.content_hash OR s.language <> %(lang)s::text)"
    )
    with lake._transaction(project) as conn:
        check_language(conn, language)
        conn.execute(NO_NESTLOOP)
        total = conn.execute("SELECT count(*)" + stale, {"p": project.id, "lang": language})
        total = total.fetchone()[0]
    done = 0
    after = uuid.UUID(int=0)  # keyset cursor: each batch reads only rows after the last one
    if progress:
        progress(0, total)
    while done < total:
        with lake._transaction(project) as conn:
            conn.execute(NO_NESTLOOP)
            ids = conn.execute(
                "INSERT INTO generation_search (project_id, generation_id, language, tsv,"
                " source_hash) SELECT g.project_id, g.id, %(lang)s::text,"
                f" to_tsvector(%(lang)s::regconfig, left({CONTENT_SQL}, {MAX_TSV_CHARS})),"
                " g.content_hash"
                + stale.replace("g.id WHERE", "g.id AND s.generation_id > %(after)s WHERE")
                + " AND g.id > %(after)s ORDER BY g.id LIMIT %(n)s"
                " ON CONFLICT (project_id, generation_id) DO UPDATE SET language ="
                " excluded.language, tsv = excluded.tsv, source_hash = excluded.source_hash,"
                " indexed_at = now() RETURNING generation_id",
                {"p": project.id, "lang": language, "n": batch_size, "after": after},
            ).fetchall()
            if not ids:
                break
            done += len(ids)
            after = max(r[0] for r in ids)
        if progress:
            progress(done, total)
    return done


def build_hnsw(project: Project, embedder: str, dimension: int) -> str:
    """Create (if missing) the HNSW cosine index of ``embedder``, as the database owner.

    An index built with other parameters (before ``ef_construction`` was raised to 128,
    recall@10 was 0.93) is rebuilt once with the current ones."""
    from ..db.engine import make_engine

    name = hnsw_index_name(embedder)
    statement = sql.SQL(
        "CREATE INDEX IF NOT EXISTS {} ON generation_embeddings USING hnsw ({} vector_cosine_ops)"
        " WITH (m = {}, ef_construction = {}) WHERE embedder = {}"
    ).format(
        sql.Identifier(name),
        vector_expr(dimension),
        sql.Literal(HNSW_M),
        sql.Literal(HNSW_EF_CONSTRUCTION),
        sql.Literal(embedder),
    )
    owner = make_engine(project.lake.url)
    try:
        raw = owner.raw_connection()
        try:
            conn = raw.driver_connection
            with conn.transaction():
                conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
                options = conn.execute(
                    "SELECT c.reloptions FROM pg_class c JOIN pg_namespace n"
                    " ON n.oid = c.relnamespace WHERE c.relname = %s"
                    " AND n.nspname = current_schema()",
                    (name,),
                ).fetchone()
                wanted = {f"m={HNSW_M}", f"ef_construction={HNSW_EF_CONSTRUCTION}"}
                if options is not None and not wanted <= set(options[0] or ()):
                    conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
                conn.execute(statement)
            # fresh statistics, or the planner may sort every row instead of using the index;
            # the (project, embedder) statistics object is migration 0006's, made here too
            # for a database migrated by an early 0006 that lacked it
            conn.execute(
                "CREATE STATISTICS IF NOT EXISTS st_generation_embeddings_project_id_embedder"
                " (mcv) ON project_id, embedder FROM generation_embeddings"
            )
            conn.execute("ANALYZE generations, generation_embeddings, generation_search")
            conn.commit()
        finally:
            raw.close()
    finally:
        owner.dispose()
    return name


def drop_hnsw(lake: Any, embedder: str) -> None:
    """Drop the HNSW index of ``embedder`` (as the database owner), e.g. before a bulk load."""
    from ..db.engine import make_engine

    owner = make_engine(lake.url)
    try:
        with owner.begin() as conn:
            conn.exec_driver_sql(f'DROP INDEX IF EXISTS "{hnsw_index_name(embedder)}"')
    finally:
        owner.dispose()


def backfill(
    project: Project,
    embedder: str | Embedder | None = None,
    *,
    language: str | None = "english",
    batch_size: int = 1000,
    build_index: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> IndexReport:
    """Embed missing rows, index full text, then build the embedder's HNSW index."""
    from .pending import forget

    emb = get_embedder(embedder)
    report = IndexReport(project.name, emb.name, emb.dimension)
    forget(project)  # search counts the rows still unindexed afresh
    started = time.perf_counter()
    report.embedded, report.computed = embed_missing(
        project, emb, batch_size=batch_size, progress=progress
    )
    report.seconds["embed"] = round(time.perf_counter() - started, 3)
    if language:
        started = time.perf_counter()
        report.text_indexed = index_text(
            project, language=language, batch_size=max(batch_size, 500), progress=progress
        )
        report.seconds["full_text"] = round(time.perf_counter() - started, 3)
    if build_index:
        started = time.perf_counter()
        report.hnsw_index = build_hnsw(project, emb.name, emb.dimension)
        report.seconds["hnsw"] = round(time.perf_counter() - started, 3)
    forget(project)
    return report
