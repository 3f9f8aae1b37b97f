"""The web UI of ``promptlake serve``: sessions, chains, scores, search, datasets, review.

Server-rendered HTML (Jinja2 templates in ``templates/``, one stylesheet and one small
script in ``static/``, shipped in the wheel; nothing from a CDN, no build step). Pages work
without JavaScript; the script only adds keyboard shortcuts (the review queue) and
conveniences. Sign-in takes an API key and sets a signed session cookie (``auth.py``);
every page also accepts ``Authorization: Bearer <key>``. All reads go through the key's
principal and row-level security, as the ``/v1`` API's do.

:func:`mount` adds the routes under ``/ui`` to the server's Starlette app.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.applications import Starlette

HERE = Path(__file__).parent


def routes() -> list:
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    from . import pages, views

    return [
        Mount(
            views.PREFIX,
            routes=[
                Route("/", pages.home, methods=["GET"]),
                Route("/login", views.login, methods=["GET", "POST"]),
                Route("/logout", views.logout, methods=["POST"]),
                Route("/project", pages.project, methods=["GET"]),
                Route("/sessions", pages.sessions, methods=["GET"]),
                Route("/sessions/{sid}", pages.session, methods=["GET"]),
                Route("/generations/{gid}", pages.generation, methods=["GET"]),
                Route("/attachments/{aid}", pages.attachment, methods=["GET"]),
                Route("/search", pages.search, methods=["GET"]),
                Route("/datasets", pages.datasets, methods=["GET"]),
                Route("/runs", pages.runs, methods=["GET"]),
                Route("/runs/{rid}", pages.run, methods=["GET"]),
                Route("/review", pages.review, methods=["GET"]),
                Route("/entities", pages.entities, methods=["GET"]),
                Route("/entities/{eid}", pages.entity, methods=["GET"]),
                Route("/review/score", pages.review_score, methods=["POST"]),
                Mount("/static", StaticFiles(directory=HERE / "static"), name="ui-static"),
            ],
        )
    ]


def mount(app: Starlette) -> None:
    """Add the UI to ``app`` (whose ``state.promptlake`` is the server's state)."""
    from starlette.responses import RedirectResponse
    from starlette.routing import Route
    from starlette.templating import Jinja2Templates

    from .auth import Signer

    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals["fmt_num"] = _fmt_num
    templates.env.filters["short"] = lambda value: str(value)[-8:]  # uuid7: the random end
    app.state.promptlake_ui_templates = templates
    app.state.promptlake_ui_signer = Signer()
    app.state.promptlake_ui_projects = {}  # (principal, project id) -> Project (views.py)

    async def root(request):  # type: ignore[no-untyped-def]
        return RedirectResponse("/ui/", 307)

    app.router.routes.extend([Route("/", root, methods=["GET"]), *routes()])


def _fmt_num(value: object, digits: int = 0) -> str:
    if value is None:
        return "–"
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    return f"{number:,.{digits}f}"
