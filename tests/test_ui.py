"""The web UI over plain HTTP (a real uvicorn on 127.0.0.1, httpx): every route, sign-in
and sign-out, bearer keys, unauthenticated access, roles, and other projects' rows."""

from __future__ import annotations

import re

import httpx
import pytest

import promptlake
from promptlake.server.ui.auth import COOKIE
from ui_data import Fixture, ui_env


@pytest.fixture(scope="module")
def env(admin_url, template_url):
    yield from ui_env(admin_url)


def _client(server, key: str | None = None, **headers: str) -> httpx.Client:
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


def _admin(env) -> httpx.Client:
    server, data, _ = env
    return _client(server, data.keys["admin"])


def _pages(data: Fixture) -> list[str]:
    g = data.turns[1].id
    return [
        "/ui/",
        "/ui/project",
        "/ui/sessions",
        f"/ui/sessions/{data.session_id}",
        f"/ui/generations/{g}",
        f"/ui/attachments/{data.image_id}",
        "/ui/search?q=refund",
        "/ui/datasets",
        "/ui/runs",
        f"/ui/runs/{data.run_id}",
        "/ui/review",
    ]


def test_no_session_no_data(env) -> None:
    server, data, _ = env
    browser = {"Accept": "text/html,application/xhtml+xml"}
    for path in _pages(data):
        with _client(server, **browser) as c:
            r = c.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/ui/login?next=/ui/"), path
        assert "refund" not in r.text.lower()
        with _client(server) as c:  # a script: 401, not a redirect
            r = c.get(path)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", path
        assert "refund" not in r.text.lower()
        with _client(server, "plk_not-a-key") as c:
            assert c.get(path).status_code == 401
        # a forged or tampered cookie is no session
        with _client(server, **browser) as c:
            c.cookies.set(COOKIE, "v1." + "00" * 32 + ".1.AAAA", path="/ui")
            assert c.get(path).status_code == 303
    with _client(server) as c:
        r = c.post("/ui/review/score", data={"generation": str(data.turns[0].id), "value": "1"})
        assert r.status_code == 401


def test_sign_in_cookie_and_sign_out(env) -> None:
    server, data, _ = env
    with _client(server, Accept="text/html") as c:
        r = c.get("/ui/login?next=/ui/sessions")
        assert r.status_code == 200 and "<title>Sign in · promptlake</title>" in r.text
        bad = c.post("/ui/login", data={"key": "plk_wrong", "next": "/ui/sessions"})
        assert bad.status_code == 401 and "unknown API key" in bad.text
        assert COOKIE not in c.cookies
        r = c.post("/ui/login", data={"key": data.keys["analyst"], "next": "/ui/sessions"})
        assert r.status_code == 303 and r.headers["location"] == "/ui/sessions"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
        assert data.keys["analyst"] not in cookie  # the cookie never holds the key
        r = c.get("/ui/sessions?user=u-alice")
        assert r.status_code == 200 and "refund chat" in r.text
        token = re.search(r'name="csrf" value="([^"]+)"', c.get("/ui/review").text)[1]
        # an open redirect is refused: next must stay inside the UI
        r = c.post("/ui/login", data={"key": data.keys["analyst"], "next": "https://evil/"})
        assert r.headers["location"] == "/ui/"
        r = c.post("/ui/logout")
        assert r.status_code == 303
        c.cookies.clear()  # the response deleted it; httpx keeps an expired one otherwise
        assert c.get("/ui/sessions").status_code == 303
        assert token


def test_every_page_renders_with_a_title(env) -> None:
    _, data, _ = env
    with _admin(env) as c:
        for path in _pages(data):
            r = c.get(path, follow_redirects=True)
            assert r.status_code == 200, (path, r.text[:300])
            if r.headers["content-type"].startswith("text/html"):
                assert re.search(r"<title>[^<]+ · promptlake</title>", r.text), path
                assert "zebrafish" not in r.text, path


def test_project_counts_and_usage_chart(env) -> None:
    with _admin(env) as c:
        r = c.get("/ui/project?days=7")
    assert r.status_code == 200
    assert "<b>31</b> sessions" in r.text and "<b>64</b> generations" in r.text
    assert r.text.count('<svg class="chart"') == 6  # 5 usage panels, the score trend
    assert "p95 latency" in r.text and '<rect class="bar"' in r.text
    trend = r.text.split("Score over time: helpfulness", 1)[1]
    assert '<circle class="dot' in trend and "No significant drop" in trend
    with _admin(env) as c:
        other = c.get("/ui/project?days=7&score=no-such-score")  # falls back to a real one
    assert other.status_code == 200 and "Score over time: helpfulness" in other.text
    with _admin(env) as c:
        assert c.get("/ui/project?days=0").status_code == 400
        assert "must be a whole number" in c.get("/ui/project?days=x").text


def test_sessions_sort_filter_and_pages(env) -> None:
    with _admin(env) as c:
        first = c.get("/ui/sessions?sort=name&dir=asc")
        names = re.findall(r"<td>(bulk \d\d|refund chat)", first.text)
        assert names == sorted(names) and len(names) == 25
        assert "1–25 of 31" in first.text and 'rel="next"' in first.text
        second = c.get("/ui/sessions?sort=name&dir=asc&page=2")
        rest = re.findall(r"<td>(bulk \d\d|refund chat)", second.text)
        assert len(rest) == 6 and not set(rest) & set(names) and rest[-1] == "refund chat"
        desc = re.findall(r"<td>(bulk \d\d|refund chat)", c.get("/ui/sessions?sort=name").text)
        assert desc[0] == "refund chat"
        only = c.get("/ui/sessions?user=u-alice")
        assert "refund chat" in only.text and "bulk 0" not in only.text
        assert c.get("/ui/sessions?sort=password").status_code == 400


def test_session_thread(env) -> None:
    _, data, _ = env
    with _admin(env) as c:
        r = c.get(f"/ui/sessions/{data.session_id}")
    html = r.text
    order = [html.index(f'id="turn-{g.id}"') for g in data.turns]
    assert order == sorted(order)  # turns in order
    assert '<span class="role">system</span>' in html and '<span class="role">user</span>' in html
    assert "1 branch" in html and 'class="badge branch"' in html  # g3 forks from g1
    assert html.count('<circle class="node') == 4 and 'class="node branch"' in html
    assert "reply to #1" in html and "reply to #2" in html  # g3 forks from 1, g4 follows 2
    assert "reply to #3" not in html
    assert "bob@example.com" not in html and '<mark class="pii"' in html  # replaced, marked
    assert "PII replaced: EMAIL" in html
    assert f'<img src="/ui/attachments/{data.image_id}"' in html
    assert "<audio controls" in html and f"/ui/attachments/{data.file_id}?download=1" in html
    assert "refund policy" in html and "within 30 days of purchase" in html  # retrievals
    assert "claude-3" in html and "paraphraser-v1" in html and "synthetic" in html
    assert "880 ms" in html and "timeout after 30 s" in html and "temperature=0.2" in html
    assert "helpfulness 0.9" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html


def test_generation_page(env) -> None:
    _, data, _ = env
    g2 = data.turns[1]
    with _admin(env) as c:
        html = c.get(f"/ui/generations/{g2.id}").text
    assert "judge-1" in html and "grounded" in html  # scores and feedback
    assert "support</b> v2" in html and "Changes from v1" in html
    assert '<span class="del">-You are helpful.</span>' in html
    assert '<span class="add">+You are helpful and brief.</span>' in html
    assert f'href="/ui/runs/{data.run_id}"' in html and "eval-nightly" in html
    assert "Similar generations" in html and "/ui/generations/" in html
    assert "near-duplicate cluster" in html or "cluster of" in html


def test_attachments_inline_download_and_other_projects(env) -> None:
    _, data, _ = env
    with _admin(env) as c:
        img = c.get(f"/ui/attachments/{data.image_id}")
        assert img.headers["content-type"] == "image/png" and img.content.startswith(b"\x89PNG")
        assert img.headers["content-disposition"].startswith("inline")
        pdf = c.get(f"/ui/attachments/{data.file_id}?download=1")
        assert pdf.headers["content-disposition"].startswith("attachment")
        assert pdf.content == b"%PDF-1.4"
        assert c.get(f"/ui/attachments/{data.other_attachment_id}").status_code == 404


def test_search_filters_highlights_and_pages(env) -> None:
    _, data, _ = env
    with _admin(env) as c:
        r = c.get("/ui/search?q=refund")
        assert "<mark>refund" in r.text.lower() or "<mark>Refund" in r.text
        assert "<option selected>hybrid</option>" in r.text
        assert "No generations match." in c.get("/ui/search?q=zebrafish&mode=text").text
        nearest = c.get("/ui/search?q=zebrafish+secret").text  # hybrid: A's nearest rows only
        assert str(data.other_generation_id) not in nearest and "secret answer" not in nearest
        p1 = c.get("/ui/search?q=bulk&mode=text")
        ids1 = re.findall(r'<a href="/ui/generations/([0-9a-f-]{36})">', p1.text)
        assert len(ids1) == 20 and 'rel="next"' in p1.text
        p3 = c.get("/ui/search?q=bulk&mode=text&page=3")
        ids3 = re.findall(r'<a href="/ui/generations/([0-9a-f-]{36})">', p3.text)
        assert len(ids3) == 20 and not set(ids1) & set(ids3) and 'rel="next"' not in p3.text

        def count(query: str) -> int:
            return len(re.findall(r'<li>\s*<a href="/ui/generations/', c.get(query).text))

        assert count("/ui/search?q=bulk&mode=text&model=gpt-4o-mini&page=1") == 20
        assert count("/ui/search?q=bulk&mode=text&origin=synthetic") == 20
        assert count("/ui/search?q=bulk&mode=text&origin=synthetic&page=2") == 0
        assert count("/ui/search?q=refund&mode=text&tag=refund") == 1
        assert count("/ui/search?q=bulk&mode=text&user=u-2&model=gpt-4o-mini") == 15
        assert count("/ui/search?q=refund&mode=text&score=helpfulness&min=0.8") == 1
        assert count("/ui/search?q=refund&mode=text&score=helpfulness&max=0.5") == 0
        assert count("/ui/search?q=refund&mode=text&since=2000-01-01&until=2000-01-02") == 0
        assert c.get("/ui/search?q=x&since=yesterday").status_code == 400
        assert c.get("/ui/search?q=x&mode=magic").status_code == 400
        assert c.get("/ui/search?q=x&min=1").status_code == 400


def test_datasets_diff_lineage_and_runs(env) -> None:
    _, data, _ = env
    v1, v2 = data.versions
    with _admin(env) as c:
        r = c.get(f"/ui/datasets?a={v1.id}&b={v2.id}")
        assert "support-set" in r.text and "aaaa1111.dir"[:12] in r.text
        assert '<td class="num add">+10</td>' in r.text  # test gained 50..59
        assert "45 rows unchanged · 5 moved between splits" in r.text  # 40..44: test -> train
        assert "Lineage" in r.text and "produced" in r.text
        assert c.get("/ui/datasets?a=nope&b=nope").status_code == 404
        runs = c.get("/ui/runs")
        assert "eval-nightly" in runs.text and "zebrafish" not in runs.text
        run = c.get(f"/ui/runs/{data.run_id}")
        assert "latency_p95_ms" in run.text and "temperature" in run.text
        assert ">4<" in run.text  # 4 generations in the run


def test_review_scores_with_the_keys_role(env) -> None:
    server, data, url = env
    target = data.bulk_ids[-1]  # the oldest bulk row: the last in the queue
    with _admin(env) as c:
        page = c.get("/ui/review?score=ui-check&tag=bulk")
        assert page.status_code == 200 and "60 items without a human ui-check score" in page.text
        r = c.post(
            "/ui/review/score",
            data={
                "generation": str(target),
                "score": "ui-check",
                "tag": "bulk",
                "value": "4",
                "label": "",
            },
        )
        assert r.status_code == 303 and "end=1" in r.headers["location"]
        r = c.post(
            "/ui/review/score",
            data={"generation": str(target), "score": "ui-label", "value": "1", "label": "good"},
        )
        assert r.status_code == 303
        page = c.get("/ui/review?score=ui-check&tag=bulk")
        assert "59 items" in page.text
    with promptlake.connect(url, principal="ui-tests") as lake:
        _, rows = lake.query(
            "SELECT name, value_numeric, value_text, source, author FROM scores"
            " WHERE generation_id = :g ORDER BY name",
            {"g": target},
            project="ui-a",
        )
    assert [r[:4] for r in rows] == [
        ("ui-check", 4.0, None, "human"),
        ("ui-label", None, "good", "human"),
    ]
    assert rows[0][4].startswith("key:")  # the key's own principal
    with _client(server, data.keys["analyst"]) as c:  # may read, may not write
        assert c.get("/ui/review").status_code == 200
        r = c.post("/ui/review/score", data={"generation": str(target), "score": "x", "value": "1"})
        assert r.status_code == 403 and "may not add scores" in r.text
    for role in ("viewer", "writer"):
        with _client(server, data.keys[role]) as c:
            r = c.get("/ui/review")
            assert r.status_code == 403 and f"a {role} key may not read" in r.text
            assert "bulk question" not in r.text
    with _client(server, data.keys["viewer"]) as c:
        r = c.post("/ui/review/score", data={"generation": str(target), "score": "x", "value": "1"})
        assert r.status_code == 403
    # a cookie session needs the form's token
    with _client(server, Accept="text/html") as c:
        c.post("/ui/login", data={"key": data.keys["admin"], "next": "/ui/review"})
        r = c.post("/ui/review/score", data={"generation": str(target), "score": "y", "value": "1"})
        assert r.status_code == 403 and "token" in r.text


def test_viewer_sees_aggregates_only(env) -> None:
    server, data, _ = env
    with _client(server, data.keys["viewer"]) as c:
        project = c.get("/ui/project")
        assert project.status_code == 200 and "aggregates only" in project.text
        assert project.text.count('<svg class="chart"') == 5 and "latency (mean)" in project.text
        for path in _pages(data)[2:]:
            if path.startswith("/ui/attachments"):
                continue
            r = c.get(path)
            assert r.status_code == 403, path
            assert "refund chat" not in r.text and "bulk question" not in r.text


def test_other_projects_rows_never_appear(env) -> None:
    server, data, _ = env
    guesses = [
        f"/ui/sessions/{data.other_session_id}",
        f"/ui/generations/{data.other_generation_id}",
        f"/ui/runs/{data.other_run_id}",
        f"/ui/attachments/{data.other_attachment_id}",
        f"/ui/review?at={data.other_generation_id}",
        "/ui/generations/not-a-uuid",
    ]
    with _admin(env) as c:
        for path in guesses:
            r = c.get(path)
            assert r.status_code == 404, path
            assert "zebrafish" not in r.text and "secret" not in r.text, path
        for path in ("/ui/sessions", "/ui/runs", "/ui/search?q=secret", "/ui/project"):
            assert "zebrafish" not in c.get(path).text, path
        assert "No generations match." in c.get("/ui/search?q=secret&mode=text").text
    with _client(server, data.keys["other"]) as c:  # and B sees its own, none of A's
        assert "zebrafish chat" in c.get("/ui/sessions").text
        assert c.get(f"/ui/sessions/{data.session_id}").status_code == 404
        assert "No generations match." in c.get("/ui/search?q=refund&mode=text").text
        nearest = c.get("/ui/search?q=refund").text
        assert all(str(g.id) not in nearest for g in data.turns) and "30 days" not in nearest


def test_aggregate_cache_serves_stale_while_it_recomputes() -> None:
    import time

    from promptlake.server.ui.cache import StaleWhileRevalidate

    calls = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    cache = StaleWhileRevalidate(ttl=0.2)
    assert cache.get("k", compute)[0] == 1
    assert cache.get("k", compute)[0] == 1 and len(calls) == 1  # fresh: cached
    assert cache.get("other", compute)[0] == 2  # keys are separate
    time.sleep(0.3)
    assert cache.get("k", compute)[0] == 1  # stale: served, refreshed in the background
    deadline = time.monotonic() + 5
    while cache.get("k", compute)[0] == 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert cache.get("k", compute)[0] == 3


def test_entity_pages_draw_the_graph_and_stay_in_their_project(env) -> None:
    server, data, url = env
    with promptlake.connect(url, principal="ui-tests") as lake:
        ids = {}
        for name, text in (("ui-a", "Grafana Labs"), ("ui-b", "Zebrafish Institute")):
            proj = lake.project(name)
            proj.log(
                prompt=f"Does {text} work with Kubernetes Operator and Apache Kafka?",
                output=f"Yes: {text} ships a plugin; see https://example.org/docs (Apache Kafka).",
                model="m",
            )
            proj.entities.extract()
            ids[name] = {e.name: e.id for e in proj.entities(limit=200)}
    assert "Apache Kafka" in ids["ui-a"] and "Zebrafish Institute" in ids["ui-b"]
    with _admin(env) as c:
        listing = c.get("/ui/entities?q=Kafka")
        assert listing.status_code == 200 and "Apache Kafka" in listing.text
        page = c.get(f"/ui/entities/{ids['ui-a']['Apache Kafka']}")
        assert page.status_code == 200 and "<title>Apache Kafka" in page.text
        assert '<svg class="chart graph"' in page.text and "Grafana Labs" in page.text
        assert "/ui/generations/" in page.text  # mentions link to their generations
        other = c.get(f"/ui/entities/{ids['ui-b']['Zebrafish Institute']}")
        assert other.status_code == 404 and "Zebrafish" not in other.text
        assert "Zebrafish" not in c.get("/ui/entities").text
    with _client(server, data.keys["viewer"]) as c:
        assert c.get("/ui/entities").status_code == 403
