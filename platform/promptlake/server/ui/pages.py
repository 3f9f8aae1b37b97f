"""Page handlers: project, sessions, a session, a generation, search, datasets, runs, review.

Each handler reads through the library (``Project.history``, ``generation``, ``search``,
``similar``, ``datasets``, ``score``) or :mod:`.queries`, always as the signed-in
principal, and renders one template. Lists sort and page on the server; every state of a
page (filters, sort, page, the review queue's position) lives in its URL, so links can be
shared.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from starlette.responses import RedirectResponse, Response

from ...errors import NotFoundError, PermissionDeniedError, ValidationError
from . import charts, queries, thread
from .cache import StaleWhileRevalidate
from .views import (
    PER_PAGE,
    PREFIX,
    SCORE_ROLES,
    Ctx,
    PageError,
    _date,
    _float,
    _int,
    _uuid,
    check_csrf,
    page,
    pager,
    posted,
    render,
    sort_url,
)

AGGREGATES = StaleWhileRevalidate()  # the project page's counts and usage (cache.py)
MAX_TURNS = 500  # turns shown on a session page (the rest: its generations' pages)


def _mlflow_url(run_id: str | None) -> str | None:
    base = os.environ.get("PROMPTLAKE_MLFLOW_UI_URL", "").rstrip("/")
    return f"{base}/#/runs/{run_id}" if base and run_id else None


@page
def home(ctx: Ctx) -> Response:
    return RedirectResponse(f"{PREFIX}/project", 303)


@page
def project(ctx: Ctx) -> Response:
    days = _int(ctx.request, "days", 30, 1, 366)
    until = dt.datetime.now(dt.UTC).date()
    since = until - dt.timedelta(days=days - 1)
    fresh = ctx.request.query_params.get("fresh") == "1"  # skip the cache (bench, tests)

    wanted = ctx.request.query_params.get("score") or None

    def compute() -> tuple[list[dict], dict[str, int], Any]:
        usage = queries.usage(ctx.project, ctx.auth.role, since)
        if not ctx.can_read:
            return usage, {}, None
        names = queries.score_names(ctx.project)
        score = wanted if wanted in names else (names[0] if names else None)
        report = None
        if score is not None:  # behaviour over time: issue 22's trends, drops flagged
            report = ctx.project.experiments.trends(score, by="day", since=since)
        return usage, queries.counts(ctx.project), (names, score, report)

    key = (ctx.project.id, ctx.auth.principal, ctx.auth.role, since, wanted)
    if fresh:
        (usage, counts, trend), at = compute(), time.time()
    else:
        (usage, counts, trend), at = AGGREGATES.get(key, compute)
    names, score, report = trend or ([], None, None)
    trend_svg, alerts = charts.trend_chart(report, since, until) if report else (None, [])
    totals = {
        "calls": sum(int(r["calls"] or 0) for r in usage),
        "errors": sum(int(r["errors"] or 0) for r in usage),
        "tokens": sum(int(r["tokens"] or 0) for r in usage),
        "cost_usd": sum(float(r["cost_usd"] or 0) for r in usage),
    }
    return render(
        ctx,
        ctx.request,
        "project.html",
        title=f"{ctx.auth.project_name} · project",
        counts=counts,
        totals=totals,
        days=days,
        since=since,
        until=until,
        panels=charts.usage_charts(usage, since, until),
        score_names=names,
        score=score,
        trend_svg=trend_svg,
        alerts=alerts,
        as_of=dt.datetime.fromtimestamp(at, dt.UTC),
        ttl=int(AGGREGATES.ttl),
    )


@page
def sessions(ctx: Ctx) -> Response:
    ctx.need_read("sessions")
    request = ctx.request
    sort = request.query_params.get("sort", "started")
    if sort not in queries.SESSION_SORTS:
        raise PageError(400, f"sort: must be one of {', '.join(queries.SESSION_SORTS)}")
    descending = request.query_params.get("dir", "desc") != "asc"
    number = _int(request, "page", 1, 1, 1_000_000)
    end_user = request.query_params.get("user") or None
    found, total = queries.sessions_page(
        ctx.project,
        sort=sort,
        descending=descending,
        offset=(number - 1) * PER_PAGE,
        limit=PER_PAGE,
        end_user=end_user,
    )
    return render(
        ctx,
        request,
        "sessions.html",
        title=f"Sessions · {ctx.auth.project_name}",
        sessions=found,
        pager=pager(request, number, PER_PAGE, total),
        sort=sort,
        descending=descending,
        end_user=end_user or "",
        sort_urls={k: sort_url(request, k, sort, descending) for k in queries.SESSION_SORTS},
    )


def _turns(ctx: Ctx, gens: list) -> list[dict[str, Any]]:
    """What the thread template needs per generation."""
    side = queries.extras(ctx.project, [g.id for g in gens])
    nodes = thread.chain(gens)
    out = []
    for g, node in zip(gens, nodes, strict=True):
        extra = side[g.id]
        pii_types = {f["entity_type"] for f in extra.pii}
        context, new = thread.split_turn(g.input_messages)
        out.append(
            {
                "g": g,
                "node": node,
                "extra": extra,
                "context": [(m.role, thread.mark_pii(m.text, pii_types)) for m in context],
                "new": [(m.role, thread.mark_pii(m.text, pii_types)) for m in new],
                "input_text": thread.mark_pii(g.input_text, pii_types)
                if g.input_text and not g.input_messages
                else None,
                "output": thread.mark_pii(g.output or "", pii_types),
                "parent_turn": node.parent_index + 1 if node.parent_index is not None else None,
            }
        )
    return out


def _labels(gens: list) -> list[str]:
    return [
        f"#{i + 1} {g.model or ''} {'error' if g.status == 'error' else ''}".strip()
        for i, g in enumerate(gens)
    ]


@page
def session(ctx: Ctx) -> Response:
    ctx.need_read("sessions")
    sid = _uuid(ctx.request.path_params["sid"], "session")
    found = queries.session(ctx.project, sid)
    if found is None:
        raise NotFoundError(f"no session {sid} in project {ctx.auth.project_name!r}")
    gens = ctx.project.history(sid)
    shown = gens[:MAX_TURNS]
    turns = _turns(ctx, shown)
    totals = {
        "tokens": sum(g.total_tokens or 0 for g in gens),
        "cost_usd": sum(float(g.cost_usd or 0) for g in gens),
        "latency_ms": sum(g.latency_ms or 0 for g in gens),
        "errors": sum(g.status == "error" for g in gens),
    }
    return render(
        ctx,
        ctx.request,
        "session.html",
        title=f"Session {found['name'] or str(sid)[-8:]} · {ctx.auth.project_name}",
        session=found,
        turns=turns,
        total_turns=len(gens),
        totals=totals,
        chain=thread.chain_svg([t["node"] for t in turns], _labels(shown)),
        branches=sum(t["node"].branch for t in turns),
    )


@page
def generation(ctx: Ctx) -> Response:
    ctx.need_read("generations")
    gid = _uuid(ctx.request.path_params["gid"], "generation")
    g = ctx.project.generation(gid)
    turn = _turns(ctx, [g])[0]
    try:
        similar = ctx.project.similar(gid, 8)
        similar_note = None
    except NotFoundError as exc:
        similar, similar_note = [], str(exc)
    return render(
        ctx,
        ctx.request,
        "generation.html",
        title=f"Generation {str(gid)[-8:]} · {ctx.auth.project_name}",
        t=turn,
        g=g,
        session=queries.session(ctx.project, g.session_id) if g.session_id else None,
        prompt=queries.prompt_version(ctx.project, g.prompt_version_id),
        run=queries.run(ctx.project, g.run_id),
        mlflow_url=_mlflow_url,
        dups=queries.duplicates(ctx.project, gid, g.content_hash),
        similar=similar,
        similar_note=similar_note,
        highlight=thread.highlight,
        can_score=ctx.auth.role in SCORE_ROLES,
    )


@page
def attachment(ctx: Ctx) -> Response:
    ctx.need_read("attachments")
    aid = _uuid(ctx.request.path_params["aid"], "attachment")
    found = queries.attachment(ctx.project, aid)
    if found is None:
        raise NotFoundError(f"no attachment {aid} in project {ctx.auth.project_name!r}")
    if found["data"] is None:
        if found["uri"] and found["uri"].startswith(("http://", "https://")):
            return RedirectResponse(found["uri"], 303)
        raise NotFoundError(f"attachment {aid} is stored outside promptlake: {found['uri']}")
    mime = found["mime_type"] or "application/octet-stream"
    inline = found["kind"] in ("image", "audio", "video") and mime.split("/")[0] in (
        "image",
        "audio",
        "video",
    )
    if mime in ("image/svg+xml", "text/html"):  # active content: never shown inline
        inline, mime = False, "application/octet-stream"
    disposition = (
        "inline" if inline and "download" not in ctx.request.query_params else "attachment"
    )
    return Response(
        bytes(found["data"]),
        media_type=mime,
        headers={
            "Content-Disposition": f'{disposition}; filename="{aid}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, max-age=300",
        },
    )


SEARCH_MODES = ("hybrid", "text", "vector")
SEARCH_PER_PAGE = 20


@page
def search(ctx: Ctx) -> Response:
    ctx.need_read("generations")
    request = ctx.request
    q = request.query_params.get("q", "").strip()
    mode = request.query_params.get("mode", "hybrid")
    if mode not in SEARCH_MODES:
        raise PageError(400, f"mode: must be one of {', '.join(SEARCH_MODES)}")
    number = _int(request, "page", 1, 1, 1000 // SEARCH_PER_PAGE)
    form = {
        k: request.query_params.get(k, "")
        for k in ("model", "origin", "tag", "user", "since", "until", "score", "min", "max")
    }
    filters: dict[str, Any] = {}
    if form["model"]:
        filters["model"] = form["model"]
    if form["origin"]:
        if form["origin"] not in ("real", "synthetic"):
            raise PageError(400, "origin: must be real or synthetic")
        filters["origin"] = form["origin"]
    if form["tag"]:
        filters["tags"] = [form["tag"]]
    if form["user"]:
        filters["end_user"] = form["user"]
    since, until = _date(request, "since"), _date(request, "until")
    if since:
        filters["since"] = dt.datetime.combine(since, dt.time(), dt.UTC)
    if until:
        filters["until"] = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.UTC)
    low, high = _float(request, "min"), _float(request, "max")
    if form["score"]:
        filters["score"] = (form["score"], low, high)
    elif low is not None or high is not None:
        raise PageError(400, "score: name the score that min/max apply to")
    hits: list = []
    more = False
    if q:
        wanted = number * SEARCH_PER_PAGE
        found = ctx.project.search(q, min(1000, wanted + 1), mode=mode, **filters)
        more = len(found) > wanted
        hits = found[(number - 1) * SEARCH_PER_PAGE : wanted]
    info = queries.previews(ctx.project, [h.generation_id for h in hits])

    def page_url(n: int) -> str:
        params = dict(request.query_params)
        params["page"] = str(n)
        return f"{request.url.path}?{urlencode(params)}"

    return render(
        ctx,
        request,
        "search.html",
        title=(f"{q} · search" if q else "Search") + f" · {ctx.auth.project_name}",
        q=q,
        mode=mode,
        form=form,
        hits=[(h, thread.highlight(h.snippet), info.get(h.generation_id, {})) for h in hits],
        page=number,
        first=(number - 1) * SEARCH_PER_PAGE,
        prev_url=page_url(number - 1) if number > 1 else None,
        next_url=page_url(number + 1) if more else None,
        models=queries.models(ctx.project),
        modes=SEARCH_MODES,
    )


@page
def datasets(ctx: Ctx) -> Response:
    ctx.need_read("datasets")
    versions = ctx.project.datasets.list()
    request = ctx.request
    a, b = request.query_params.get("a"), request.query_params.get("b")
    diff = ctx.project.datasets.diff(a, b) if a and b else None
    return render(
        ctx,
        request,
        "datasets.html",
        title=f"Datasets · {ctx.auth.project_name}",
        versions=versions,
        diff=diff,
        a=a or "",
        b=b or "",
        lineage=queries.lineage(ctx.project),
        mlflow_url=_mlflow_url,
    )


@page
def runs(ctx: Ctx) -> Response:
    ctx.need_read("runs")
    number = _int(ctx.request, "page", 1, 1, 1_000_000)
    found, total = queries.runs_page(ctx.project, (number - 1) * PER_PAGE, PER_PAGE)
    return render(
        ctx,
        ctx.request,
        "runs.html",
        title=f"Runs · {ctx.auth.project_name}",
        runs=found,
        pager=pager(ctx.request, number, PER_PAGE, total),
        mlflow_url=_mlflow_url,
    )


@page
def run(ctx: Ctx) -> Response:
    ctx.need_read("runs")
    rid = _uuid(ctx.request.path_params["rid"], "run")
    found = queries.run(ctx.project, rid)
    if found is None:
        raise NotFoundError(f"no run {rid} in project {ctx.auth.project_name!r}")
    return render(
        ctx,
        ctx.request,
        "run.html",
        title=f"Run {found['name']} · {ctx.auth.project_name}",
        run=found,
        metrics=queries.run_metrics(ctx.project, rid) or {},
        mlflow_url=_mlflow_url,
    )


def _queue(params: Any) -> queries.Queue:
    name = (params.get("score") or "quality").strip()
    origin = params.get("origin") or None
    if origin not in (None, "real", "synthetic"):
        raise PageError(400, "origin: must be real or synthetic")
    return queries.Queue(
        score=name,
        model=params.get("model") or None,
        origin=origin,
        tag=params.get("tag") or None,
        include_done=params.get("done") == "1",
    )


def _review_url(queue: queries.Queue, at: uuid.UUID | None = None, **extra: str) -> str:
    params = queue.params()
    if at is not None:
        params["at"] = str(at)
    params.update(extra)
    return f"{PREFIX}/review?{urlencode(params)}"


@page
def review(ctx: Ctx) -> Response:
    ctx.need_read("generations to review")
    request = ctx.request
    queue = _queue(request.query_params)
    at = request.query_params.get("at")
    current: uuid.UUID | None = _uuid(at, "generation") if at else None
    _, left = queries.queue_item(ctx.project, queue)
    if current is None:
        current, _ = queries.queue_item(ctx.project, queue)
    turn = g = None
    if current is not None:
        g = ctx.project.generation(current)
        turn = _turns(ctx, [g])[0]
    following, _ = queries.queue_item(ctx.project, queue, current) if current else (None, 0)
    return render(
        ctx,
        request,
        "review.html",
        title=f"Review {queue.score} · {ctx.auth.project_name}",
        queue=queue,
        left=left,
        cap=queries.QUEUE_COUNT_CAP,
        g=g,
        t=turn,
        skip_url=_review_url(queue, following) if following else None,
        done_url=_review_url(queue, None, end="1"),
        models=queries.models(ctx.project),
        can_score=ctx.auth.role in SCORE_ROLES,
        message=request.query_params.get("msg"),
        finished=request.query_params.get("end") == "1",
    )


def _value(raw: str) -> float | bool | str:
    text = raw.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return float(text)
    except ValueError:
        return text


@posted
def review_score(ctx: Ctx) -> Response:
    form = ctx.request.state.form
    check_csrf(ctx, form)
    queue = _queue(form)
    gid = _uuid(form.get("generation", ""), "generation")
    # a typed label wins over the digit button that Enter in the label field submits
    raw = (form.get("label") or "").strip() or (form.get("value") or "").strip()
    if not raw:
        raise PageError(400, "value: give a score (a number) or a label")
    try:  # written with the key's role: the database's policies decide, as for any client
        ctx.project.score(
            gid,
            queue.score,
            _value(raw),
            source="human",
            author=ctx.auth.principal,
            comment=form.get("comment") or None,
        )
    except PermissionDeniedError as exc:
        raise PageError(
            403,
            f"a {ctx.auth.role} key may not add scores (admins and writers may): the database"
            f" refused it and nothing was stored ({exc})",
        ) from None
    except ValidationError as exc:
        raise PageError(400, str(exc)) from None
    following, _ = queries.queue_item(ctx.project, queue, gid)
    if form.get("back"):  # scored from a generation's page
        return RedirectResponse(f"{PREFIX}/generations/{gid}#scores", 303)
    msg = f"scored {queue.score} = {raw}"
    if following is None:
        return RedirectResponse(_review_url(queue, None, end="1", msg=msg), 303)
    return RedirectResponse(_review_url(queue, following, msg=msg), 303)


@page
def entities(ctx: Ctx) -> Response:
    """The entity graph's entities, most mentioned first (issue 21)."""
    ctx.need_read("entities")
    kind = ctx.request.query_params.get("kind") or None
    match = ctx.request.query_params.get("q") or None
    found = ctx.project.entities(kind=kind, match=match, limit=200)
    return render(
        ctx,
        ctx.request,
        "entities.html",
        title=f"Entities · {ctx.auth.project_name}",
        entities=found,
        kind=kind,
        match=match or "",
    )


@page
def entity(ctx: Ctx) -> Response:
    """One entity: aliases, mentions (linked to their generations), and its neighbours
    drawn as a graph."""
    ctx.need_read("entities")
    eid = _uuid(ctx.request.path_params["eid"], "entity")
    graph = ctx.project.entities
    info = graph.get(eid)
    neighbours = graph.neighbors(eid, limit=24)
    return render(
        ctx,
        ctx.request,
        "entity.html",
        title=f"{info.name} · entities · {ctx.auth.project_name}",
        entity=info,
        mentions=graph.mentions(eid, limit=50),
        neighbours=neighbours,
        picture=charts.neighbour_graph(info, neighbours, ctx.request.url.path.rsplit("/", 1)[0]),
    )
