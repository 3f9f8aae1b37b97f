"""The web UI in a real headless browser: Debian's chromium driven by Playwright for Python
(``executable_path``; ``playwright install`` downloads browsers and fails here). Sign in,
open a session, search and page, score in the review queue with the keyboard, check that
another project's rows never appear, and save screenshots of the main pages to
``tests/artifacts/ui/`` (gitignored)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import promptlake
from ui_data import ui_env

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts" / "ui"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def env(admin_url, template_url):
    yield from ui_env(admin_url)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _sign_in(page, base: str, key: str, path: str = "/ui/sessions") -> None:
    page.goto(base + path)
    assert "/ui/login" in page.url and page.title() == "Sign in · promptlake"
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{path}")


def test_browse_search_review_in_chromium(env, browser) -> None:
    server, data, url = env
    base = server.url
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(base + "/ui/login")
    _shot(page, "login")
    _sign_in(page, base, data.keys["admin"])

    # the sessions list pages on the server; the oldest session is on page 2
    assert page.title() == "Sessions · ui-a · promptlake"
    assert page.locator("table.list tbody tr").count() == 25
    _shot(page, "sessions")
    page.click("a[rel=next]")
    page.wait_for_url("**page=2")
    assert page.locator("table.list tbody tr").count() == 6
    page.click("text=refund chat >> xpath=ancestor::tr//a >> nth=0")
    page.wait_for_url(f"**/ui/sessions/{data.session_id}")
    assert page.locator("article.turn").count() == 4
    assert page.locator("svg.chain circle.node.branch").count() == 1
    image = page.locator(f'img[src="/ui/attachments/{data.image_id}"]')
    assert image.evaluate("img => img.complete && img.naturalWidth") == 2  # decoded PNG
    assert page.locator("audio").count() == 1
    assert page.locator("mark.pii").count() >= 1 and "bob@example.com" not in page.content()
    _shot(page, "session")
    # the chain's nodes link to their turns
    page.click(f'svg.chain a[href="#turn-{data.turns[3].id}"]')
    assert page.url.endswith(f"#turn-{data.turns[3].id}")

    page.goto(f"{base}/ui/generations/{data.turns[1].id}")
    assert page.locator("pre.diff .add").count() >= 1
    _shot(page, "generation")

    page.goto(base + "/ui/project")
    assert page.locator("svg.chart").count() == 6  # usage panels and the score trend
    _shot(page, "project")

    # search: "/" focuses the box, Enter submits; highlighted snippets; next page
    page.keyboard.press("/")
    page.keyboard.type("bulk shipping")
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/search?q=bulk+shipping*")
    assert page.locator("ol.hits > li").count() == 20
    assert page.locator("ol.hits mark").count() >= 20
    _shot(page, "search")
    first = page.locator("ol.hits > li > a").first.get_attribute("href")
    page.click("a[rel=next]")
    page.wait_for_url("**page=2")
    assert page.locator("ol.hits > li").count() == 20
    assert page.locator("ol.hits > li > a").first.get_attribute("href") != first

    # review: digits score, "s" skips, all by keyboard
    page.goto(base + "/ui/review?score=browser&tag=bulk")
    scored = page.locator("input[name=generation]").get_attribute("value")
    _shot(page, "review")
    with page.expect_navigation():
        page.keyboard.press("4")
    assert "scored browser = 4" in page.content()
    skipped = page.locator("input[name=generation]").get_attribute("value")
    assert skipped != scored
    with page.expect_navigation():
        page.keyboard.press("s")
    assert page.locator("input[name=generation]").get_attribute("value") not in (scored, skipped)
    with promptlake.connect(url, principal="ui-tests") as lake:
        _, rows = lake.query(
            "SELECT generation_id::text, value_numeric, source FROM scores WHERE name = 'browser'",
            project="ui-a",
        )
    assert rows == [(scored, 4.0, "human")]

    # another project's ids give 404 pages with nothing of it
    for path in (
        f"/ui/sessions/{data.other_session_id}",
        f"/ui/generations/{data.other_generation_id}",
    ):
        response = page.goto(base + path)
        assert response.status == 404
        assert "zebrafish" not in page.content()
    page.goto(base + "/ui/search?q=zebrafish&mode=text")
    assert page.locator("ol.hits > li").count() == 0
    # sign out; the other project's key shows only its own rows
    page.goto(base + "/ui/sessions")
    page.click("text=Sign out")
    page.wait_for_url("**/ui/login")
    _sign_in(page, base, data.keys["other"])
    assert "zebrafish chat" in page.content() and "refund chat" not in page.content()
    assert page.goto(f"{base}/ui/sessions/{data.session_id}").status == 404
    assert not errors, errors
    context.close()


def test_dark_scheme_screenshot(env, browser) -> None:
    server, data, _ = env
    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        color_scheme="dark",
        extra_http_headers={"Authorization": f"Bearer {data.keys['admin']}"},
    )
    page = context.new_page()
    page.goto(f"{server.url}/ui/sessions/{data.session_id}")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(18, 21, 28)"  # the dark palette
    _shot(page, "session-dark")
    page.goto(f"{server.url}/ui/project")
    _shot(page, "project-dark")
    context.close()
