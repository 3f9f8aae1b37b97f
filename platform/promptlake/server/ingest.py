"""Group commit for the server: many concurrent requests, one bulk-writer flush.

Each (project, principal) pair the server has authenticated gets an :class:`Ingestor`: a
thread owning one bulk :class:`~promptlake.ingest.writer.Writer`. Request handlers submit
their parsed items as a job and wait; the thread takes every job waiting (up to a batch),
logs their items into the writer under labels that say which job and which item, flushes
once (one transaction, binary COPY, the project's PII policy, ``ON CONFLICT DO NOTHING``)
and only then resolves each job with what was stored and what was rejected and why. So a
request is acknowledged only after its rows committed, and the cost of a commit is shared
by every request that arrived meanwhile.

A database that stays unreachable past a short retry fails the waiting jobs (the server
answers 503 with Retry-After; the exporter retries, and the ids derived from the data make
the retry store nothing twice); nothing is journaled behind the client's back. When more
items wait than ``max_pending``, :meth:`Ingestor.submit` refuses at once
(:class:`Overloaded`, 503), so the server sheds load instead of queueing without bound.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import DatabaseUnavailableError, Problem, ValidationError
from ..ingest.writer import Writer

if TYPE_CHECKING:
    from ..client import Project

log = logging.getLogger(__name__)


class Overloaded(Exception):
    """Too much is waiting to be written: shed this request (503 + Retry-After)."""


@dataclass
class Item:
    kind: str  # "generation" or "score"
    label: str  # where it came from, e.g. "spans[3]" or "items[0]"
    fields: dict[str, Any]
    prepared: tuple | None = None  # (row, anonymizer) validated by prepare()


@dataclass
class SessionDecl:
    id: uuid.UUID
    name: str | None = None
    end_user_id: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass
class Job:
    items: list[Item]
    sessions: list[SessionDecl] = field(default_factory=list)
    future: Future = field(default_factory=Future)
    refused: list[tuple[str, list[Problem]]] = field(default_factory=list)


SEARCH_FIELDS = ("retrieved", "embedding", "embedder")


def prepare(job: Job, project: Project) -> Job:
    """Validate the job's generations in the request's thread, as ``Writer.log`` would (the
    same ``Project._validate``), so the writer thread only buffers and flushes them; the
    ones refused go to ``job.refused`` with their problems."""
    kept = []
    for item in job.items:
        if item.kind == "generation" and not any(k in item.fields for k in SEARCH_FIELDS):
            try:
                item.prepared = project._validate(item.fields)
            except ValidationError as exc:
                job.refused.append((item.label, list(exc.problems)))
                continue
        kept.append(item)
    job.items = kept
    return job


@dataclass
class JobResult:
    accepted: list[tuple[str, uuid.UUID]]  # (label, id) of what is stored (new or already)
    rejected: list[tuple[str, list[Problem]]]


class _ServerWriter(Writer):
    """The bulk writer, but a flush that cannot reach the database fails (the client
    retries) instead of journaling locally, and leaves nothing buffered behind."""

    def _journal(self, cause: Exception) -> None:
        self.reset()
        raise cause

    def reset(self) -> None:
        self._rows, self._sessions, self._scores = [], {}, []
        self._anonymize.clear()
        self._search.clear()

    def log_row(self, label: str, row: Any, anonymize: Any) -> uuid.UUID:
        """``log`` for a row :func:`prepare` validated already (same buffering)."""
        self._count += 1
        if anonymize is not None:
            self._anonymize[id(row)] = anonymize
        self._rows.append((label, row))
        return row.id

    def declare_session(self, decl: SessionDecl) -> None:
        self.session(
            id=decl.id, name=decl.name, end_user_id=decl.end_user_id, metadata=decl.metadata
        )
        # OTLP spans carry times, not positions: the flush numbers a session's turns
        # from its counter, parents first and then in id (start time) order


class Ingestor:
    """One writer thread for one project and principal (see the module docstring)."""

    def __init__(
        self,
        project: Project,
        *,
        batch_items: int = 5000,
        max_pending: int = 50_000,
        retry_seconds: float = 2.0,
    ) -> None:
        self.project = project
        self.batch_items = batch_items
        self.max_pending = max_pending
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self._writer = _ServerWriter(project, batch_size=10**9, retry_seconds=retry_seconds)
        self._sessions: OrderedDict[uuid.UUID, None] = OrderedDict()  # declared, bounded
        self._closed = False
        self.batches = 0
        self._thread = threading.Thread(
            target=self._run, name=f"promptlake-ingest-{project.name}", daemon=True
        )
        self._thread.start()

    @property
    def pending(self) -> int:
        return self._pending

    def submit(self, job: Job) -> Future:
        size = max(1, len(job.items))
        with self._lock:
            if self._closed:
                raise Overloaded("the server is shutting down")
            if self._pending and self._pending + size > self.max_pending:
                raise Overloaded(f"{self._pending} items are waiting to be written")
            self._pending += size
        self._queue.put(job)
        return job.future

    def close(self, timeout: float = 60.0) -> None:
        """Write everything submitted, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)

    # -- the thread ---------------------------------------------------------------------

    def _take(self) -> tuple[list[Job], bool]:
        first = self._queue.get()
        if first is None:
            return [], True
        jobs, size, stop = [first], len(first.items), False
        while size < self.batch_items:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                stop = True
                break
            jobs.append(job)
            size += len(job.items)
        return jobs, stop

    def _run(self) -> None:
        while True:
            jobs, stop = self._take()
            if jobs:
                self._write(jobs)
            if stop:
                # drain what raced with close()
                rest = []
                while not self._queue.empty():
                    job = self._queue.get_nowait()
                    if job is not None:
                        rest.append(job)
                if rest:
                    self._write(rest)
                return

    def _write(self, jobs: list[Job]) -> None:
        w = self._writer
        started = time.monotonic()
        labels: dict[str, tuple[int, str]] = {}
        ids: dict[str, uuid.UUID | None] = {}
        try:
            for n, job in enumerate(jobs):
                for decl in job.sessions:
                    if decl.id not in self._sessions:
                        try:
                            w.declare_session(decl)
                        except ValidationError as exc:  # its generations are refused below
                            log.warning("promptlake serve: session %s refused: %s", decl.id, exc)
                for item in job.items:
                    label = f"{n}:{item.label}"
                    labels[label] = (n, item.label)
                    if item.kind == "score":
                        ids[label] = w.score(item=label, **item.fields)
                    elif item.prepared is not None:
                        ids[label] = w.log_row(label, *item.prepared)
                    else:
                        ids[label] = w.log(item=label, **item.fields)
            w.flush()
            self._retry_children(jobs, labels, ids)
        except DatabaseUnavailableError as exc:
            w.reset()
            w.stats.rejected.clear()
            self._fail(jobs, exc)
            return
        except Exception as exc:  # a bug or a refusal: the requests learn of it, the thread lives
            log.exception("promptlake serve: a batch failed")
            w.reset()
            w.stats.rejected.clear()
            self._fail(jobs, exc)
            return
        for job in jobs:
            for decl in job.sessions:
                self._sessions[decl.id] = None
        while len(self._sessions) > 100_000:
            self._sessions.popitem(last=False)
        rejected: dict[int, list[tuple[str, list[Problem]]]] = {}
        refused: set[str] = set()
        for rejection in w.stats.rejected:
            n, label = labels.get(rejection.item, (-1, rejection.item))
            refused.add(rejection.item)
            rejected.setdefault(n, []).append((label, list(rejection.problems)))
        w.stats.rejected.clear()
        for n, job in enumerate(jobs):
            accepted = [
                (item.label, ids[f"{n}:{item.label}"])
                for item in job.items
                if f"{n}:{item.label}" not in refused and ids.get(f"{n}:{item.label}") is not None
            ]
            self._resolve(job, JobResult(accepted, job.refused + rejected.get(n, [])))
        self.batches += 1
        log.debug("flushed %d jobs in %.3f s", len(jobs), time.monotonic() - started)

    def _retry_children(self, jobs: list[Job], labels: dict, ids: dict) -> None:
        """Log again (and flush) the items refused only because their parent was not
        stored yet when they were inserted (a parent later in the batch's id order: a
        clock that ran behind), now that the parent is; a few rounds at most."""
        w = self._writer
        fields = {
            f"{n}:{item.label}": item.fields
            for n, job in enumerate(jobs)
            for item in job.items
            if item.kind == "generation"
        }
        for _ in range(3):
            refused = {r.item for r in w.stats.rejected}
            stored = {ids[label] for label in labels if label not in refused and ids.get(label)}
            retry = [
                r
                for r in w.stats.rejected
                if r.item in fields
                and all(p.field == "parent" for p in r.problems)
                and fields[r.item].get("parent") in stored
            ]
            if not retry:
                return
            for rejection in retry:
                w.stats.rejected.remove(rejection)
                ids[rejection.item] = w.log(item=rejection.item, **fields[rejection.item])
            w.flush()

    def _resolve(self, job: Job, result: Any) -> None:
        with self._lock:
            self._pending -= max(1, len(job.items))
        if not job.future.done():
            job.future.set_result(result)

    def _fail(self, jobs: list[Job], exc: Exception) -> None:
        for job in jobs:
            with self._lock:
                self._pending -= max(1, len(job.items))
            if not job.future.done():
                job.future.set_exception(exc)
