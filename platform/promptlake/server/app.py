"""The ASGI application of ``promptlake serve`` (Starlette).

Routes:

=========================  ==================================================================
``GET /healthz``           the process is up
``GET /readyz``            the database answers and is at the schema this code expects (503 if not)
``POST /v1/traces``        OTLP/HTTP traces, protobuf or JSON, gzip or not (``otlp.py``)
``POST /v1/generations``   a JSON batch of ``Project.log`` fields, per-item errors
``POST /v1/scores``        a JSON batch of scores, per-item errors
``GET /v1/generations/ID`` one generation (admin and analyst keys)
``GET /v1/usage``          the ``project_usage`` aggregates (every role that may read them)
=========================  ==================================================================

Every ``/v1`` request carries ``Authorization: Bearer <key>``; the key names a project, a
principal and a role (``keys.py``), and the request's database work runs as that principal
(``promptlake_app`` with ``promptlake.principal`` set), so row-level security decides what it
may do as for any other client. A request is rate limited per key (token bucket: 429 with
Retry-After), and writes are answered only after they committed (``ingest.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import DatabaseUnavailableError, NotFoundError, PromptLakeError
from . import otlp
from .ingest import Ingestor, JobResult, Overloaded, prepare
from .jobs import SpanRegistry, batch_job, problems_json, trace_job
from .keys import Authenticated, AuthError, authenticate, bearer_key

if TYPE_CHECKING:
    from ..client import Lake, Project

log = logging.getLogger(__name__)

WRITE_ROLES = ("admin", "writer")
READ_ROLES = ("admin", "analyst")


@dataclass
class ServerConfig:
    max_body_bytes: int = 16 * 1024 * 1024  # decompressed; 413 beyond
    rate_per_second: float = 200.0  # per key, unless the key sets its own
    burst_seconds: float = 2.0  # bucket size = rate * burst_seconds
    max_pending_items: int = 50_000  # waiting to be written, per project and principal
    batch_items: int = 5000
    retry_seconds: float = 2.0  # a flush retries this long before the request gets 503


class HTTPError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class TokenBucket:
    def __init__(self, rate: float, capacity: float) -> None:
        self.rate, self.capacity = rate, max(1.0, capacity)
        self.tokens, self.at = self.capacity, time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> float:
        """0 if a request may go now, else the seconds until it may."""
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate


class State:
    """What the app shares between requests: the lake, a lake per principal, the writer
    threads, rate limit buckets and the span registry per project."""

    def __init__(self, lake: Lake, config: ServerConfig) -> None:
        self.lake = lake
        self.config = config
        self.lock = threading.Lock()
        self.lakes: dict[tuple[str, str], Lake] = {}
        self.ingestors: dict[tuple[uuid.UUID, str], Ingestor] = {}
        self.buckets: dict[uuid.UUID, TokenBucket] = {}
        self.registries: dict[uuid.UUID, SpanRegistry] = {}
        self.closing = False

    def lake_for(self, principal: str, purpose: str) -> Lake:
        """A Lake acting as ``principal`` on the shared engine (one for the writer thread,
        one for reads, so their per-transaction caches never mix)."""
        with self.lock:
            found = self.lakes.get((principal, purpose))
            if found is None:
                found = self.lake.acting_as(principal)
                self.lakes[(principal, purpose)] = found
            return found

    def project_for(self, auth: Authenticated, purpose: str) -> Project:
        """The project as the key's principal (kept, so its PII policy cache lives on)."""
        from ..client import Project

        lake = self.lake_for(auth.principal, purpose)
        with self.lock:
            found = lake._projects.get(auth.project_name)
            if found is None or found.id != auth.project_id:
                found = Project(lake, auth.project_id, auth.project_name)
                lake._projects[auth.project_name] = found
            return found

    def ingestor(self, auth: Authenticated) -> Ingestor:
        with self.lock:
            if self.closing:
                raise Overloaded("the server is shutting down")
            found = self.ingestors.get((auth.project_id, auth.principal))
        if found is None:
            project = self.project_for(auth, "write")
            created = Ingestor(
                project,
                batch_items=self.config.batch_items,
                max_pending=self.config.max_pending_items,
                retry_seconds=self.config.retry_seconds,
            )
            with self.lock:
                found = self.ingestors.setdefault((auth.project_id, auth.principal), created)
            if found is not created:
                created.close()
        return found

    def registry(self, project_id: uuid.UUID) -> SpanRegistry:
        with self.lock:
            return self.registries.setdefault(project_id, SpanRegistry())

    def bucket(self, auth: Authenticated) -> TokenBucket:
        rate = auth.rate_per_second or self.config.rate_per_second
        with self.lock:
            found = self.buckets.get(auth.key_id)
            if found is None or found.rate != rate:
                found = TokenBucket(rate, rate * self.config.burst_seconds)
                self.buckets[auth.key_id] = found
            return found

    def close(self) -> None:
        """Graceful shutdown: everything submitted is written before this returns."""
        with self.lock:
            self.closing = True
            ingestors = list(self.ingestors.values())
        for ingestor in ingestors:
            ingestor.close()


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


async def _authorize(request: Request, roles: tuple[str, ...]) -> Authenticated:
    state: State = request.app.state.promptlake
    try:
        key = bearer_key(request.headers.get("authorization"))
        auth = await anyio.to_thread.run_sync(authenticate, state.lake, key)
    except AuthError as exc:
        raise HTTPError(401, str(exc), {"WWW-Authenticate": "Bearer"}) from None
    except DatabaseUnavailableError as exc:
        raise HTTPError(503, f"the database is unavailable: {exc}", _retry_after(2)) from None
    wait = state.bucket(auth).take()
    if wait:
        raise HTTPError(429, "rate limit of this API key exceeded", _retry_after(wait))
    if auth.role not in roles:
        verb = "write" if roles == WRITE_ROLES else "read this"
        raise HTTPError(403, f"a {auth.role} key may not {verb} (needs {' or '.join(roles)})")
    return auth


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _body(request: Request, limit: int) -> bytes:
    """The decompressed body, at most ``limit`` bytes (413 past it, read or inflated)."""
    declared = request.headers.get("content-length")
    wire_limit = limit + 1024 * 1024
    if declared and declared.isdigit() and int(declared) > wire_limit:
        raise HTTPError(413, f"the body is {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > wire_limit:
            raise HTTPError(413, f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    try:
        return otlp.inflate(b"".join(chunks), request.headers.get("content-encoding", ""), limit)
    except otlp.TooLarge as exc:
        raise HTTPError(413, str(exc)) from None
    except otlp.BadRequest as exc:
        raise HTTPError(400, str(exc)) from None


async def _submit(state: State, auth: Authenticated, job: Any) -> JobResult:
    try:
        future = state.ingestor(auth).submit(job)
    except Overloaded as exc:
        raise HTTPError(503, f"overloaded: {exc}; retry later", _retry_after(1)) from None
    try:
        return await asyncio.wrap_future(future)
    except DatabaseUnavailableError as exc:
        raise HTTPError(503, f"the database is unavailable: {exc}", _retry_after(2)) from None
    except PromptLakeError as exc:
        raise HTTPError(
            403 if "permission" in type(exc).__name__.lower() else 500, str(exc)
        ) from None


def _handler(fn):
    async def wrapped(request: Request) -> Response:
        try:
            return await fn(request)
        except HTTPError as exc:
            return _error(exc.status, exc.message, exc.headers)
        except Exception:
            log.exception("promptlake serve: %s %s failed", request.method, request.url.path)
            return _error(500, "internal error (see the server log)")

    return wrapped


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _ready(state: State) -> tuple[bool, str]:
    from ..db import migrate

    try:
        with state.lake.engine.connect() as conn:
            row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").fetchone()
            conn.rollback()
    except Exception as exc:
        return False, f"database unreachable: {type(exc).__name__}"
    head = migrate.head_revision()
    if row is None or row[0] != head:
        return False, f"schema at {row[0] if row else None}, expected {head}: run promptlake init"
    return True, "ready"


async def readyz(request: Request) -> Response:
    state: State = request.app.state.promptlake
    if state.closing:
        return _error(503, "shutting down")
    ok, reason = await anyio.to_thread.run_sync(_ready, state)
    return JSONResponse({"status": reason}, status_code=200 if ok else 503)


@_handler
async def traces(request: Request) -> Response:
    state: State = request.app.state.promptlake
    auth = await _authorize(request, WRITE_ROLES)
    media = _media_type(request)
    if media not in (otlp.PROTOBUF, otlp.JSON):
        raise HTTPError(415, f"Content-Type must be {otlp.PROTOBUF} or {otlp.JSON}, not {media!r}")
    body = await _body(request, state.config.max_body_bytes)
    registry = state.registry(auth.project_id)

    project = state.project_for(auth, "write")

    def parse() -> tuple[Any, list[str]]:
        spans = otlp.spans(otlp.parse_request(body, media))
        job, problems = trace_job(spans, auth.project_id, registry)
        return prepare(job, project), problems

    try:
        job, problems = await anyio.to_thread.run_sync(parse)
    except otlp.BadRequest as exc:
        raise HTTPError(400, str(exc)) from None
    if job.items or job.refused:
        result = await _submit(state, auth, job) if job.items else JobResult([], job.refused)
        registry.stored(gid for _, gid in result.accepted)
        problems += [
            f"{label}: " + "; ".join(f"{p.field}: {p.reason}" for p in errs)
            for label, errs in result.rejected
        ]
    message = "; ".join(problems[:20]) + (
        f"; and {len(problems) - 20} more" if len(problems) > 20 else ""
    )
    return Response(otlp.response_body(len(problems), message, media), media_type=media)


async def _json_batch(request: Request, kind: str) -> Response:
    state: State = request.app.state.promptlake
    auth = await _authorize(request, WRITE_ROLES)
    media = _media_type(request)
    if media != otlp.JSON:
        raise HTTPError(415, f"Content-Type must be {otlp.JSON}, not {media!r}")
    body = await _body(request, state.config.max_body_bytes)
    project = state.project_for(auth, "write")

    def parse() -> tuple[Any, list, int]:
        job, refused, count = batch_job(json.loads(body), kind)
        return prepare(job, project), refused, count

    try:
        job, refused, count = await anyio.to_thread.run_sync(parse)
    except ValueError as exc:  # JSONDecodeError is one
        raise HTTPError(400, f"malformed batch: {exc}") from None
    accepted: list[tuple[str, uuid.UUID]] = []
    rejected = list(refused)
    if job.items or job.refused:
        result = await _submit(state, auth, job) if job.items else JobResult([], job.refused)
        accepted = result.accepted
        for entry in problems_json(result.rejected):
            entry["index"] = int(entry["item"].rsplit("[", 1)[-1].rstrip("]"))  # "generations[3]"
            rejected.append(entry)
    rejected.sort(key=lambda e: e["index"])
    status = 200 if accepted or not count else 422
    return JSONResponse(
        {"accepted": len(accepted), "ids": [str(i) for _, i in accepted], "rejected": rejected},
        status_code=status,
    )


@_handler
async def generations(request: Request) -> Response:
    return await _json_batch(request, "generation")


@_handler
async def scores(request: Request) -> Response:
    return await _json_batch(request, "score")


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(dataclasses.asdict(value), default=str))


@_handler
async def generation(request: Request) -> Response:
    state: State = request.app.state.promptlake
    auth = await _authorize(request, READ_ROLES)
    try:
        gid = uuid.UUID(request.path_params["gid"])
    except ValueError:
        raise HTTPError(400, "the generation id must be a UUID") from None
    project = state.project_for(auth, "read")
    try:
        found = await anyio.to_thread.run_sync(project.generation, gid)
    except NotFoundError as exc:
        raise HTTPError(404, str(exc)) from None
    return JSONResponse(_plain(found))


@_handler
async def usage(request: Request) -> Response:
    state: State = request.app.state.promptlake
    auth = await _authorize(request, ("admin", "analyst", "viewer"))
    project = state.project_for(auth, "read")
    columns, rows = await anyio.to_thread.run_sync(
        project.query, "SELECT * FROM project_usage ORDER BY day, model"
    )
    return JSONResponse(
        [json.loads(json.dumps(dict(zip(columns, r, strict=True)), default=str)) for r in rows]
    )


def create_app(
    lake: Lake, config: ServerConfig | None = None, *, own_lake: bool = False
) -> Starlette:
    """The app over ``lake``; with ``own_lake`` it closes the lake on shutdown."""
    state = State(lake, config or ServerConfig())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(state.close)
            if own_lake:
                lake.close()

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/v1/traces", traces, methods=["POST"]),
            Route("/v1/generations", generations, methods=["POST"]),
            Route("/v1/scores", scores, methods=["POST"]),
            Route("/v1/generations/{gid}", generation, methods=["GET"]),
            Route("/v1/usage", usage, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.promptlake = state
    from .ui import mount as mount_ui  # the web UI under /ui (issue 18)

    mount_ui(app)
    return app
