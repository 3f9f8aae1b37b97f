"""``promptlake bench ui``: server time of the web UI's main pages on a large project.

On a scratch embedded server of its own (never your data), it loads ``generations`` rows
as sessions of ``turns`` chained turns spread over 30 days (texts from ``bench search``'s
generator: real English words plus topic words; three models; one in ten rows scored),
indexes them for search (full text and ``hashing-384`` vectors, then HNSW, as
``promptlake embed`` does), starts ``promptlake serve`` in a thread on 127.0.0.1 and asks
for the session, generation, search (hybrid) and project pages with a bearer key,
``requests`` times each after a warm-up, one request at a time. Two times per page: the
client's wall time on loopback (request written to body read: HTTP, thread pool, auth,
queries, template), and the handler's own time from the ``Server-Timing`` header. Also
reported: the session page's weight (its HTML, the stylesheet and the script; raw and
gzip).
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..ids import uuid7

MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3")


def _percentiles(samples: list[float]) -> dict[str, float]:
    arr = np.array(samples) * 1000
    return {
        "p50_ms": round(float(np.percentile(arr, 50)), 1),
        "p95_ms": round(float(np.percentile(arr, 95)), 1),
        "max_ms": round(float(arr.max()), 1),
    }


def _load(project: Any, generations: int, turns: int, say: Callable[[str], None]) -> dict:
    from ..search import HashingEmbedder
    from .search import generated_texts

    rng = np.random.default_rng(18)
    prompts, outputs, _ = generated_texts(generations, rng)
    hashing = HashingEmbedder()
    project.set_pii_policy(apply_at="export")  # measure the pages, not PII detection
    now = dt.datetime.now(dt.UTC)
    sessions: list[Any] = []
    ids: list[Any] = []
    started = time.perf_counter()
    with project.writer(batch_size=5000, index=True, embedder=hashing.name) as w:
        for start in range(0, generations, 2000):
            stop = min(generations, start + 2000)
            vectors = hashing.embed(
                [f"{p}\n{o}" for p, o in zip(prompts[start:stop], outputs[start:stop], strict=True)]
            )
            for i in range(start, stop):
                if i % turns == 0:
                    at = now - dt.timedelta(seconds=float(rng.uniform(0, 30 * 86400)))
                    sid = w.session(end_user_id=f"user-{i % 997}", name=f"chat {i // turns}",
                                    started_at=at)  # fmt: skip
                    sessions.append(sid)
                    parent = None
                gid = uuid7()
                w.log(id=gid, session=sid, parent=parent, prompt=prompts[i],
                      output=outputs[i], model=MODELS[i % 3], prompt_tokens=len(prompts[i]) // 4,
                      completion_tokens=len(outputs[i]) // 4, cost_usd=0.00001 * (i % 50),
                      latency_ms=float(rng.lognormal(6.5, 0.5)),
                      status="error" if i % 97 == 0 else "ok",
                      created_at=at + dt.timedelta(seconds=20 * (i % turns)),
                      embedding=vectors[i - start])  # fmt: skip
                if i % 10 == 0:
                    w.score(gid, "quality", float(i % 5) / 4, source="model", author="judge")
                parent = gid
                ids.append(gid)
            say(f"logged {stop:,} of {generations:,}")
    load_s = time.perf_counter() - started
    say("building the HNSW index")
    started = time.perf_counter()
    project.embed(hashing)  # nothing left to embed; builds the index
    return {
        "sessions": sessions,
        "ids": ids,
        "load_s": round(load_s, 1),
        "index_s": round(time.perf_counter() - started, 1),
        "words": [w for text in outputs[:2000] for w in text.split() if len(w) > 6][:5000],
    }


def run_ui_bench(
    generations: int = 100_000,
    turns: int = 10,
    requests: int = 40,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    import httpx

    import promptlake

    from ..db import embedded
    from ..server.run import ThreadedServer

    say = progress or (lambda _: None)
    home = Path(tempfile.mkdtemp(prefix="promptlake-bench-ui-"))
    previous = {k: os.environ.get(k) for k in ("PROMPTLAKE_HOME", "PROMPTLAKE_DATABASE_URL")}
    os.environ["PROMPTLAKE_HOME"] = str(home)
    os.environ.pop("PROMPTLAKE_DATABASE_URL", None)
    try:
        with promptlake.connect(principal="bench-ui") as lake:
            project = lake.project("bench-ui")
            loaded = _load(project, generations, turns, say)
            key = project.keys.create("admin", name="bench ui").secret
            rnd = random.Random(18)
            pages: dict[str, Callable[[], str]] = {
                "session": lambda: f"/ui/sessions/{rnd.choice(loaded['sessions'])}",
                "generation": lambda: f"/ui/generations/{rnd.choice(loaded['ids'])}",
                "search": lambda: "/ui/search?q=" + "+".join(rnd.sample(loaded["words"], 2)),
                "project": lambda: "/ui/project",  # aggregates cached (cache.py)
                "project uncached": lambda: "/ui/project?fresh=1",
                "sessions list": lambda: f"/ui/sessions?page={rnd.randint(1, 200)}",
            }
            result: dict[str, Any] = {
                "generations": generations,
                "sessions": len(loaded["sessions"]),
                "turns_per_session": turns,
                "requests_per_page": requests,
                "load_s": loaded["load_s"],
                "index_s": loaded["index_s"],
                "pages": {},
            }
            with (
                ThreadedServer(lake) as server,
                httpx.Client(
                    base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
                ) as client,
            ):
                for name, path in pages.items():
                    say(f"timing the {name} page")
                    for _ in range(3):
                        client.get(path()).raise_for_status()
                    samples, server_side = [], []
                    for _ in range(requests):
                        url = path()
                        started = time.perf_counter()
                        response = client.get(url)
                        samples.append(time.perf_counter() - started)
                        response.raise_for_status()
                        timing = response.headers["server-timing"]  # app;dur=12.3
                        server_side.append(float(timing.rpartition("=")[2]) / 1000)
                    result["pages"][name] = {
                        **_percentiles(samples),
                        "server_p50_ms": _percentiles(server_side)["p50_ms"],
                        "server_p95_ms": _percentiles(server_side)["p95_ms"],
                    }
                # the library call the search page makes, without HTTP or the template
                say("timing proj.search alone")
                direct = []
                for _ in range(requests):
                    query = " ".join(rnd.sample(loaded["words"], 2))
                    started = time.perf_counter()
                    project.search(query, 21)
                    direct.append(time.perf_counter() - started)
                result["library_search"] = _percentiles(direct)
                html = client.get(pages["session"]()).content
                css = client.get("/ui/static/ui.css").content
                js = client.get("/ui/static/ui.js").content
            result["session_page_bytes"] = {
                "html": len(html),
                "css": len(css),
                "js": len(js),
                "total": len(html) + len(css) + len(js),
                "total_gzip": sum(len(gzip.compress(b)) for b in (html, css, js)),
            }
            return result
    finally:
        embedded.stop(home / "pgdata")
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(home, ignore_errors=True)


def format_report(result: dict[str, Any]) -> str:
    lines = [
        f"web UI on {result['generations']:,} generations ({result['sessions']:,} sessions of"
        f" {result['turns_per_session']} turns); load {result['load_s']} s, HNSW"
        f" {result['index_s']} s; {result['requests_per_page']} requests per page",
        "wall = client time on loopback; handler = the Server-Timing the page reports",
        f"{'page':<15}{'wall p50':>10}{'wall p95':>10}{'max':>10}{'handler p50':>13}"
        f"{'handler p95':>13}",
    ]
    for name, p in result["pages"].items():
        lines.append(
            f"{name:<15}{p['p50_ms']:>10}{p['p95_ms']:>10}{p['max_ms']:>10}"
            f"{p['server_p50_ms']:>13}{p['server_p95_ms']:>13}"
        )
    d = result["library_search"]
    lines.append(f"proj.search alone (k=21, hybrid): p50 {d['p50_ms']} ms, p95 {d['p95_ms']} ms")
    w = result["session_page_bytes"]
    lines.append(
        f"session page weight: {w['total']:,} bytes (html {w['html']:,}, css {w['css']:,},"
        f" js {w['js']:,}); {w['total_gzip']:,} gzipped"
    )
    return "\n".join(lines)
