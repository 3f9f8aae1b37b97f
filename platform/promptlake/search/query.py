"""Search over logged generations: full text, vector, and hybrid (reciprocal rank fusion).

One SQL statement per query, under the caller's row-level security (the lake's
``_transaction(project)``), every value bound as a parameter; the embedder's name and
dimension go in as quoted literals (``psycopg.sql.Literal``) so the planner can match the
per-embedder partial HNSW index.

- text: ``websearch_to_tsquery(language, q)`` against ``generation_search.tsv`` (GIN),
  ranked by ``ts_rank_cd``. Under forced row-level security the GIN index is usable only
  because migration 0006 marks ``ts_match_vq`` (``@@``) LEAKPROOF; without it (a
  non-superuser migrated) every text search scans the project's rows (≈ 60 ms at 100k).
  That choice keeps the access rule in the policies: the alternatives were a SECURITY
  DEFINER search function (the rule would move into its code) or a lexeme side table with
  btree lookups (4M rows at 100k generations, and phrase and prefix queries re-implemented);
- vector: cosine distance ``<=>`` on ``vector::vector(D)`` (HNSW), with
  ``hnsw.iterative_scan = relaxed_order`` so filtered searches still return k rows, and
  ``hnsw.ef_search`` = max(200, 2 × candidates) (:func:`ef_search`), both set per
  transaction (``set_config(..., true)``) in the same round trip as the query (pipeline);
  ``promptlake bench search`` measures exactly these settings;
- hybrid: each list keeps its best ``candidates`` rows, and the fused score is
  ``sum(1 / (rrf_k + position))`` over the lists a row appears in (RRF, rrf_k = 60).

Filters (model, origin, time range, tags, session, end user, a score range, a mentioned
entity) apply inside
both lists, before ranking, so no result is ever outside them.

The vector list can also start from a given vector (``vector=``: embeddings made by a
model promptlake cannot run) or from a stored generation's own embedding
(:func:`similar`: "find generations like this failing one").
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from psycopg import sql

from ..dedup.shingles import FIELD_TEXT_SQL
from ..errors import NotFoundError, Problem, ValidationError
from .embedders import Embedder, get_embedder
from .index import check_language
from .pending import SearchResults, pending_rows

if TYPE_CHECKING:
    from ..client import Project

MODES = ("hybrid", "text", "vector")
RRF_K = 60
EF_SEARCH_MIN = 200  # recall@10 0.98 at 100k rows with ef_construction 128 (bench search)
# per transaction (set_config(..., true)): nothing leaks to the pooled connection's next use
HNSW_SETTINGS = (
    "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true),"
    " set_config('hnsw.ef_search', %s, true)"
)


def ef_search(candidates: int) -> int:
    """``hnsw.ef_search`` for a vector list of ``candidates`` rows: twice the list, at least
    :data:`EF_SEARCH_MIN`, at most pgvector's 1000."""
    return min(1000, max(EF_SEARCH_MIN, 2 * candidates))


CONTENT_SQL = FIELD_TEXT_SQL["content"]


@dataclass(frozen=True)
class SearchHit:
    """One result: which generation, why it matched, and how well."""

    generation_id: uuid.UUID
    snippet: str
    text_rank: float | None  # ts_rank_cd; None: not in the text list
    vector_distance: float | None  # cosine distance; None: not in the vector list
    score: float  # reciprocal rank fusion over the lists the row is in
    model: str | None
    created_at: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _filters(
    params: dict[str, Any],
    *,
    model: str | Sequence[str] | None,
    origin: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    tags: Iterable[str] | None,
    session: Any,
    end_user: str | None,
    score: tuple[str, float | None, float | None] | None,
    entity: str | Sequence[str] | None = None,
) -> sql.Composable | None:
    """The filters on ``generations g``; None when there are none (no join needed)."""
    conds = [sql.SQL("g.project_id = %(p)s")]
    if model is not None:
        params["models"] = [model] if isinstance(model, str) else list(model)
        conds.append(sql.SQL(
            "g.model_id IN (SELECT m.id FROM models m WHERE m.project_id = %(p)s"
            " AND m.name = ANY(%(models)s))"
        ))  # fmt: skip
    if origin is not None:
        params["origin"] = origin
        conds.append(sql.SQL("g.origin = %(origin)s"))
    if since is not None:
        params["since"] = since
        conds.append(sql.SQL("g.created_at >= %(since)s"))
    if until is not None:
        params["until"] = until
        conds.append(sql.SQL("g.created_at < %(until)s"))
    if tags:
        params["tags"] = list(tags)
        conds.append(sql.SQL("g.tags @> %(tags)s::text[]"))
    if session is not None:
        params["session"] = uuid.UUID(str(getattr(session, "id", session)))
        conds.append(sql.SQL("g.session_id = %(session)s"))
    if end_user is not None:
        params["end_user"] = end_user
        conds.append(sql.SQL(
            "g.session_id IN (SELECT s.id FROM sessions s WHERE s.project_id = %(p)s"
            " AND s.end_user_id = %(end_user)s)"
        ))  # fmt: skip
    if score is not None:
        name, low, high = score
        params["score_name"], params["score_low"], params["score_high"] = name, low, high
        conds.append(sql.SQL(
            "EXISTS (SELECT 1 FROM scores sc WHERE sc.project_id = g.project_id"
            " AND sc.generation_id = g.id AND sc.name = %(score_name)s"
            " AND (%(score_low)s::float8 IS NULL OR sc.value_numeric >= %(score_low)s)"
            " AND (%(score_high)s::float8 IS NULL OR sc.value_numeric <= %(score_high)s))"
        ))  # fmt: skip
    if entity is not None:  # generations mentioning the entity (any of them)
        from ..graph.filters import CONDITION, entity_params

        names = [entity] if isinstance(entity, str) else list(entity)
        params["entity_keys"], params["entity_names"] = entity_params(names)
        conds.append(sql.SQL(CONDITION.format(
            p="%(p)s", keys="%(entity_keys)s::text[]", names="%(entity_names)s::text[]"
        )))  # fmt: skip
    return sql.SQL(" AND ").join(conds) if len(conds) > 1 else None


def _register_vector(project: Project, conn: Any) -> None:
    """Binary vector parameters, with the type looked up once per lake (not per query)."""
    from pgvector.psycopg.vector import register_vector_info
    from psycopg.types import TypeInfo

    info = project.lake.__dict__.get("_vector_type")
    if info is None:
        info = project.lake.__dict__["_vector_type"] = TypeInfo.fetch(conn, "vector")
    register_vector_info(conn, info)


def _query_vector(
    conn: Any, project: Project, vector: Any, embedder: str | Embedder | None
) -> tuple[str, np.ndarray]:
    """``(embedder name, vector)`` for ``search(vector=...)``, checked against the
    dimension of the vectors stored for that embedder."""
    from .live import embedding_value

    name, array = embedding_value(vector, embedder or _default_embedder(conn, project))
    row = conn.execute(
        "SELECT dimension FROM generation_embeddings WHERE project_id = %s AND embedder = %s"
        " LIMIT 1",
        (project.id, name),
    ).fetchone()
    if row is not None and row[0] != array.size:
        raise ValidationError(
            [Problem("vector", f"has {array.size} numbers; {name} vectors have {row[0]}")]
        )
    return name, array


def _default_embedder(conn: Any, project: Project) -> str:
    """The project's only stored embedder, else ``hashing-384`` (looked up once per handle:
    DISTINCT over the embeddings index costs milliseconds at 100k rows)."""
    cached = project.__dict__.get("_search_embedder")
    if cached is None:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT embedder FROM generation_embeddings WHERE project_id = %s",
                (project.id,),
            )
        ]
        cached = names[0] if len(names) == 1 else "hashing-384"
        if names:
            project.__dict__["_search_embedder"] = cached
    return cached


def search(
    project: Project,
    query: str,
    k: int = 10,
    *,
    mode: str = "hybrid",
    embedder: str | Embedder | None = None,
    language: str = "english",
    candidates: int | None = None,
    model: str | Sequence[str] | None = None,
    origin: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    tags: Iterable[str] | None = None,
    session: Any = None,
    end_user: str | None = None,
    score: tuple[str, float | None, float | None] | None = None,
    vector: Any = None,
    entity: str | Sequence[str] | None = None,
) -> list[SearchHit]:
    """The ``k`` best generations of ``project`` for ``query``; see the module docstring.

    ``vector`` (vector and hybrid modes) is the query's embedding, made by ``embedder``
    (a name or an object; default: the project's stored embedder), used instead of
    embedding ``query``; the text list still uses ``query``."""
    if mode not in MODES:
        raise ValidationError([Problem("mode", f"must be one of {', '.join(MODES)}")])
    if vector is not None and mode == "text":
        raise ValidationError([Problem("vector", "needs mode 'vector' or 'hybrid'")])
    if not isinstance(query, str) or "\x00" in query:
        raise ValidationError([Problem("query", "must be text without NUL bytes")])
    if not 1 <= k <= 1000:
        raise ValidationError([Problem("k", "must be between 1 and 1000")])
    n = candidates or max(50, 4 * k)
    name: str | None = None
    params: dict[str, Any] = {"p": project.id, "q": query, "lang": language, "n": n, "k": k,
                              "rrf": RRF_K}  # fmt: skip

    def _join(alias: str) -> sql.Composable:
        if where is None:  # no filters: no join, so the planner goes straight to the index
            return sql.SQL("")
        return sql.SQL(
            "JOIN generations g ON g.project_id = {a}.project_id AND g.id = {a}.generation_id"
        ).format(a=sql.Identifier(alias))

    def _and(condition: sql.Composable | None) -> sql.Composable:
        return sql.SQL("") if condition is None else sql.SQL("AND ") + condition

    where = _filters(params, model=model, origin=origin, since=since, until=until, tags=tags,
                     session=session, end_user=end_user, score=score, entity=entity)  # fmt: skip
    empty_text = sql.SQL(
        "SELECT NULL::uuid AS id, NULL::float8 AS text_rank, NULL::bigint AS text_pos WHERE false"
    )
    empty_vector = sql.SQL(
        "SELECT NULL::uuid AS id, NULL::float8 AS distance, NULL::bigint AS vector_pos WHERE false"
    )
    known: set[str] = project.lake.__dict__.setdefault("_ts_configs", set())
    settings: tuple[str, ...] | None = None
    with project.lake._transaction(project) as conn:
        if language not in known:
            known.add(check_language(conn, language))
        text_part: sql.Composable = empty_text
        vector_part: sql.Composable = empty_vector
        if mode in ("text", "hybrid"):
            text_part = sql.SQL(
                "SELECT id, text_rank, row_number() OVER (ORDER BY text_rank DESC, id) AS text_pos"
                " FROM (SELECT s.generation_id AS id, ts_rank_cd(s.tsv, q.q)::float8 AS text_rank"
                " FROM q, generation_search s {join}"
                " WHERE s.project_id = %(p)s AND s.tsv @@ q.q {where}"
                " ORDER BY text_rank DESC, s.generation_id LIMIT %(n)s) t"
            ).format(join=_join("s"), where=_and(where))
        if mode in ("vector", "hybrid"):
            if vector is None:
                emb = get_embedder(embedder or _default_embedder(conn, project))
                name, dimension = emb.name, emb.dimension
                params["vec"] = np.asarray(emb.embed([query])[0], dtype=np.float32)
            else:
                name, params["vec"] = _query_vector(conn, project, vector, embedder)
                dimension = params["vec"].size
            _register_vector(project, conn)
            expr = sql.SQL("(e.vector::vector({}))").format(sql.Literal(dimension))
            settings = (str(ef_search(n)),)
            vector_part = sql.SQL(
                "SELECT id, distance, row_number() OVER (ORDER BY distance, id) AS vector_pos"
                " FROM (SELECT e.generation_id AS id, ({expr} <=> %(vec)s::vector({dim}))::float8"
                " AS distance FROM generation_embeddings e {join}"
                " WHERE e.project_id = %(p)s AND e.embedder = {name} {where}"
                " ORDER BY {expr} <=> %(vec)s::vector({dim}) LIMIT %(n)s) v"
            ).format(expr=expr, dim=sql.Literal(dimension), name=sql.Literal(name),
                     join=_join("e"), where=_and(where))  # fmt: skip
        statement = sql.SQL(
            "WITH q AS (SELECT websearch_to_tsquery(%(lang)s::regconfig, %(q)s) AS q),"
            " t AS ({text_part}), v AS ({vector_part}),"
            " f AS (SELECT coalesce(t.id, v.id) AS id, t.text_rank, v.distance,"
            " coalesce(1.0 / (%(rrf)s + t.text_pos), 0)::float8"
            " + coalesce(1.0 / (%(rrf)s + v.vector_pos), 0)::float8 AS score"
            " FROM t FULL OUTER JOIN v ON t.id = v.id"
            " ORDER BY score DESC, coalesce(t.text_pos, v.vector_pos), 1 LIMIT %(k)s)"
            " SELECT f.id, CASE WHEN numnode(q.q) > 0 THEN ts_headline(%(lang)s::regconfig,"
            " left({content}, 5000), q.q, 'MaxFragments=1, MaxWords=30, MinWords=8')"
            " ELSE left({content}, 200) END, f.text_rank, f.distance, f.score, m.name,"
            " g.created_at FROM f CROSS JOIN q"
            " JOIN generations g ON g.project_id = %(p)s AND g.id = f.id"
            " LEFT JOIN models m ON m.project_id = g.project_id AND m.id = g.model_id"
            " ORDER BY f.score DESC, f.id"
        ).format(text_part=text_part, vector_part=vector_part, content=sql.SQL(CONTENT_SQL))
        with conn.pipeline():  # the settings and the query in one round trip
            if settings is not None:
                conn.execute(HNSW_SETTINGS, settings)
            cursor = conn.execute(statement, params)
        rows = cursor.fetchall()
        results = SearchResults(
            SearchHit(r[0], r[1] or "", r[2], r[3], float(r[4]), r[5], r[6]) for r in rows
        )
        results.project_name = project.name
        results.pending = pending_rows(
            conn, project, mode in ("text", "hybrid"), name if mode != "text" else None
        )
    return results


def similar(
    project: Project,
    generation: Any,
    k: int = 10,
    *,
    embedder: str | Embedder | None = None,
    **filters: Any,
) -> list[SearchHit]:
    """The ``k`` generations nearest to ``generation`` (an id or a ``Generation``) by its
    stored embedding (from ``embedder``; default: its only one, else the project's
    default), itself left out; ``filters`` as in :func:`search`. Nothing is re-embedded,
    so this works for vectors given at log time by any model."""
    from ..access import as_uuid

    try:
        gid = as_uuid(generation)
    except (TypeError, ValueError, AttributeError):
        raise ValidationError([Problem("generation", "must be a generation or its id")]) from None
    wanted = getattr(embedder, "name", embedder)
    with project.lake._transaction(project) as conn:
        _register_vector(project, conn)
        stored = {
            row[0]: row[1].to_numpy()  # pgvector's Vector
            for row in conn.execute(
                "SELECT embedder, vector FROM generation_embeddings"
                " WHERE project_id = %s AND generation_id = %s",
                (project.id, gid),
            )
        }
        if wanted is None and len(stored) > 1:
            wanted = _default_embedder(conn, project)
    name = wanted if wanted is not None else next(iter(stored), None)
    if name not in stored:
        which = f" from {name}" if name else ""
        raise NotFoundError(
            f"generation {gid} has no embedding{which} in project {project.name}"
            f" (it has: {', '.join(sorted(stored)) or 'none'}); `promptlake embed` or"
            " log(..., embedding=...) stores one"
        )
    if not 1 <= k <= 1000:
        raise ValidationError([Problem("k", "must be between 1 and 1000")])
    hits = search(project, "", min(k + 1, 1000), mode="vector", embedder=name,
                  vector=stored[name], **filters)  # fmt: skip
    return [h for h in hits if h.generation_id != gid][:k]
