"""Non-blocking, lossless logging: ``log()`` returns once its record is fsynced to a local
journal, and a background thread moves the records into the database with the bulk writer.

``Session.log`` makes its caller wait for a database commit; the bulk writer (``writer.py``)
is fast but keeps what ``log`` accepted in memory until a flush. :class:`BackgroundLogger`
(``proj.logger()``) sits between them:

- ``log(**fields)`` validates, applies the PII policy and hashes at once (a bad record
  raises ``ValidationError`` in the caller, like ``Session.log``), encodes the record as
  a line of the journal format of ``journal.py``, and waits until that line is on disk;
- a *syncer* thread appends whatever lines are waiting to the current journal segment
  with one ``pwrite`` and one ``fdatasync`` (group commit: callers that arrive during an
  fsync share the next one, so a caller waits at most about two fsyncs, well under 10 ms
  here), then wakes exactly the callers whose lines it synced;
- a *flusher* thread hands the synced records, in order, to a :class:`Writer` in batches
  (binary COPY, one transaction each) and, once a batch committed, releases its part of
  the segment; a segment all of whose records are stored is deleted.

Nothing acknowledged is ever only in memory: if the process dies (``kill -9``), the
segments stay in ``PROMPTLAKE_HOME/journal/`` and ``promptlake replay`` (or
:func:`promptlake.ingest.journal.replay`) stores them; the ids chosen before journaling
make records the flusher had already stored count as duplicates, so each is stored exactly
once. A live logger holds an ``flock`` on its segments, which replay skips.

Segments are zero-filled in advance (by a helper thread) so that an append does not change
the file's size: ``fdatasync`` then has no metadata to write, about 0.3 ms instead of
2.4 ms measured here. The journal reader stops at the first NUL byte, the unused end of a
segment (JSON text never holds one). A record that cannot be stored for lack of a database
follows the writer's outage path (retries, then its own journal file for ``replay``); the
in-memory queue is bounded (``max_pending``), and a full queue makes ``log`` wait, never
drop. On ``close()``, on leaving the ``with`` block, and at interpreter exit everything
logged is flushed.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import logging
import os
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import IngestInterruptedError, Problem, PromptLakeError, ValidationError
from ..generation import Generation
from ..ids import uuid7
from . import journal
from .records import GenerationRow, _Collector

if TYPE_CHECKING:
    from ..client import Project
    from .writer import Rejection, Writer

log = logging.getLogger(__name__)

SEGMENT_BYTES = 16 << 20
"""Size of a preallocated journal segment (about 6,000 records of 2.5 KB)."""

_ROW_FIELDS = tuple(
    f.name for f in dataclasses.fields(GenerationRow) if f.name != "vault_originals"
)
_NOT_SUPPORTED = ("embedding", "embedder", "retrieved", "attachments")


class LoggerClosedError(PromptLakeError):
    """The background logger was closed, or its flusher stopped after an error; records
    it acknowledged are in its journal (``promptlake replay``)."""


@dataclass
class LoggerStats:
    """Counters of a background logger's life so far (see :class:`BackgroundLogger`)."""

    logged: int = 0  # records log() accepted (sessions included)
    acknowledged: int = 0  # records fsynced, whose log() returned
    stored: int = 0  # generations the flusher's commits inserted
    duplicates: int = 0  # generations already in the database
    journaled: int = 0  # records the writer kept in an outage journal file
    scores_stored: int = 0
    fsyncs: int = 0  # group commits: acknowledged / fsyncs records per fsync
    fsync_seconds: float = 0.0
    max_fsync_ms: float = 0.0
    flushes: int = 0
    waits_for_space: int = 0  # log() calls that waited on a full queue (back-pressure)
    rejected: list[Rejection] = field(default_factory=list)


class _Segment:
    """One preallocated journal file, locked while this logger owns it."""

    def __init__(self, path: Path, fd: int, capacity: int) -> None:
        self.path = path
        self.fd = fd
        self.capacity = capacity
        self.offset = 0
        self.outstanding = 0  # records written here and not yet in the database
        self.sealed = False  # no more writes: deleted once outstanding is 0

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # before closing: the lock keeps replay off until then
        os.close(self.fd)
        self.fd = -1


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_segment(folder: Path, project_id: uuid.UUID, capacity: int) -> _Segment:
    """A zero-filled, fsynced, locked segment, renamed into place only when ready (so
    replay never sees it half made)."""
    name = f"{project_id}-{uuid7()}.jsonl"
    tmp = folder / f".{name}.tmp"
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        zeros = bytes(1 << 20)
        for offset in range(0, capacity, len(zeros)):
            os.pwrite(fd, zeros[: min(len(zeros), capacity - offset)], offset)
        os.fsync(fd)
        os.rename(tmp, folder / name)
        _fsync_dir(folder)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return _Segment(folder / name, fd, capacity)


def _remove_stale_temporaries(folder: Path) -> None:
    """Half-made segments of crashed loggers (never renamed, so never written to)."""
    for tmp in folder.glob(".*.jsonl.tmp"):
        try:
            fd = os.open(tmp, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            tmp.unlink(missing_ok=True)
        except BlockingIOError:
            pass  # another logger is making it
        finally:
            os.close(fd)


@dataclass
class _Record:
    kind: str  # "session" | "generation" | "score"
    item: str
    data: Any  # session dict, GenerationRow, or score dict
    line: bytes
    ticket: int = 0
    segment: _Segment | None = None


class BackgroundLogger:
    """Non-blocking, lossless logging for one project: ``proj.logger()``.

    ``log`` returns once the record is fsynced to the journal; a background thread stores
    it with the bulk writer. Thread-safe; ``alog`` is the same for asyncio code (it waits
    for the fsync without blocking the event loop). Use as a context manager, or call
    :meth:`close`; loggers still open at interpreter exit are closed then.
    """

    def __init__(
        self,
        project: Project,
        *,
        batch_size: int = 2000,
        flush_interval: float = 0.05,
        max_pending: int = 50_000,
        retry_seconds: float = 30.0,
        segment_bytes: int = SEGMENT_BYTES,
    ) -> None:
        if batch_size < 1:
            raise ValidationError([Problem("batch_size", "must be at least 1")])
        if max_pending < 1:
            raise ValidationError([Problem("max_pending", "must be at least 1")])
        if flush_interval < 0:
            raise ValidationError([Problem("flush_interval", "must not be negative")])
        if segment_bytes < 1 << 16:
            raise ValidationError([Problem("segment_bytes", "must be at least 65536")])
        from .writer import Writer

        self.project = project
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.segment_bytes = segment_bytes
        self.stats = LoggerStats()
        self._writer: Writer = Writer(project, batch_size=10**9, retry_seconds=retry_seconds)
        self._writer.stats.rejected = self.stats.rejected  # one list: the writer's refusals
        self._head = {"v": journal.VERSION, "project": project.name, "project_id": str(project.id)}
        self._master: bytes | None = None
        self._lock = threading.Lock()
        self._synced = threading.Condition(self._lock)  # waiters for their fsync
        self._wake_syncer = threading.Condition(self._lock)
        self._wake_flusher = threading.Condition(self._lock)
        self._space = threading.Condition(self._lock)  # back-pressure and flush() waiters
        self._pending: list[_Record] = []  # logged, not yet written to the journal
        self._ready: deque[_Record] = deque()  # fsynced, not yet handed to the writer
        self._ready_since = 0.0
        self._async_waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._ticket = 0  # tickets given out
        self._durable = 0  # every ticket up to this one is fsynced
        self._done = 0  # records the flusher finished with (stored, duplicate, rejected)
        self._inflight = 0  # logged and not done: bounded by max_pending
        self._flush_wanted = False
        self._closing = False
        self._closed = False
        self._syncer_done = False
        self._failure: BaseException | None = None
        self._seq: dict[uuid.UUID, int] = {}
        self._count = 0
        self._segments: list[_Segment] = []
        self._folder = journal.journal_dir(project.lake.settings.home)
        self._folder.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(self._folder)
        self._segment = _create_segment(self._folder, project.id, segment_bytes)
        self._segments.append(self._segment)
        self._prep = ThreadPoolExecutor(max_workers=1, thread_name_prefix="promptlake-journal")
        self._spare: Future[_Segment] = self._prep.submit(
            _create_segment, self._folder, project.id, segment_bytes
        )
        self._syncer = threading.Thread(
            target=self._sync_loop, name="promptlake-syncer", daemon=True
        )
        self._flusher = threading.Thread(
            target=self._flush_loop, name="promptlake-flusher", daemon=True
        )
        self._syncer.start()
        self._flusher.start()
        _live.add(self)

    # -- public API -------------------------------------------------------------------

    @property
    def rejected(self) -> list[Rejection]:
        """Records the database refused at flush time (an unknown parent or session...)."""
        return self.stats.rejected

    @property
    def journal_files(self) -> list[Path]:
        """The segments this logger still owns (each deleted once all it holds is stored)."""
        with self._lock:
            return [s.path for s in self._segments]

    def session(
        self,
        end_user_id: str | None = None,
        *,
        id: uuid.UUID | str | None = None,
        name: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> LoggerSession:
        """A conversation whose generations this logger writes; ``with`` it or not (the
        session is journaled now and stored with the next batch)."""
        c = _Collector(self.project.lake.settings.max_text_bytes)
        values = {
            "id": c.uuid("id", id) or uuid7(),
            "end_user_id": c.text("end_user_id", end_user_id),
            "name": c.text("name", name),
            "tags": c.tags("tags", list(tags) if tags is not None else None),
            "metadata": c.json_value("metadata", metadata),
            "started_at": dt.datetime.now(dt.UTC),
        }
        if c.problems:
            raise ValidationError(c.problems)
        with self._lock:
            known = values["id"] in self._seq
        start = 0 if known or id is None else self._stored_seq(values["id"])
        with self._lock:
            self._seq.setdefault(values["id"], start)
        line = {**self._head, "kind": "session", "data": journal._encode(values)}
        self._wait(self._enqueue(_Record("session", "session", values, _dump(line))))
        return LoggerSession(self, values["id"])

    def _stored_seq(self, session_id: uuid.UUID) -> int:
        """Where a resumed session goes on: after its stored turns (0 if it has none, or
        the database cannot be asked now)."""
        from ..errors import DatabaseError

        try:
            with self.project.lake._transaction(self.project) as conn:
                row = conn.execute("SELECT promptlake_next_seq(%s)", (session_id,)).fetchone()
        except DatabaseError:
            return 0
        return row[0] if row and row[0] is not None else 0

    def log(self, **fields: Any) -> Generation:
        """Log one generation (the fields of ``Session.log``); returns it once its record
        is on disk. Raises ``ValidationError`` for a bad record, at once."""
        record, generation = self._build(fields)
        self._wait(self._enqueue(record))
        return generation

    async def alog(self, **fields: Any) -> Generation:
        """:meth:`log` for asyncio code: awaits the fsync (and, when the queue is full,
        room in it) without blocking the event loop."""
        record, generation = self._build(fields)
        loop = asyncio.get_running_loop()
        with self._lock:
            full = self._inflight >= self.max_pending
        if full:
            await loop.run_in_executor(None, self._wait_for_space)
        self._enqueue(record)
        future: asyncio.Future = loop.create_future()
        with self._lock:
            if record.ticket <= self._durable:
                return generation
            if self._failure is not None:
                raise self._closed_error()
            self._async_waiters.append((record.ticket, loop, future))
        await future
        return generation

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
    ) -> uuid.UUID:
        """Log a score for a generation (logged earlier, by this logger or otherwise)."""
        from ..scores import prepare_score

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
        label = f"score {values['id']}"
        line = {**self._head, "kind": "score", "item": label, "data": journal._encode(values)}
        self._wait(self._enqueue(_Record("score", label, values, _dump(line))))
        return values["id"]

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything logged so far is in the database (or set aside)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            target = self._ticket
            self._flush_wanted = True
            self._wake_syncer.notify()
            self._wake_flusher.notify()
            while self._done < target and self._failure is None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"records still not stored after {timeout} s")
                self._space.wait(left)
            if self._failure is not None:
                raise self._closed_error()

    def close(self) -> None:
        """Flush everything, stop the threads and delete the journal segments. If the
        flusher had failed, raises, and the segments stay for ``promptlake replay``."""
        with self._lock:
            if self._closed:
                return
            self._closed = self._closing = True
            self._wake_syncer.notify_all()
            self._wake_flusher.notify_all()
        self._syncer.join()
        self._flusher.join()
        _live.discard(self)
        with contextlib.suppress(Exception):
            spare = self._spare.result()
            spare.remove()  # never written to
        self._prep.shutdown()
        with self._lock:
            failure = self._failure
            for segment in self._segments:
                if failure is None and segment.outstanding == 0:
                    segment.remove()
                elif segment.fd >= 0:
                    os.close(segment.fd)  # unlocked: replay may take it
                    segment.fd = -1
            kept = [s.path for s in self._segments if failure is not None]
            self._segments = []
        if failure is not None:
            raise LoggerClosedError(
                f"the background logger stopped: {failure}; its acknowledged records are in"
                f" {', '.join(map(str, kept)) or 'the journal'}: run `promptlake replay`"
            ) from failure

    def __enter__(self) -> BackgroundLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- caller side -------------------------------------------------------------------

    def _build(self, fields: Mapping[str, Any]) -> tuple[_Record, Generation]:
        """Validate, anonymize and hash a generation and encode its journal line."""
        unsupported = [k for k in _NOT_SUPPORTED if fields.get(k) is not None]
        if unsupported:
            reason = "is not supported by the background logger; use proj.writer() or Session.log"
            raise ValidationError([Problem(k, reason) for k in unsupported])
        row = self.project._prepare(fields)
        with self._lock:
            if row.session_id is not None and row.seq is None and row.session_id in self._seq:
                row.seq = self._seq[row.session_id]
                self._seq[row.session_id] += 1
            self._count += 1
            label = f"record {self._count}"
        data = {name: getattr(row, name) for name in _ROW_FIELDS}
        if row.vault_originals:
            from ..privacy.vault import seal

            if self._master is None:
                self._master = self.project.lake.master_key()
            data["vault_sealed"] = list(
                seal(self._master, self.project.id, row.id, row.vault_originals)
            )
        line = {**self._head, "kind": "generation", "item": label, "data": data}
        return _Record("generation", label, row, _dump(line)), Generation.from_prepared(
            self.project.id, row
        )

    def _wait_for_space(self) -> None:
        with self._lock:
            while self._inflight >= self.max_pending and self._failure is None:
                self._space.wait()

    def _enqueue(self, record: _Record) -> _Record:
        with self._lock:
            if self._closing or self._failure is not None:
                raise self._closed_error()
            if self._inflight >= self.max_pending:
                self.stats.waits_for_space += 1
                while self._inflight >= self.max_pending and self._failure is None:
                    self._space.wait()
                if self._failure is not None:
                    raise self._closed_error()
            self._ticket += 1
            record.ticket = self._ticket
            self._inflight += 1
            self.stats.logged += 1
            self._pending.append(record)
            self._wake_syncer.notify()
        return record

    def _wait(self, record: _Record) -> None:
        with self._lock:
            while self._durable < record.ticket and self._failure is None:
                self._synced.wait()
            if self._durable < record.ticket:
                raise self._closed_error()

    def _closed_error(self) -> LoggerClosedError:
        if self._failure is not None:
            return LoggerClosedError(f"the background logger stopped: {self._failure}")
        return LoggerClosedError("the background logger is closed")

    # -- syncer thread -----------------------------------------------------------------

    def _sync_loop(self) -> None:
        try:
            while True:
                with self._lock:
                    while not self._pending and not self._closing:
                        self._wake_syncer.wait()
                    if not self._pending:
                        self._syncer_done = True
                        self._wake_flusher.notify()
                        return  # closing, nothing left
                    batch, self._pending = self._pending, []
                self._append(batch)
                with self._lock:
                    self._durable = batch[-1].ticket
                    self.stats.acknowledged += len(batch)
                    if not self._ready:
                        self._ready_since = time.monotonic()
                    self._ready.extend(batch)
                    self._synced.notify_all()
                    self._wake_flusher.notify()
                    self._resolve_async(None)
        except BaseException as exc:  # an fsync that failed acknowledges nothing
            log.exception("promptlake: the background logger's journal failed")
            self._fail(exc)
            with self._lock:
                self._syncer_done = True
                self._wake_flusher.notify()

    def _append(self, batch: list[_Record]) -> None:
        data = b"".join(r.line for r in batch)
        segment = self._segment
        if segment.offset + len(data) > segment.capacity and segment.offset > 0:
            spare = self._spare.result()
            with self._lock:
                segment.sealed = True
                self._segments.append(spare)
                self._release(segment)
            self._segment = segment = spare
            self._spare = self._prep.submit(
                _create_segment, self._folder, self.project.id, self.segment_bytes
            )
        started = time.perf_counter()
        view = memoryview(data)
        while view:
            written = os.pwrite(segment.fd, view, segment.offset)
            segment.offset += written
            view = view[written:]
        os.fdatasync(segment.fd)  # the file grows only past its preallocated size
        seconds = time.perf_counter() - started
        with self._lock:
            for record in batch:
                record.segment = segment
            segment.outstanding += len(batch)
            self.stats.fsyncs += 1
            self.stats.fsync_seconds += seconds
            self.stats.max_fsync_ms = max(self.stats.max_fsync_ms, seconds * 1000)

    def _resolve_async(self, error: BaseException | None) -> None:
        keep = []
        for ticket, loop, future in self._async_waiters:
            if error is None and ticket > self._durable:
                keep.append((ticket, loop, future))
                continue
            with contextlib.suppress(RuntimeError):  # a loop that was closed meanwhile
                if error is None:
                    loop.call_soon_threadsafe(_settle, future, None)
                else:
                    loop.call_soon_threadsafe(_settle, future, self._closed_error())
        self._async_waiters = keep

    # -- flusher thread ----------------------------------------------------------------

    def _flush_loop(self) -> None:
        try:
            while True:
                with self._lock:
                    while True:
                        age = time.monotonic() - self._ready_since
                        if len(self._ready) >= self.batch_size or (
                            self._ready
                            and (self._closing or self._flush_wanted or age >= self.flush_interval)
                        ):
                            break
                        if not self._ready and self._closing and self._syncer_done:
                            return
                        timeout = self.flush_interval - age if self._ready else None
                        self._wake_flusher.wait(timeout)
                    take = min(len(self._ready), self.batch_size)
                    batch = [self._ready.popleft() for _ in range(take)]
                    self._ready_since = time.monotonic()
                    if not self._ready and not self._pending:
                        self._flush_wanted = False
                self._store(batch)
                with self._lock:
                    self._done += len(batch)
                    self._inflight -= len(batch)
                    for record in batch:
                        assert record.segment is not None
                        record.segment.outstanding -= 1
                    for segment in {id(r.segment): r.segment for r in batch}.values():
                        self._release(segment)
                    self._space.notify_all()
        except BaseException as exc:
            log.exception("promptlake: the background logger's flusher failed")
            self._fail(exc)

    def _store(self, batch: list[_Record]) -> None:
        from .writer import _PendingScore

        writer = self._writer
        for record in batch:
            if record.kind == "session":
                writer._sessions[record.data["id"]] = record.data
            elif record.kind == "generation":
                writer._rows.append((record.item, record.data))
            else:
                writer._scores.append(_PendingScore(record.item, record.data))
        before = (writer.stats.stored, writer.stats.duplicates, writer.stats.scores_stored)
        try:
            writer.flush()
        except IngestInterruptedError as exc:  # kept in the writer's own journal file
            log.warning("promptlake: %s", exc)
            self.stats.journaled += exc.records
        self.stats.stored += writer.stats.stored - before[0]
        self.stats.duplicates += writer.stats.duplicates - before[1]
        self.stats.scores_stored += writer.stats.scores_stored - before[2]
        self.stats.flushes += 1

    def _release(self, segment: _Segment) -> None:
        """Delete a sealed segment all of whose records are stored (under the lock)."""
        if segment.sealed and segment.outstanding == 0 and segment.fd >= 0:
            segment.remove()
            self._segments.remove(segment)

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            if self._failure is None:
                self._failure = exc
            self._closing = True
            self._synced.notify_all()
            self._space.notify_all()
            self._wake_syncer.notify_all()
            self._wake_flusher.notify_all()
            self._resolve_async(exc)


class LoggerSession:
    """A session of a :class:`BackgroundLogger`: ``log`` appends at the next position."""

    def __init__(self, logger: BackgroundLogger, session_id: uuid.UUID) -> None:
        self.logger = logger
        self.id = session_id

    def __repr__(self) -> str:
        return f"<LoggerSession {self.id} of {self.logger.project.name!r}>"

    def log(self, **fields: Any) -> Generation:
        return self.logger.log(session=self.id, **fields)

    async def alog(self, **fields: Any) -> Generation:
        return await self.logger.alog(session=self.id, **fields)

    def __enter__(self) -> LoggerSession:
        return self

    def __exit__(self, *exc: object) -> None:
        pass  # sessions of the bulk path carry no end time


def _dump(line: dict[str, Any]) -> bytes:
    """One journal line, as ``journal.write`` writes it: the values JSON lacks tagged the
    way ``journal._encode`` tags them, found by the C encoder (``default``) instead of a
    walk in Python over every value first."""
    return (json.dumps(line, ensure_ascii=False, default=_tagged) + "\n").encode("utf-8")


def _tagged(value: Any) -> Any:
    encoded = journal._encode(value)
    if encoded is value:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")
    return encoded


def _settle(future: asyncio.Future, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


_live: weakref.WeakSet[BackgroundLogger] = weakref.WeakSet()


def _close_all() -> None:
    """Loggers left open at exit: flush what they hold (their threads are daemons)."""
    for logger in list(_live):
        try:
            logger.close()
        except Exception:
            log.exception("promptlake: closing a background logger at exit")


def _register_exit_flush() -> None:
    """Run ``_close_all`` at exit while thread pools still take work: a flush stages and
    indexes in pools, and ``concurrent.futures`` refuses new work once the interpreter's
    thread shutdown (which runs before ``atexit``) has begun. Hooks registered there run
    last-registered first, so this one runs before ``concurrent.futures`` closes."""
    import concurrent.futures.thread  # noqa: F401  (registers its own hook first)

    register = getattr(threading, "_register_atexit", None)
    if register is None:  # pragma: no cover - other interpreters
        atexit.register(_close_all)
    else:
        register(_close_all)


_register_exit_flush()
