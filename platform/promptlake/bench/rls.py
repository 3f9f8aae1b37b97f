"""What row-level security costs an analyst's query.

The same typical analytics query (usage per model per day over one project's generations)
runs, in the same run and alternating, two ways:

``owner``
    as the database owner, past row-level security, with the project filter written in
    the query: the cost of the query itself;
``rls``
    as the application role acting for an analyst principal, with the project context set
    by ``set_config`` and no filter in the query: the policies add it;
``login``
    as the analyst's own login (how ``promptlake sql`` runs user SQL), narrowed to the
    project with ``promptlake.project_id``: the same policies, the principal read from the
    login.

All read the same rows; the bench checks that they return the same answer. The figures
are the ratios of medians to ``owner`` (target <= 1.2).
"""

from __future__ import annotations

import statistics
import time
import uuid
from typing import TYPE_CHECKING, Any

import psycopg

if TYPE_CHECKING:
    from ..client import Lake

QUERY = """
SELECT (g.created_at AT TIME ZONE 'UTC')::date AS day, m.name AS model, count(*) AS calls,
       sum(g.total_tokens) AS tokens, avg(g.latency_ms) AS avg_latency_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY g.latency_ms) AS p95_latency_ms
  FROM generations g LEFT JOIN models m ON m.project_id = g.project_id AND m.id = g.model_id
 {where}
 GROUP BY 1, 2 ORDER BY 1, 2
"""


def _load(lake: Lake, name: str, rows: int, seed: int) -> Any:
    import random

    rng = random.Random(seed)
    project = lake.project(name)
    project.set_pii_policy(apply_at="export")
    with project.writer(batch_size=5000) as writer:
        for i in range(rows):
            writer.log(
                prompt=f"question {i} " + "lorem ipsum " * rng.randint(20, 80),
                output="answer " * rng.randint(20, 120),
                model=rng.choice(["gpt-4o", "claude-3", "llama-3-70b", "mistral-large"]),
                prompt_tokens=rng.randint(10, 800),
                completion_tokens=rng.randint(10, 800),
                latency_ms=rng.uniform(100, 5000),
                created_at=time.time() - rng.uniform(0, 30 * 86400),
            )
    return project


def run_rls_bench(lake: Lake, rows: int = 50_000, repeats: int = 7, seed: int = 0) -> dict:
    """Time the query both ways; the other project holds as many rows, as noise to skip."""
    suffix = uuid.uuid4().hex[:8]
    target = _load(lake, f"bench-rls-{suffix}", rows, seed)
    other = _load(lake, f"bench-rls-other-{suffix}", rows, seed + 1)
    target.grant("bench-analyst", "analyst")
    owner_dsn = lake.url.replace("postgresql+psycopg://", "postgresql://", 1)
    timings: dict[str, list[float]] = {"owner": [], "rls": [], "login": []}
    answers: dict[str, Any] = {}
    from ..client import Lake as _Lake

    with _Lake(lake.url, principal="bench-analyst", migrate=False) as analyst:
        login_dsn = analyst.login_url()
    try:
        with (
            psycopg.connect(owner_dsn) as owner,
            psycopg.connect(owner_dsn) as app,
            psycopg.connect(login_dsn) as login,
        ):
            login.execute(
                "SELECT set_config('promptlake.project_id', %s, false)", (str(target.id),)
            )
            app.execute("SET ROLE promptlake_app")
            app.execute(
                "SELECT set_config('promptlake.principal', 'bench-analyst', false),"
                " set_config('promptlake.project_id', %s, false)",
                (str(target.id),),
            )
            for conn in (owner, app):
                conn.execute("ANALYZE generations")
            owner_sql = QUERY.format(where="WHERE g.project_id = %s")
            rls_sql = QUERY.format(where="")
            for i in range(repeats * 3):
                method = ("owner", "rls", "login", "login", "rls", "owner")[i % 6]
                conn, sql_text, params = {
                    "owner": (owner, owner_sql, (target.id,)),
                    "rls": (app, rls_sql, ()),
                    "login": (login, rls_sql, ()),
                }[method]
                started = time.perf_counter()
                result = conn.execute(sql_text, params).fetchall()
                timings[method].append(time.perf_counter() - started)
                answers[method] = result
    finally:
        with lake._transaction(None) as conn:
            for project in (target, other):
                conn.execute(
                    "SELECT set_config('promptlake.project_id', %s, true)", (str(project.id),)
                )
                conn.execute("DELETE FROM projects WHERE id = %s", (project.id,))
    owner_ms = statistics.median(timings["owner"]) * 1000
    rls_ms = statistics.median(timings["rls"]) * 1000
    login_ms = statistics.median(timings["login"]) * 1000
    return {
        "rows_in_project": rows,
        "rows_in_table": 2 * rows,
        "repeats": repeats,
        "owner_ms": round(owner_ms, 2),
        "rls_ms": round(rls_ms, 2),
        "overhead": round(rls_ms / owner_ms - 1, 3),
        "login_ms": round(login_ms, 2),
        "login_overhead": round(login_ms / owner_ms - 1, 3),
        "target_overhead": 0.2,
        "same_answer": answers.get("owner") == answers.get("rls") == answers.get("login"),
        "groups": len(answers.get("rls", [])),
    }


def format_report(result: dict) -> str:
    verdict = "met" if result["overhead"] <= result["target_overhead"] else "NOT met"
    return (
        f"row-level security on an analyst query ({result['rows_in_project']:,} rows of"
        f" {result['rows_in_table']:,}, median of {result['repeats']}):\n"
        f"  owner, filter in the query   {result['owner_ms']:8.1f} ms\n"
        f"  analyst under RLS (app)      {result['rls_ms']:8.1f} ms\n"
        f"  analyst's own login          {result['login_ms']:8.1f} ms"
        f" ({result['login_overhead']:+.1%})\n"
        f"  overhead {result['overhead']:+.1%} (target <= +20%: {verdict});"
        f" same answer: {result['same_answer']}"
    )
