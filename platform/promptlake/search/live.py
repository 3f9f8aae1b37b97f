"""Search indexing beside the bulk writer (``project.writer(index=True)``), and embeddings
given at log time (``log(..., embedding=vector, embedder=name)``).

Why background threads. Full text is CPU work on the server: per 500-character row
≈ 30–55 µs of ``to_tsvector`` (the parser; stemming is ≈ 7% of it) and ≈ 17 µs of GIN
upkeep (pending-list merges; a larger ``gin_pending_list_limit`` or ``temp_buffers`` saved
nothing measurable, ``fastupdate = off`` was 10× slower): more than logging the rows costs
(≈ 5 s of Python and ≈ 3 s of server per 100k). Done inside each flush it would cut ingest
below half. But a writer leaves a core idle: while Python validates the next batch the
server waits, and while the server inserts a batch Python waits. So once a batch has
committed it goes to a pool of two worker threads, each indexing a batch in its own
transaction (its own server process) while the writer goes on; at most two batches are in
flight (a writer faster than its indexers waits, so memory stays bounded), and ``close()``
returns only when every committed row is indexed, or raises the indexer's error. A crash in
between leaves rows unindexed, never wrong: ``promptlake embed``
(:func:`promptlake.search.index.index_text`) fills them.

What reaches a worker is the flush's own binary COPY data (kept by reference, never
encoded twice), which the worker loads into its session's stage and indexes from there:
the client's one core is what a writer runs short of, and sending the texts again as array
parameters cost ≈ 15 µs of Python per row. Measured with ``promptlake bench search``
(100k rows, 2 shared cores): one worker fed with array parameters 0.32–0.41× the plain
writer's rows/s; two workers fed with the COPY data 0.54–0.60×.

Embeddings passed at log time (COPY into a temporary table, then one INSERT … SELECT under
row-level security: ≈ 25 µs of server time per 384-d vector) are stored in the logging
transaction itself, so they commit or roll back with their generation; with ``index=True``
they go to the indexer's transaction with the batch's full text instead (they are half of
the indexing work left on the logging path). If indexing fails, the writer raises
:class:`~promptlake.errors.SearchIndexError` once (from the ``log``, ``flush`` or
``close`` that finds out) and indexes no further batch; the rows stay stored.
``promptlake embed`` fills in their full text (and embeddings, with an embedder it can
run); vectors made elsewhere are logged again: the same ids store only what is missing.
Writers may insert embeddings (migration 0003); full text needs the admin role
(migration 0004), so ``index=True`` checks it when the writer opens. An HNSW index on the
embedder makes every insert a graph search (≈ 100 rows/s): bulk loads go before
``promptlake embed`` builds it, or after :func:`promptlake.search.index.drop_hnsw`.
"""

from __future__ import annotations

import collections
import logging
import threading
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from ..db.engine import translate
from ..errors import Problem, SearchIndexError, ValidationError
from .index import CONTENT_SQL, MAX_EMBED_CHARS, MAX_TSV_CHARS, check_language, hnsw_index_name

if TYPE_CHECKING:
    import psycopg

    from ..client import Project

log = logging.getLogger(__name__)

_CREATE_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS promptlake_embedding_stage"
    " (generation_id uuid, vector vector) ON COMMIT DELETE ROWS"
)
_COPY_STAGE = "COPY promptlake_embedding_stage (generation_id, vector) FROM STDIN (FORMAT BINARY)"
_INSERT = (
    "INSERT INTO generation_embeddings (project_id, generation_id, embedder, dimension, vector)"
    " SELECT %s, generation_id, %s, %s, vector FROM promptlake_embedding_stage"
    " ON CONFLICT DO NOTHING"
)
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no extension
_COPY_TRAILER = b"\xff\xff"


def _copy_payload(ids: Sequence[uuid.UUID], vectors: np.ndarray) -> bytes:
    """The binary COPY stream of ``(uuid, vector)`` rows, built by numpy in one go.

    Every row has the same layout (field count; 16-byte uuid; pgvector's binary form:
    int16 dimension, int16 unused, big-endian float4s), so a structured array is the whole
    stream: ≈ 10x cheaper than ``write_row`` per vector, which cost ≈ 15 µs of Python each
    on the logging path."""
    dim = vectors.shape[1]
    layout = np.dtype([("fields", ">i2"), ("id_len", ">i4"), ("id", "u1", (16,)),
                       ("vec_len", ">i4"), ("dim", ">i2"), ("unused", ">i2"),
                       ("vec", ">f4", (dim,))])  # fmt: skip
    rows = np.zeros(len(ids), dtype=layout)
    rows["fields"], rows["id_len"], rows["vec_len"], rows["dim"] = 2, 16, 4 + 4 * dim, dim
    rows["id"] = np.frombuffer(b"".join(i.bytes for i in ids), dtype=np.uint8).reshape(-1, 16)
    rows["vec"] = vectors
    return _COPY_HEADER + rows.tobytes() + _COPY_TRAILER


# The indexer loads the flush's own COPY data into its session's stage (the rows exactly as
# stored, after anonymization) and indexes from there. It never reads ``generations``:
# during a bulk load the planner's statistics describe a table a fraction of its size, and
# reading the batch back by id chose an index on project_id alone (2, 4, 9, 13, 19 s per
# 5k-row batch, growing with the rows logged). Nor does the client encode the texts a
# second time: as array parameters that cost ≈ 15 µs of Python per row, on the one core
# the writer runs short of. The text is assembled by the same SQL expression as the
# backfill's, so the tsvector is identical.
_INDEX_TEXT = (
    "INSERT INTO generation_search (project_id, generation_id, language, tsv, source_hash)"
    " SELECT %(p)s, g.id, %(lang)s::text,"
    f" to_tsvector(%(lang)s::regconfig, left({CONTENT_SQL}, {MAX_TSV_CHARS})), g.content_hash"
    " FROM promptlake_stage g WHERE g.project_id = %(p)s AND g.id <> ALL(%(refused)s::uuid[])"
    # a row indexed before keeps its entry (a stale one is refreshed by the backfill)
    " ON CONFLICT (project_id, generation_id) DO NOTHING"
)


# the texts to embed, read back from the stage: the same expression as the backfill's, so the
# vectors are the ones `promptlake embed` would store
_TEXTS_TO_EMBED = (
    f"SELECT g.id, g.content_hash, left({CONTENT_SQL}, {MAX_EMBED_CHARS})"
    " FROM promptlake_stage g WHERE g.project_id = %(p)s AND g.id <> ALL(%(skip)s::uuid[])"
)


def embed_staged(
    conn: psycopg.Connection, project: Project, embedder: Any, skip: Sequence[uuid.UUID]
) -> list[tuple[uuid.UUID, str, np.ndarray]]:
    """``(id, embedder, vector)`` of the staged rows not in ``skip``, each distinct text
    (content hash) embedded once."""
    rows = conn.execute(_TEXTS_TO_EMBED, {"p": project.id, "skip": list(skip)}).fetchall()
    texts: dict[bytes, str] = {}
    for _, digest, text in rows:
        texts.setdefault(bytes(digest), text or "")
    vectors = dict(zip(texts, embedder.embed(list(texts.values())), strict=True))
    return [(gid, embedder.name, np.asarray(vectors[bytes(digest)], dtype=np.float32))
            for gid, digest, _ in rows]  # fmt: skip


def hnsw_exists(project: Project, embedder: str) -> bool:
    """Whether ``embedder`` has its HNSW index (then every stored vector is a graph insert,
    ≈ 100 rows/s: the default indexing leaves such vectors to ``promptlake embed``)."""
    with project.lake._transaction(project) as conn:
        row = conn.execute(
            "SELECT 1 FROM pg_class WHERE relname = %s AND relkind = 'i'",
            (hnsw_index_name(embedder),),
        ).fetchone()
    return row is not None


def embedding_value(value: Any, embedder: Any) -> tuple[str, np.ndarray]:
    """``(embedder name, float32 vector)`` for an ``embedding=`` argument, or a ValidationError.

    ``embedder`` is a name or an object with ``name`` (and ``dimension``, checked)."""
    name = embedder if isinstance(embedder, str) else getattr(embedder, "name", None)
    if not name or not isinstance(name, str):
        raise ValidationError(
            [Problem("embedder", "an embedding needs the name of its embedder (embedder=...)")]
        )
    if type(value) is np.ndarray and value.dtype == np.float32:
        array = value  # the common case, taken as is (this runs once per logged row)
    else:
        try:
            array = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError):
            array = np.zeros(0, dtype=np.float32)
    expected = getattr(embedder, "dimension", None)
    if array.ndim != 1 or not 1 <= array.size <= 16_000:
        raise ValidationError(
            [Problem("embedding", "must be a 1-d sequence of 1 to 16,000 finite numbers")]
        )
    if expected is not None and array.size != expected:
        raise ValidationError(
            [Problem("embedding", f"has {array.size} numbers; {name} makes {expected}")]
        )
    # one dot product answers "finite and not all zeros"; in float64, where squares of
    # float32 values cannot overflow (and numpy has nothing to warn about: ``np.errstate``
    # around a float32 product cost more than the product, once per logged row)
    wide = array.astype(np.float64)
    norm = float(np.dot(wide, wide))
    if not 0.0 < norm < float("inf"):
        if not np.isfinite(array).all():
            raise ValidationError(
                [Problem("embedding", "must be a 1-d sequence of 1 to 16,000 finite numbers")]
            )
        if not array.any():
            raise ValidationError(
                [Problem("embedding", "must not be all zeros (cosine needs a norm)")]
            )
    return name, array


def log_extras(
    project: Project,
    generation_id: uuid.UUID,
    embedding: Any = None,
    embedder: Any = None,
    retrieved: Any = None,
) -> tuple[tuple[uuid.UUID, str, np.ndarray] | None, list[tuple]] | None:
    """The search rows a logged generation brings: its embedding and its retrievals
    (``generation_retrievals`` rows), validated; None when it brings neither."""
    from .corpus import retrieval_rows

    vector = None
    if embedding is not None:
        name, array = embedding_value(embedding, embedder)
        vector = (generation_id, name, array)
    grounding: list[tuple] = []
    if retrieved:
        try:
            grounding = retrieval_rows(project.id, generation_id, retrieved)
        except (TypeError, ValueError, KeyError, AttributeError):
            raise ValidationError(
                [Problem("retrieved", "must be chunks, chunk ids or (chunk id, score) pairs")]
            ) from None
    return (vector, grounding) if vector is not None or grounding else None


def write_log_extras(
    conn: psycopg.Connection,
    project: Project,
    extras: Sequence[tuple[tuple[uuid.UUID, str, np.ndarray] | None, list[tuple]]],
) -> int:
    """Store what :func:`log_extras` returned, in the logging transaction; returns how many
    embeddings were new."""
    from .corpus import insert_retrievals

    insert_retrievals(conn, [row for _, grounding in extras for row in grounding])
    return store_embeddings(conn, project, [vec for vec, _ in extras if vec is not None])


def store_embeddings(
    conn: psycopg.Connection,
    project: Project,
    rows: Sequence[tuple[uuid.UUID, str, np.ndarray]],
) -> int:
    """Insert ``(generation id, embedder, vector)`` rows in ``conn``'s transaction; an
    embedding already stored for the same generation and embedder is kept."""
    groups: dict[tuple[str, int], list[tuple[uuid.UUID, np.ndarray]]] = {}
    for gid, name, vector in rows:
        groups.setdefault((name, vector.size), []).append((gid, vector))
    stored = 0
    with conn.cursor() as cur:
        cur.execute(_CREATE_STAGE)
        for (name, dim), items in groups.items():
            cur.execute("TRUNCATE promptlake_embedding_stage")
            payload = _copy_payload([g for g, _ in items], np.stack([v for _, v in items]))
            with cur.copy(_COPY_STAGE) as copy:
                copy.write(payload)
            cur.execute(_INSERT, (project.id, name, dim))
            stored += cur.rowcount
    return stored


def index_text_of(
    conn: psycopg.Connection,
    project: Project,
    staged: Sequence[bytes],
    refused: Sequence[uuid.UUID],
    language: str,
) -> int:
    """Full-text vectors of the committed rows a flush sent to its stage (``staged``: its
    COPY data, see :func:`promptlake.ingest.writer.load_stage`), except the ``refused``
    ones; rows indexed before are left as they are. Returns how many were indexed."""
    from ..ingest.writer import load_stage

    if not staged:
        return 0
    load_stage(conn, staged)
    params = {"p": project.id, "lang": language, "refused": list(refused)}
    return conn.execute(_INDEX_TEXT, params).rowcount


@contextmanager
def _own_transaction(project: Project) -> Iterator[psycopg.Connection]:
    """A transaction with the row-level security context, for the indexer thread.

    Not ``Lake._transaction``: that one also tracks model ids learnt by the caller's
    transaction in shared state, which a second thread must not touch."""
    lake = project.lake
    with translate("indexing for search"):
        raw = lake.engine.raw_connection()
        try:
            conn: psycopg.Connection = raw.driver_connection  # type: ignore[assignment]
            with conn.transaction():
                conn.execute(
                    "SELECT set_config('promptlake.principal', %s, true),"
                    " set_config('promptlake.project_id', %s, true)",
                    (lake.principal, str(project.id)),
                )
                yield conn
        finally:
            raw.close()


class BackgroundIndexer:
    """Search indexing of committed batches in worker threads (see the module docstring)."""

    def __init__(
        self, project: Project, language: str = "english", workers: int = 2, embedder: Any = None
    ) -> None:
        from ..access import require_member

        require_member(project, ("admin",))
        with project.lake._transaction(project) as conn:
            check_language(conn, language)
        self.project = project
        self.language = language
        # computes the vectors of rows logged without one (the default embedder, for
        # search right after logging); None: only vectors given to log() are stored
        self.embedder = embedder
        self.quiet = False  # the default indexing: a failure is logged, never raised
        self.indexed = 0  # rows full-text indexed
        self.embedded = 0  # embeddings stored
        self._workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="promptlake-index")
        self._pending: collections.deque[Future[tuple[int, int]]] = collections.deque()
        self._lock = threading.Lock()
        self.failed = False  # after the first failure (raised once), batches are skipped

    def _run(
        self,
        staged: list[bytes],
        refused: list[uuid.UUID],
        vectors: list[tuple[uuid.UUID, str, np.ndarray]],
    ) -> tuple[int, int]:
        with _own_transaction(self.project) as conn:
            indexed = index_text_of(conn, self.project, staged, refused, self.language)
            if self.embedder is not None and staged:
                given = [gid for gid, name, _ in vectors if name == self.embedder.name]
                vectors = [*vectors, *embed_staged(conn, self.project, self.embedder,
                                                   [*refused, *given])]  # fmt: skip
            return indexed, store_embeddings(conn, self.project, vectors)

    def _wait(self, keep: int = 0) -> None:
        """Collect finished batches until at most ``keep`` are in flight."""
        while len(self._pending) > keep:
            try:
                indexed, embedded = self._pending.popleft().result()
            except Exception as exc:
                if self.failed:
                    continue  # reported once; the backfill fills this batch too
                self.failed = True
                if self.quiet:
                    log.warning(
                        "promptlake: indexing for search stopped (%s); the rows are stored:"
                        " `promptlake embed --project %s` indexes them",
                        exc,
                        self.project.name,
                    )
                    continue
                raise SearchIndexError(
                    f"rows were stored, but indexing them for search failed ({exc}), and"
                    " indexing beside this writer has stopped; `promptlake embed --project"
                    f" {self.project.name}` fills in what is missing"
                ) from exc
            self.indexed += indexed
            self.embedded += embedded

    def submit(
        self,
        staged: Sequence[bytes],
        refused: Sequence[uuid.UUID] = (),
        vectors: Sequence[tuple[uuid.UUID, str, np.ndarray]] = (),
    ) -> None:
        """Index a committed flush (its stage's COPY data, less the ``refused`` rows) and
        store its ``vectors``, in the background; waits while ``workers`` batches are in
        flight."""
        if self.failed or (not staged and not vectors):
            return
        with self._lock:
            self._wait(keep=self._workers - 1)
            job = self._pool.submit(self._run, list(staged), list(refused), list(vectors))
            self._pending.append(job)

    def close(self) -> tuple[int, int]:
        """Wait for the last batch; returns (rows indexed, embeddings stored)."""
        with self._lock:
            try:
                self._wait()
            finally:
                self._pool.shutdown(wait=True)
        return self.indexed, self.embedded


def start_indexer(
    project: Project, language: str, embedder: Any, required: bool
) -> BackgroundIndexer | None:
    """The indexer of a writer. ``required`` (``index=True``): as asked, or an error. By
    default (``index=None``) the writer indexes when its principal may (admins: full text
    needs the role) and the database answers, computing the default embedder's vectors for
    rows logged without one unless that embedder's HNSW index exists (see
    :func:`hnsw_exists`); otherwise it logs without indexing, and search reports the rows
    pending (``promptlake embed`` fills them in)."""
    from ..errors import DatabaseUnavailableError, PermissionDeniedError
    from .embedders import get_embedder

    compute = None
    if embedder is None or not isinstance(embedder, str):
        compute = get_embedder(embedder)  # the default, or an embedder object given
    if required:
        return BackgroundIndexer(project, language, embedder=compute)
    try:
        if compute is not None and hnsw_exists(project, compute.name):
            compute = None
        indexer = BackgroundIndexer(project, language, embedder=compute)
    except (PermissionDeniedError, DatabaseUnavailableError):
        return None
    indexer.quiet = True
    return indexer
