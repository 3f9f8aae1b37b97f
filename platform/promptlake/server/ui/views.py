"""The UI's pages: plain Starlette endpoints that render Jinja2 templates.

Endpoints are synchronous functions (Starlette runs them in its thread pool), because all
their work is blocking database reads through the library. Each one resolves who is
asking (:func:`.auth.from_request`) before it reads anything: with no session an HTML
request is redirected to the sign-in page and any other gets 401, with nothing read.
Errors become pages with the library's own message: 404 for ids the principal cannot
see (another project's ids included: row-level security makes them indistinguishable
from ids that do not exist), 400 for bad input, 403 for what the role may not do.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from ...errors import NotFoundError, PermissionDeniedError, ValidationError
from ..keys import Authenticated, AuthError
from . import queries
from .auth import COOKIE, MAX_AGE_SECONDS, Signer, from_request, sign_in

if TYPE_CHECKING:
    from starlette.templating import Jinja2Templates

    from ...client import Project
    from ..app import State

PREFIX = "/ui"
PER_PAGE = 25
READ_ROLES = queries.READ_ROLES
SCORE_ROLES = ("admin", "writer")


class PageError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Ctx:
    """What a page handler gets: the request, who it acts as, and their project."""

    request: Request
    auth: Authenticated
    project: Project
    cookie: str | None  # the session cookie value (None for bearer requests)
    csrf: str

    @property
    def can_read(self) -> bool:
        return self.auth.role in READ_ROLES

    def need_read(self, what: str) -> None:
        if not self.can_read:
            raise PageError(
                403,
                f"a {self.auth.role} key may not read {what} (needs admin or analyst);"
                " the Project page shows this project's aggregates",
            )


def _state(request: Request) -> State:
    return request.app.state.promptlake


def _signer(request: Request) -> Signer:
    return request.app.state.promptlake_ui_signer


def _templates(request: Request) -> Jinja2Templates:
    return request.app.state.promptlake_ui_templates


def _project(request: Request, auth: Authenticated) -> Project:
    """The principal's handle on its project, kept between requests: a handle caches what
    costs a query to learn (the project's search embedder, at 100k rows a DISTINCT over
    its embeddings); the handle's lake acts as the principal (``State.project_for``)."""
    projects = request.app.state.promptlake_ui_projects
    key = (auth.principal, auth.project_id)
    found = projects.get(key)
    if found is None:
        found = projects.setdefault(key, _state(request).project_for(auth, "read"))
    return found


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def render(ctx: Ctx | None, request: Request, name: str, status: int = 200, **context: Any):
    base = {
        "auth": ctx.auth if ctx else None,
        "csrf": ctx.csrf if ctx else "",
        "prefix": PREFIX,
        "status": status,
    }
    response = _templates(request).TemplateResponse(
        request, name, {**base, **context}, status_code=status
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self';"
        " script-src 'self'; frame-ancestors 'none'; form-action 'self'"
    )
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def page(fn: Callable[[Ctx], Response]) -> Callable[[Request], Response]:
    """Authenticate, then run ``fn``; map library errors to error pages."""

    @functools.wraps(fn)
    def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        response = _endpoint(request)
        # the handler's time (auth, queries, template): what `promptlake bench ui` reports
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response

    def _endpoint(request: Request) -> Response:
        state = _state(request)
        signer = _signer(request)
        try:
            auth, by_cookie = from_request(state.lake, signer, request)
        except AuthError as exc:
            if request.headers.get("authorization") or not _wants_html(request):
                return PlainTextResponse(
                    f"401 unauthorized: {exc}", 401, headers={"WWW-Authenticate": "Bearer"}
                )
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            response = RedirectResponse(f"{PREFIX}/login?next={quote(target)}", 303)
            if request.cookies.get(COOKIE):
                response.delete_cookie(COOKIE, path=PREFIX)
            return response
        cookie = request.cookies.get(COOKIE) if by_cookie else None
        ctx = Ctx(
            request,
            auth,
            _project(request, auth),
            cookie,
            signer.csrf_token(cookie) if cookie else "",
        )
        try:
            return fn(ctx)
        except PageError as exc:
            return render(ctx, request, "error.html", exc.status, message=exc.message)
        except NotFoundError as exc:
            return render(ctx, request, "error.html", 404, message=str(exc))
        except ValidationError as exc:
            return render(ctx, request, "error.html", 400, message=str(exc))
        except PermissionDeniedError as exc:
            return render(ctx, request, "error.html", 403, message=str(exc))

    return endpoint


# -- helpers --------------------------------------------------------------------------


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise PageError(404, f"{value!r} is not a {what} id") from None


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise PageError(400, f"{name}: must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise PageError(400, f"{name}: must be between {low} and {high}, got {value}")
    return value


def _date(request: Request, name: str) -> dt.date | None:
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise PageError(400, f"{name}: must be a date (YYYY-MM-DD), got {raw!r}") from None


def _float(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise PageError(400, f"{name}: must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise PageError(400, f"{name}: must be a finite number")
    return value


@dataclass(frozen=True)
class Pager:
    page: int
    pages: int
    total: int
    first: int  # 1-based index of the page's first row
    last: int
    prev_url: str | None
    next_url: str | None


def pager(request: Request, page: int, per: int, total: int) -> Pager:
    pages = max(1, math.ceil(total / per))

    def url(n: int) -> str:
        params = dict(request.query_params)
        params["page"] = str(n)
        return f"{request.url.path}?{urlencode(params)}"

    return Pager(
        page,
        pages,
        total,
        min(total, (page - 1) * per + 1),
        min(total, page * per),
        url(page - 1) if page > 1 else None,
        url(page + 1) if page < pages else None,
    )


def sort_url(request: Request, key: str, current: str, descending: bool) -> str:
    params = dict(request.query_params)
    params.pop("page", None)
    params["sort"] = key
    params["dir"] = "asc" if key == current and descending else "desc"
    return f"{request.url.path}?{urlencode(params)}"


# -- sign-in --------------------------------------------------------------------------


def _safe_next(value: str | None) -> str:
    if value and value.startswith(PREFIX + "/") and not value.startswith("//"):
        return value
    return f"{PREFIX}/"


async def login(request: Request) -> Response:
    if request.method == "GET":
        return render(
            None, request, "login.html", next=_safe_next(request.query_params.get("next"))
        )
    form = await read_form(request)
    target = _safe_next(str(form.get("next") or ""))
    key = str(form.get("key") or "")
    import anyio.to_thread

    try:
        await anyio.to_thread.run_sync(sign_in, _state(request).lake, key)
    except AuthError as exc:
        return render(None, request, "login.html", 401, next=target, error=str(exc))
    response = RedirectResponse(target, 303)
    response.set_cookie(
        COOKIE,
        _signer(request).make(key.strip()),
        max_age=MAX_AGE_SECONDS,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse(f"{PREFIX}/login", 303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


async def read_form(request: Request, limit: int = 64 * 1024) -> dict[str, str]:
    """An urlencoded form (the UI's only kind), without python-multipart."""
    from urllib.parse import parse_qsl

    body = await request.body()
    if len(body) > limit:
        raise PageError(413, "the form is too large")
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def posted(fn: Callable[[Ctx], Response]) -> Callable[[Request], Any]:
    """A form POST: read the body here, then run the :func:`page` endpoint in a thread."""
    sync = page(fn)

    async def endpoint(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        try:
            request.state.form = await read_form(request)
        except PageError as exc:
            return PlainTextResponse(exc.message, exc.status)
        return await run_in_threadpool(sync, request)

    return endpoint


def check_csrf(ctx: Ctx, form: Any) -> None:
    """Writes from a cookie session must carry the page's token; bearer requests need none."""
    if ctx.cookie is None:
        return
    import hmac

    if not hmac.compare_digest(str(form.get("csrf") or ""), ctx.csrf):
        raise PageError(403, "the form's token is missing or stale: reload the page and retry")


def static_headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response
