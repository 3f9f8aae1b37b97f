"""The bulk write path: buffered generations flushed with binary COPY.

One flush is one transaction, and returns only once it committed. Every record was
validated by ``log`` (``records.py``), and every reference it makes (parent, session,
prompt version, run) is checked against the batch and the project, so a bad record is set
aside with its reason instead of failing the batch. PostgreSQL refuses ``COPY FROM`` into
a table under row-level security, so rows travel by binary COPY into a temporary stage
and reach ``generations`` (and sessions, ``sessions``) by ``INSERT ... SELECT ... ON
CONFLICT DO NOTHING``, where the policies check them and which makes a retried batch
store nothing twice. Anything the database still refuses is isolated by bisection, so the
good rows of the batch are kept.

Speed: the client's longest step (applying the PII policy and hashing, about a third of
a row's cost) has no use for the database, and the database's longest step (the INSERT
from the stage) has no use for the client. So ``log`` only validates, and the flush
anonymizes, hashes and encodes the rows chunk by chunk while the chunk before is being
inserted (:func:`stage_overlapped`).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.copy import Copy, FileWriter

from ..db.engine import problem_from_db_error
from ..errors import DatabaseUnavailableError, IngestInterruptedError, Problem, ValidationError
from ..ids import uuid7
from ..privacy.anonymize import store_side_rows
from .positions import assign_positions, forget_positions
from .records import HASH_VERSION, GenerationRow, _brief, _Collector, finish_generation

if TYPE_CHECKING:
    from ..client import Project

log = logging.getLogger(__name__)

GENERATION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("project_id", "uuid"),
    ("id", "uuid"),
    ("session_id", "uuid"),
    ("parent_id", "uuid"),
    ("seq", "int4"),
    ("prompt_version_id", "uuid"),
    ("model_id", "uuid"),
    ("run_id", "uuid"),
    ("name", "text"),
    ("input_messages", "jsonb"),
    ("input_text", "text"),
    ("output", "text"),
    ("params", "jsonb"),
    ("prompt_tokens", "int4"),
    ("completion_tokens", "int4"),
    ("cost_usd", "numeric"),
    ("latency_ms", "float8"),
    ("status", "text"),
    ("error", "text"),
    ("origin", "text"),
    ("generator", "text"),
    ("lineage", "jsonb"),
    ("input_hash", "bytea"),
    ("output_hash", "bytea"),
    ("content_hash", "bytea"),
    ("hash_version", "int2"),
    ("tags", "text[]"),
    ("metadata", "jsonb"),
    ("created_at", "timestamptz"),
    ("pii_policy_version", "int4"),
)
COLUMN_NAMES = [name for name, _ in GENERATION_COLUMNS]
COLUMN_TYPES = [kind for _, kind in GENERATION_COLUMNS]
_COLUMNS_SQL = sql.SQL(", ").join(sql.Identifier(c) for c in COLUMN_NAMES)
COPY_SQL = sql.SQL("COPY generations ({}) FROM STDIN (FORMAT BINARY)").format(_COLUMNS_SQL)
INSERT_SQL = sql.SQL("INSERT INTO generations ({}) VALUES ({}) ON CONFLICT DO NOTHING").format(
    _COLUMNS_SQL, sql.SQL(", ").join(sql.Placeholder() * len(COLUMN_NAMES))
)


def generation_tuple(
    project_id: uuid.UUID,
    row: GenerationRow,
    model_id: uuid.UUID | None,
    json: Callable[[Any], Any] = lambda value: value,
) -> tuple:
    """Column values in :data:`COLUMN_NAMES` order. Binary COPY (with its column types set)
    takes dicts as they are; a parametrised INSERT needs them wrapped (``json=Jsonb``)."""
    messages = None if row.input_messages is None else json(row.input_messages)
    return (
        project_id, row.id, row.session_id, row.parent_id, row.seq, row.prompt_version_id,
        model_id, row.run_id, row.name, messages, row.input_text, row.output, json(row.params),
        row.prompt_tokens, row.completion_tokens, row.cost_usd, row.latency_ms, row.status,
        row.error, row.origin, row.generator, json(row.lineage), row.input_hash,
        row.output_hash, row.content_hash, HASH_VERSION, row.tags, json(row.metadata),
        row.created_at, row.pii_policy_version,
    )  # fmt: skip


@dataclass(frozen=True)
class Rejection:
    """A record the writer did not store, where it came from, and every reason."""

    item: str
    id: uuid.UUID | None
    problems: tuple[Problem, ...]

    def __str__(self) -> str:
        return f"{self.item}: " + "; ".join(str(p) for p in self.problems)


@dataclass
class WriteStats:
    """Exact counters of a writer's life so far.

    Every record passed to ``log`` ends in exactly one of: ``stored`` (inserted by a
    commit of this writer), ``duplicates`` (already in the database: a retry of something
    stored before, including by an attempt whose commit was not acknowledged),
    ``rejected`` (with its reasons), ``journaled`` (kept on disk for ``promptlake
    replay``), or still buffered."""

    stored: int = 0
    duplicates: int = 0
    scores_stored: int = 0
    journaled: int = 0
    retries: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    embeddings: int = 0  # embeddings given to ``log`` and stored (search/live.py)
    text_indexed: int = 0  # rows full-text indexed beside the writer (``index=True``)


@dataclass
class _PendingScore:
    item: str
    values: dict[str, Any]


class Writer:
    """Buffered bulk logging for one project; use as ``with project.writer() as w``.

    ``log`` validates at once and buffers; a bad record is recorded in ``rejected`` (or
    raised, with ``strict=True``) and never reaches the database. ``flush`` writes the
    buffer in one transaction and returns only after it committed.
    """

    def __init__(
        self,
        project: Project,
        *,
        batch_size: int = 5000,
        strict: bool = False,
        retry_seconds: float = 30.0,
        index: bool | None = None,
        embedder: Any = None,
        language: str = "english",
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.project = project
        self.batch_size = batch_size
        self.strict = strict
        self.retry_seconds = retry_seconds
        self.stats = WriteStats()
        self._rows: list[tuple[str, GenerationRow]] = []
        self._sessions: dict[uuid.UUID, dict[str, Any]] = {}
        self._scores: list[_PendingScore] = []
        self._numbered: set[int] = set()  # rows whose seq the database gave (positions.py)
        self._known_generations: set[uuid.UUID] = set()
        self._known_sessions: set[uuid.UUID] = set()
        self._flushing_sessions: Mapping[uuid.UUID, Any] = {}
        self._present: set[uuid.UUID] = set()
        # with ``index``: the COPY data a flush sent to its stage, which the indexer loads
        # again (the rows as stored, with no second encoding on this thread)
        self._sent: list[bytes] | None = None
        self._erased_sessions: set[uuid.UUID] = set()
        # the PII policy each buffered row was logged under (by row object: see _validate)
        self._anonymize: dict[int, Callable[[GenerationRow], None]] = {}
        self._count = 0
        # search (search/live.py): embeddings and retrievals given to log(), written in the
        # flush's transaction; with ``index``, committed batches are full-text indexed
        self.embedder = embedder
        self._search: dict[uuid.UUID, Any] = {}
        self._embedded = 0
        self._indexer = None
        project._anonymizer()  # read the PII policy now: log() never needs the database
        if index or index is None:
            from ..search.live import start_indexer

            self._indexer = start_indexer(project, language, embedder, required=bool(index))

    # -- public API -------------------------------------------------------------------

    @property
    def rejected(self) -> list[Rejection]:
        return self.stats.rejected

    def session(
        self,
        *,
        id: uuid.UUID | None = None,
        end_user_id: str | None = None,
        name: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        started_at: dt.datetime | str | float | None = None,
    ) -> uuid.UUID:
        """Declare a session to be written with the next flush; returns its id."""
        c = _Collector(self.project.lake.settings.max_text_bytes)
        values = {
            "id": c.uuid("id", id) or uuid7(),
            "end_user_id": c.text("end_user_id", end_user_id),
            "name": c.text("name", name),
            "tags": c.tags("tags", list(tags) if tags is not None else None),
            "metadata": c.json_value("metadata", metadata),
            "started_at": c.timestamp("started_at", started_at) or dt.datetime.now(dt.UTC),
        }
        if c.problems:
            raise ValidationError(c.problems)
        from ..privacy.anonymize import anonymize_session

        values = anonymize_session(self.project, values)
        self._sessions[values["id"]] = values
        return values["id"]

    def log(self, *, item: str | None = None, **fields: Any) -> uuid.UUID | None:
        """Buffer one generation (same fields as ``Session.log``); returns its id, or None
        if it was rejected (see :attr:`rejected`)."""
        self._count += 1
        label = item or f"record {self._count}"
        search = (fields.pop("embedding", None), fields.pop("embedder", None) or self.embedder,
                  fields.pop("retrieved", None))  # fmt: skip
        try:
            row = self._validate(fields)
            if search[0] is not None or search[2]:
                from ..search.live import log_extras

                self._search[row.id] = log_extras(self.project, row.id, *search)
        except ValidationError as exc:
            return self._reject(label, _maybe_uuid(fields.get("id")), exc.problems)
        self._rows.append((label, row))
        if len(self._rows) >= self.batch_size:
            self.flush()
        return row.id

    def score(
        self,
        generation: Any,
        name: str,
        value: float | bool | str,
        *,
        source: str = "human",
        author: str | None = None,
        comment: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        id: uuid.UUID | None = None,
        item: str | None = None,
    ) -> uuid.UUID | None:
        """Buffer a score for a generation (logged earlier or in this batch)."""
        from ..scores import prepare_score

        label = item or f"score for {_brief(getattr(generation, 'id', generation), 80)}"
        try:
            values = prepare_score(
                generation,
                name,
                value,
                source=source,
                author=author,
                comment=comment,
                metadata=metadata,
                id=id,
                max_bytes=self.project.lake.settings.max_text_bytes,
            )
        except ValidationError as exc:
            return self._reject(label, _maybe_uuid(id), exc.problems)
        from ..privacy.anonymize import anonymize_score

        values = anonymize_score(self.project, values)
        self._scores.append(_PendingScore(label, values))
        return values["id"]

    def flush(self) -> int:
        """Write everything buffered in one transaction; return how many rows were new.

        Returns only once the transaction committed (``synchronous_commit`` on). If the
        database is unreachable or the transaction is rolled back, the flush is retried
        with backoff for up to ``retry_seconds``; the ids chosen before the first attempt
        make a retry store nothing twice. Past that budget the batch is written to a local
        journal and :class:`~promptlake.errors.IngestInterruptedError` says where.
        """
        if not (self._rows or self._sessions or self._scores):
            return 0
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.05
        while True:
            # ids learnt from the database stay true if the attempt fails: only counters reset
            saved = (len(self.stats.rejected), self.stats.duplicates)
            try:
                stored, scored = self._flush_once()
                break
            except DatabaseUnavailableError as exc:
                del self.stats.rejected[saved[0] :]
                self.stats.duplicates = saved[1]
                if time.monotonic() + delay > deadline:
                    self._journal(exc)
                log.warning("promptlake: %s; retrying in %.2f s", exc, delay)
                self.stats.retries += 1
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        self._known_sessions.update(self._sessions)
        self._known_generations.update(self._present)
        if stored:
            from ..search.pending import forget

            forget(self.project)  # search counts the rows not indexed yet afresh
        if len(self._known_generations) > 2_000_000:
            self._known_generations.clear()  # bounded memory; unknown ids are looked up
        try:
            self._after_search_flush()  # may raise SearchIndexError: the batch is stored
        finally:
            self._rows, self._sessions, self._scores = [], {}, []
            self._anonymize.clear()
            self._numbered.clear()
            self.stats.stored += stored
            self.stats.scores_stored += scored
        return stored

    def _flush_once(self) -> tuple[int, int]:
        rows, sessions, scores = self._rows, self._sessions, self._scores
        self._present = set()
        self._sent = [] if self._indexer is not None else None
        try:
            with self.project.lake._transaction(self.project) as conn:
                self._write_sessions(conn, sessions)
                self._flushing_sessions = sessions  # written above, in this transaction
                stored = self._write_generations(conn, rows)
                self._write_attachments(conn, rows)
                store_side_rows(conn, self.project, [r for _, r in rows if r.id in self._present])
                self._write_search(conn, rows)
                scored = self._write_scores(conn, scores)
        finally:
            self._flushing_sessions = {}
        return stored, scored

    def _journal(self, cause: Exception) -> None:
        """Keep the buffered batch on disk, clear it, and raise."""
        from .journal import write

        self._finish(self._rows)  # the journal holds rows as they would have been stored
        forget_positions([r for _, r in self._rows], self._numbered)  # replay numbers them
        master = None
        if any(row.vault_originals for _, row in self._rows):
            master = self.project.lake.master_key()
        path = write(
            self.project,
            list(self._sessions.values()),
            self._rows,
            [(p.item, p.values) for p in self._scores],
            master,
        )
        count = len(self._rows)
        self.stats.journaled += count
        self._rows, self._sessions, self._scores = [], {}, []
        self._anonymize.clear()
        raise IngestInterruptedError(
            f"the database stayed unavailable for {self.retry_seconds:g} s ({cause}); kept"
            f" {count} generations in {path}: run `promptlake replay` to store them",
            str(path),
            count,
        ) from cause

    def _write_search(self, conn: psycopg.Connection, rows: list) -> None:
        """Retrievals given to ``log`` and (without ``index``) embeddings, in the flush's
        transaction; with ``index`` the embeddings go to the background indexer."""
        self._embedded = 0
        if self._search:
            from ..search.live import write_log_extras

            extras = [self._search[r.id] for _, r in rows
                      if r.id in self._present and r.id in self._search]  # fmt: skip
            if self._indexer is not None:
                extras = [(None, grounding) for _, grounding in extras]
            self._embedded = write_log_extras(conn, self.project, extras)

    def _after_search_flush(self) -> None:
        """After a commit: count the embeddings, hand the batch to the background indexer."""
        self.stats.embeddings += self._embedded
        self._embedded = 0
        extras = [self._search.pop(row.id, None) for _, row in self._rows]
        if self._indexer is not None:  # the embeddings of rows stored by this flush
            vectors = [e[0] for e in extras if e is not None and e[0] is not None
                       and e[0][0] in self._present]  # fmt: skip
            refused = [row.id for _, row in self._rows if row.id not in self._present]
            self._indexer.submit(self._sent or [], refused, vectors)
        self._sent = None

    def finish_indexing(self) -> None:
        """Wait until every committed row is indexed for search (``close`` does this)."""
        if self._indexer is not None:
            from ..search.pending import forget

            indexer, self._indexer = self._indexer, None
            try:
                indexed, embedded = indexer.close()
            finally:
                forget(self.project)
            self.stats.text_indexed += indexed
            self.stats.embeddings += embedded

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.finish_indexing()
        if self.stats.rejected:
            log.warning("%d records were rejected; see Writer.rejected", len(self.stats.rejected))

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # Buffered records were accepted by log(); they are written even if the body failed.
        self.close()

    # -- internals ----------------------------------------------------------------------

    def _validate(self, fields: Mapping[str, Any]) -> GenerationRow:
        """``Project._validate``: the record is validated now, so a bad one is rejected by
        ``log`` itself, and the live PII policy is looked up now too; the policy and the
        content hashes are applied by :meth:`_finish` at flush time, chunk by chunk, while
        the database inserts the chunk before (:func:`stage_overlapped`). Nothing
        unfinished is ever sent or journaled."""
        row, anonymize = self.project._validate(fields)
        if anonymize is not None:
            # keyed by the row object, not its id: a batch may hold one id twice
            self._anonymize[id(row)] = anonymize
        return row

    def _finish(self, rows: Iterable[tuple[str, GenerationRow]]) -> None:
        """Anonymize and hash the rows not finished yet (journal replays arrive finished)."""
        for _, row in rows:
            if not row.content_hash:
                finish_generation(row, self._anonymize.get(id(row)))

    def _reject(self, item: str, rid: uuid.UUID | None, problems: Iterable[Problem]) -> None:
        rejection = Rejection(item, rid, tuple(problems))
        if self.strict:
            raise ValidationError([Problem(p.field, p.reason, item) for p in rejection.problems])
        self.stats.rejected.append(rejection)
        return None

    def _write_sessions(self, conn: psycopg.Connection, sessions: dict) -> None:
        if not sessions:
            return
        from ..privacy.erase import erased_subjects

        erased = erased_subjects(
            self.project, conn, {s["end_user_id"] for s in sessions.values() if s["end_user_id"]}
        )
        for sid in [sid for sid, s in sessions.items() if s["end_user_id"] in erased]:
            del sessions[sid]
            self._erased_sessions.add(sid)
        pid = self.project.id
        stage_sessions(
            conn,
            [
                (pid, s["id"], s["end_user_id"], s["name"], s["tags"], s["metadata"],
                 s["started_at"])
                for s in sorted(sessions.values(), key=lambda s: s["id"])
            ],
        )  # fmt: skip

    def _check_references(
        self, conn: psycopg.Connection, rows: list[tuple[str, GenerationRow]]
    ) -> list[tuple[str, GenerationRow]]:
        """Drop (and report) rows whose parent, session, prompt version or run is unknown."""
        in_batch = {row.id for _, row in rows}
        unknown: dict[str, set[uuid.UUID]] = {
            "parent": set(),
            "session": set(),
            "prompt_version": set(),
            "run": set(),
        }
        for _, row in rows:
            parent = row.parent_id
            if parent and parent not in in_batch and parent not in self._known_generations:
                unknown["parent"].add(parent)
            session = row.session_id
            known = session in self._known_sessions or session in self._flushing_sessions
            if session and not known:
                unknown["session"].add(session)
            if row.prompt_version_id:
                unknown["prompt_version"].add(row.prompt_version_id)
            if row.run_id:
                unknown["run"].add(row.run_id)
        found = {key: _existing(conn, key, self.project.id, ids) for key, ids in unknown.items()}
        self._known_generations |= found["parent"]
        self._known_sessions |= found["session"]
        accepted: list[tuple[str, GenerationRow]] = []
        accepted_ids: set[uuid.UUID] = set()
        rejected_ids: set[uuid.UUID] = set()
        for label, row in rows:
            problems = []
            for key, value in (
                ("parent", row.parent_id),
                ("session", row.session_id),
                ("prompt_version", row.prompt_version_id),
                ("run", row.run_id),
            ):
                if key == "session" and value in self._erased_sessions:
                    problems.append(Problem("session", "its end user was erased from this project"))
                    continue
                if value is None or value in found[key] or value in accepted_ids:
                    continue
                if key == "session" and (
                    value in self._known_sessions or value in self._flushing_sessions
                ):
                    continue
                if key == "parent" and value in self._known_generations:
                    continue
                if key == "parent" and value in rejected_ids:
                    problems.append(Problem("parent", f"{value} was rejected in this batch"))
                elif key == "parent" and value in in_batch:
                    continue  # logged later in the same batch: FK checks run at statement end
                else:
                    problems.append(
                        Problem(
                            key, f"{value} is not a {_NOUN[key]} of project {self.project.name!r}"
                        )
                    )
            if problems:
                rejected_ids.add(row.id)
                self._reject(label, row.id, problems)
            else:
                accepted.append((label, row))
                accepted_ids.add(row.id)
        return accepted

    def _write_generations(
        self, conn: psycopg.Connection, rows: list[tuple[str, GenerationRow]]
    ) -> int:
        if not rows:
            return 0
        rows = self._check_references(conn, rows)
        taken = {id(r) for r in assign_positions(conn, [r for _, r in rows], self._numbered)}
        if taken:
            for label, row in rows:
                if id(row) in taken:
                    reason = f"{row.seq} is already taken in session {row.session_id}"
                    self._reject(label, row.id, [Problem("seq", reason)])
            rows = [item for item in rows if id(item[1]) not in taken]
        model_ids = self.project.lake._model_ids(conn, self.project, {r.model for _, r in rows})
        rows = parents_first(rows)
        pid = self.project.id

        def make(chunk: list[tuple[str, GenerationRow]]) -> list[tuple]:
            self._finish(chunk)
            return [generation_tuple(pid, r, model_ids.get(r.model)) for _, r in chunk]

        return self._insert_isolating(conn, rows, make=make)

    def _insert_isolating(
        self,
        conn: psycopg.Connection,
        rows: list[tuple[str, GenerationRow]],
        tuples: list[tuple] | None = None,
        make: Callable[[list[tuple[str, GenerationRow]]], list[tuple]] | None = None,
    ) -> int:
        """Insert the rows; on refusal, split the batch until the refused rows are found.

        The first attempt gets ``make`` instead of ``tuples``: it finishes the rows and
        builds their tuples chunk by chunk, overlapped with the inserts
        (:func:`stage_overlapped`); the bisection after a refusal works on the tuples."""
        try:
            with conn.transaction():
                if tuples is None:
                    assert make is not None
                    stored = stage_overlapped(conn, rows, make, sent=self._sent)
                else:
                    stored = stage_and_insert(conn, tuples, sent=self._sent)
            self.stats.duplicates += len(rows) - stored
            self._present.update(row.id for _, row in rows)
            return stored
        except psycopg.errors.IntegrityError as exc:
            if len(rows) == 1:
                label, row = rows[0]
                self._reject(label, row.id, [problem_from_db_error(exc)])
                return 0
        except psycopg.errors.DataError as exc:
            if len(rows) == 1:
                label, row = rows[0]
                self._reject(label, row.id, [Problem("row", f"refused by the database: {exc}")])
                return 0
        if tuples is None:
            assert make is not None
            tuples = make(rows)
        middle = len(rows) // 2
        first = self._insert_isolating(conn, rows[:middle], tuples[:middle])
        return first + self._insert_isolating(conn, rows[middle:], tuples[middle:])

    def _write_attachments(self, conn, rows) -> None:
        values = [
            value
            for _, row in rows
            if row.id in self._present
            for value in attachment_rows(self.project.id, row)
        ]
        if values:
            insert_attachments(conn, values)

    def _write_scores(self, conn: psycopg.Connection, scores: list[_PendingScore]) -> int:
        if not scores:
            return 0
        wanted = {s.values["generation_id"] for s in scores} - self._known_generations
        found = _existing(conn, "parent", self.project.id, wanted)
        self._known_generations |= found
        good = []
        for pending in scores:
            gid = pending.values["generation_id"]
            if gid in self._known_generations:
                good.append(pending.values)
            else:
                self._reject(
                    pending.item,
                    pending.values["id"],
                    [
                        Problem(
                            "generation",
                            f"{gid} is not a stored generation of project {self.project.name!r}",
                        )
                    ],
                )
        from ..scores import insert_scores

        return insert_scores(conn, self.project.id, good)


def parents_first(rows: list[tuple[str, GenerationRow]]) -> list[tuple[str, GenerationRow]]:
    """The rows in the order they are inserted: by depth within the batch (a row whose
    parent is not in the batch is at depth 0, its child at 1, ...), then by id.

    A flush inserts its rows chunk by chunk (:func:`stage_overlapped`) and bisects a
    refused batch, and each INSERT checks the parent foreign key at its own end: a child
    must never be inserted before its parent, whatever chunk the parent falls in. By id
    alone it was, whenever ids are not in logging order (the importers derive them from
    the data). Within a depth the order is by id: one lock order for every writer."""
    parent_of = {row.id: row.parent_id for _, row in rows}
    depth: dict[uuid.UUID, int] = {}
    for start in parent_of:
        path: list[uuid.UUID] = []
        node: uuid.UUID | None = start
        seen: set[uuid.UUID] = set()
        while node is not None and node in parent_of and node not in depth and node not in seen:
            seen.add(node)  # a cycle (only possible within a batch) ends the walk
            path.append(node)
            node = parent_of[node]
        base = depth.get(node, -1) if node is not None else -1
        for offset, member in enumerate(reversed(path), 1):
            depth[member] = base + offset
    return sorted(rows, key=lambda item: (depth[item[1].id], item[1].id))


_NOUN = {
    "parent": "generation",
    "session": "session",
    "prompt_version": "prompt version",
    "run": "run",
}
_TABLE = {"parent": "generations", "session": "sessions", "prompt_version": "prompt_versions",
          "run": "runs"}  # fmt: skip


def _existing(conn, key: str, project_id: uuid.UUID, ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """Which of ``ids`` exist in the project. Sessions and generations are checked through a
    function that answers writers too, who may not read those tables."""
    if not ids:
        return set()
    table = _TABLE[key]
    if table in ("generations", "sessions"):
        rows = conn.execute("SELECT promptlake_existing_ids(%s, %s)", (table, list(ids)))
    else:
        query = sql.SQL("SELECT id FROM {} WHERE project_id = %s AND id = ANY(%s)")
        rows = conn.execute(query.format(sql.Identifier(table)), (project_id, list(ids)))
    return {r[0] for r in rows.fetchall()}


_STAGE_COLUMNS = sql.SQL(", ").join(
    sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
    for name, kind in GENERATION_COLUMNS
)
_CREATE_STAGE = sql.SQL(
    "CREATE TEMP TABLE IF NOT EXISTS promptlake_stage ({})"
    " WITH (toast_tuple_target = 8160) ON COMMIT DELETE ROWS"
).format(_STAGE_COLUMNS)
_COPY_STAGE = sql.SQL("COPY promptlake_stage ({}) FROM STDIN (FORMAT BINARY)").format(_COLUMNS_SQL)
_INSERT_FROM_STAGE = sql.SQL(
    "INSERT INTO generations ({cols}) SELECT {cols} FROM promptlake_stage ON CONFLICT DO NOTHING"
).format(cols=_COLUMNS_SQL)


SESSION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("project_id", "uuid"),
    ("id", "uuid"),
    ("end_user_id", "text"),
    ("name", "text"),
    ("tags", "text[]"),
    ("metadata", "jsonb"),
    ("started_at", "timestamptz"),
)
SESSION_COLUMN_TYPES = [kind for _, kind in SESSION_COLUMNS]
_SESSION_COLUMNS_SQL = sql.SQL(", ").join(sql.Identifier(name) for name, _ in SESSION_COLUMNS)
_CREATE_SESSION_STAGE = sql.SQL(
    "CREATE TEMP TABLE IF NOT EXISTS promptlake_session_stage ({}) ON COMMIT DELETE ROWS"
).format(
    sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
        for name, kind in SESSION_COLUMNS
    )
)
_COPY_SESSION_STAGE = sql.SQL(
    "COPY promptlake_session_stage ({}) FROM STDIN (FORMAT BINARY)"
).format(_SESSION_COLUMNS_SQL)
_INSERT_SESSIONS_FROM_STAGE = sql.SQL(
    "INSERT INTO sessions ({cols}) SELECT {cols} FROM promptlake_session_stage"
    " ON CONFLICT DO NOTHING"
).format(cols=_SESSION_COLUMNS_SQL)


def stage_sessions(conn: psycopg.Connection, tuples: list[tuple]) -> int:
    """Sessions (in :data:`SESSION_COLUMNS` order) the way :func:`stage_and_insert` writes
    generations: binary COPY into a temporary table, then one INSERT ... SELECT under the
    row-level security policies, ``ON CONFLICT DO NOTHING`` for retries. A batch of
    thousands of sessions costs one statement instead of one executed INSERT each."""
    if not tuples:
        return 0
    with conn.cursor() as cur:
        cur.execute(_CREATE_SESSION_STAGE)
        cur.execute("TRUNCATE promptlake_session_stage")
        with cur.copy(_COPY_SESSION_STAGE) as copy:
            copy.set_types(SESSION_COLUMN_TYPES)
            for values in tuples:
                copy.write_row(values)
        cur.execute(_INSERT_SESSIONS_FROM_STAGE)
        return cur.rowcount


def stage_and_insert(
    conn: psycopg.Connection, tuples: list[tuple], sent: list[bytes] | None = None
) -> int:
    """Binary COPY into a temporary table, then one INSERT ... SELECT into ``generations``.

    PostgreSQL refuses ``COPY FROM`` into a table with row-level security, so the rows
    travel by COPY (the fast wire format) into a session-local table and reach
    ``generations`` through an INSERT, where the policies check them. ``ON CONFLICT DO
    NOTHING`` makes a retried batch store nothing twice. Returns how many rows were new.
    The COPY data is appended to ``sent`` when given (see :func:`load_stage`).
    """
    with conn.cursor() as encoder:
        data = _copy_data(encoder, tuples)
    load_stage(conn, [data])
    if sent is not None:
        sent.append(data)
    return _insert_from_stage(conn)


def load_stage(conn: psycopg.Connection, chunks: Sequence[bytes], fresh: bool = True) -> None:
    """COPY ``chunks`` (binary COPY data of :data:`GENERATION_COLUMNS` rows, as the stage
    functions build it) into this session's ``promptlake_stage``; ``fresh`` first creates
    the stage if needed and empties it. The background search indexer loads a flush's data
    again this way, in its own session, to index the rows exactly as they were stored."""
    with conn.cursor() as cur:
        if fresh:
            cur.execute(_CREATE_STAGE)
            cur.execute("TRUNCATE promptlake_stage")
        for data in chunks:  # each a whole COPY stream: header, rows, trailer
            with cur.copy(_COPY_STAGE) as copy:
                copy.write(data)


STAGE_CHUNK = 1000
"""Rows per COPY + INSERT of :func:`stage_overlapped`: small enough that most of a batch's
finishing hides behind the inserts, large enough that the per-statement costs vanish."""

_Item = TypeVar("_Item")


def stage_overlapped(
    conn: psycopg.Connection,
    rows: list[_Item],
    make: Callable[[list[_Item]], list[tuple]],
    chunk: int | None = None,
    sent: list[bytes] | None = None,
) -> int:
    """:func:`stage_and_insert` for ``make(rows)``, one chunk at a time, building each
    chunk's tuples while the database inserts the previous chunk. Returns how many rows
    were new.

    The ``INSERT ... SELECT`` from the stage is the longest step of a flush, and the client
    only waits for it; finishing rows (PII scan, hashing) and encoding them as COPY data are
    the longest client steps, and need no database. So this thread finishes and encodes
    chunk *n + 1* while a helper thread runs the INSERT of chunk *n*, waiting on the socket
    (without the GIL); then it sends chunk *n + 1* to the stage. The connection is used by
    one thread at a time, and all of it happens in the caller's transaction: the result,
    or the exception that aborts the attempt, is that of one :func:`stage_and_insert` of
    every row. Each chunk's COPY data is appended to ``sent`` when given.
    """
    size = chunk or STAGE_CHUNK
    # a short first chunk: its finishing is the one thing no insert hides
    first = max(1, size // 4) if len(rows) > size else size
    parts = [rows[:first]] + [rows[i : i + size] for i in range(first, len(rows), size)]
    if len(parts) <= 1:
        return stage_and_insert(conn, make(rows), sent) if rows else 0
    load_stage(conn, [])
    stored = 0
    with (
        conn.cursor() as encoder,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="promptlake-stage") as pool,
    ):
        pending: Future[int] | None = None
        data = _copy_data(encoder, make(parts[0]))
        for n in range(len(parts)):
            if pending is not None:
                stored += pending.result()  # the stage is empty again
            load_stage(conn, [data], fresh=False)
            if sent is not None:
                sent.append(data)
            pending = pool.submit(_insert_from_stage, conn, True)
            if n + 1 < len(parts):
                data = _copy_data(encoder, make(parts[n + 1]))
        assert pending is not None
        stored += pending.result()
    return stored


def _copy_data(cursor: psycopg.Cursor, tuples: list[tuple]) -> bytes:
    """``tuples`` as binary COPY data for the stage, encoded without using the connection:
    a ``Copy`` on a ``FileWriter``, the way psycopg documents writing COPY data to a file.
    The cursor only lends its adapters (the connection's JSON dumper among them)."""
    buffer = io.BytesIO()
    with Copy(cursor, binary=True, writer=FileWriter(buffer)) as copy:
        copy.set_types(COLUMN_TYPES)
        for values in tuples:
            copy.write_row(values)
    return buffer.getvalue()


def _insert_from_stage(conn: psycopg.Connection, empty: bool = False) -> int:
    """INSERT the staged rows into ``generations``; with ``empty``, TRUNCATE the stage
    after. Returns how many rows were new."""
    with conn.cursor() as cur:
        cur.execute(_INSERT_FROM_STAGE)
        stored = cur.rowcount
        if empty:
            cur.execute("TRUNCATE promptlake_stage")
    return stored


def attachment_rows(project_id: uuid.UUID, row: GenerationRow) -> list[tuple]:
    return [
        (project_id, a["id"], row.id, a["kind"], a["mime_type"], a["sha256"], a["size_bytes"],
         a["data"], a["uri"], a["role"])
        for a in row.attachments
    ]  # fmt: skip


def insert_attachments(conn: psycopg.Connection, values: list[tuple]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO attachments (project_id, id, generation_id, kind, mime_type, sha256,"
            " size_bytes, data, uri, role) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            values,
        )


def _maybe_uuid(value: Any) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:  # only text: str() of a caller's object may recurse without end or fail
        return uuid.UUID(value) if isinstance(value, str) else None
    except ValueError:
        return None
