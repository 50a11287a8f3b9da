"""The server's protections seen from a real browser (Debian's chromium): the Content-Security-Policy
stops injected script and style, a page on another site can neither change retention (CSRF) nor
frame the UI, a DNS-rebound name is refused, and a same-origin parent (how Airflow shows the
page, in its sandboxed iframe) still frames it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from playwright.sync_api import expect

from rundossier.server import create_app
from rundossier.storage.db import RunStore
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, TIMEOUT_MS, Site, _settings
from tests.liveserver import LiveServer
from tests.seeding import history_run

pytestmark = pytest.mark.browser

#: Airflow 3.3's sandbox for plugin views (fixed in its UI bundle)
AIRFLOW_SANDBOX = "allow-scripts allow-same-origin allow-forms"


class Console:
    """A browser context and page that record console messages instead of failing on them."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.messages: list[str] = []
        self.page.on("console", lambda msg: self.messages.append(f"{msg.type}: {msg.text}"))
        self.page.on("pageerror", lambda exc: self.messages.append(f"pageerror: {exc}"))

    def close(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
        self.context.close()


@pytest.fixture
def console(browser: Any, request: pytest.FixtureRequest) -> Iterator[Console]:
    c = Console(browser)
    yield c
    c.close(request.node.name)


def _app_page(site: Site, console: Console) -> Any:
    console.page.goto(f"{site.url}/#/runs")
    expect(console.page.locator("table.runs tbody tr").first).to_be_visible()
    return console.page


def test_the_csp_blocks_injected_script_style_and_handlers(site: Site, console: Console) -> None:
    page = _app_page(site, console)
    violations = page.evaluate(
        """async () => {
            const seen = [];
            document.addEventListener("securitypolicyviolation", (e) => seen.push(e.effectiveDirective));
            const s = document.createElement("script");
            s.textContent = "window.__pwned = 1";
            document.body.append(s);
            const styled = document.createElement("p");
            styled.setAttribute("style", "color: rgb(255, 0, 0)");
            document.body.append(styled);
            const b = document.createElement("button");
            b.setAttribute("onclick", "window.__clicked = 1");
            document.body.append(b);
            b.click();
            await new Promise((r) => setTimeout(r, 300));
            return {
                seen, pwned: window.__pwned === 1, clicked: window.__clicked === 1,
                color: getComputedStyle(styled).color,
            };
        }"""
    )
    assert violations["pwned"] is False and violations["clicked"] is False
    assert violations["color"] != "rgb(255, 0, 0)"
    assert {"script-src-elem", "style-src-attr", "script-src-attr"} <= set(violations["seen"])
    # and the page's own code ran without a single violation before the injection
    before = [m for m in console.messages if "Content Security Policy" in m]
    assert len(before) == 3, console.messages


def test_the_pages_load_with_no_csp_violation(site: Site, console: Console) -> None:
    page = console.page
    failed = site.ids["failed"]
    for hash_ in ("#/runs", f"#/run/{failed}", f"#/run/{failed}/step/load", "#/failures", "#/retention"):
        page.goto(f"{site.url}/{hash_}")
        page.wait_for_load_state("networkidle")
        expect(page.locator("main")).not_to_contain_text("Loading…")
    # the dossier's timing bar sizes its segments through CSSOM (no style attribute)
    page.goto(f"{site.url}/#/run/{site.ids['failed']}")
    expect(page.locator(".wseg").first).to_be_visible()
    assert page.locator(".wseg").first.evaluate("el => el.style.flexGrow") != ""
    assert [m for m in console.messages if "Content Security Policy" in m or m.startswith("pageerror")] == []


def _attacker(html: str) -> LiveServer:
    """A page on another origin (localhost with another port: another host and port)."""
    app = FastAPI()

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return html

    return LiveServer(app)


def test_a_page_on_another_site_cannot_sweep_or_change_rules(site: Site, console: Console) -> None:
    runs_before = len(site.store.list_runs(limit=500).items)
    target = f"{site.url}/api/retention/sweep?dry_run=false"
    html = f"""<!doctype html><form id="f" method="post" action="{target}"></form>
        <script>document.getElementById("f").submit()</script>"""
    with _attacker(html) as evil:
        evil_url = evil.url.replace("127.0.0.1", "localhost")
        with console.page.expect_response(lambda r: "/api/retention/sweep" in r.url) as info:
            console.page.goto(evil_url + "/")
        response = info.value
        assert response.status == 403
        assert response.json()["error"]["type"] == "cross_origin_refused"
        assert response.request.all_headers().get("sec-fetch-site") in ("cross-site", "same-site")
    assert len(site.store.list_runs(limit=500).items) == runs_before
    assert site.store.list_policies() == []
    # the rundossier page itself may: a same-origin request from its own document goes through
    page = _app_page(site, console)
    status = page.evaluate("async () => (await fetch('api/retention/sweep?dry_run=true', {method: 'POST'})).status")
    assert status == 200


def test_a_page_on_another_site_cannot_frame_the_ui(site: Site, console: Console) -> None:
    html = f'<!doctype html><iframe id="f" src="{site.url}/#/runs" width="800" height="600"></iframe>'
    with _attacker(html) as evil:
        console.page.goto(evil.url.replace("127.0.0.1", "localhost") + "/")
        console.page.wait_for_timeout(1500)
        frame = console.page.frame_locator("#f")
        expect(frame.locator("table.runs")).to_have_count(0)
    assert any("frame-ancestors" in m for m in console.messages), console.messages


def test_a_same_origin_parent_frames_it_as_airflow_does(browser: Any, tmp_path: Path, console: Console) -> None:
    settings = _settings(tmp_path)
    store = RunStore(settings.db_url)
    history_run(store, flow_id="framed_flow", status="failed", error=("KeyError", "'x'"))
    outer = FastAPI()

    @outer.get("/", response_class=HTMLResponse)
    def parent() -> str:
        return (
            f'<!doctype html><iframe id="f" sandbox="{AIRFLOW_SANDBOX}" src="rundossier/#/runs"'
            ' width="1300" height="800"></iframe>'
        )

    outer.mount("/rundossier", create_app(settings, store=store))
    with LiveServer(outer) as server:
        console.page.goto(server.url + "/")
        frame = console.page.frame_locator("#f")
        expect(frame.locator("table.runs tbody tr[data-run-id]")).to_have_count(1)
        expect(frame.get_by_test_id("live-indicator")).to_have_text("Live")
    store.close()
    assert [m for m in console.messages if "Content Security Policy" in m or m.startswith("pageerror")] == []


def test_a_dns_rebound_name_is_refused(browser: Any, tmp_path: Path) -> None:
    """A second chromium resolves rebind.test to 127.0.0.1, as a rebinding attacker's DNS would."""
    settings = _settings(tmp_path)
    store = RunStore(settings.db_url)
    history_run(store, flow_id="private_flow")
    with LiveServer(create_app(settings, store=store, allowed_hosts=())) as server:
        args = [*CHROMIUM_ARGS, "--host-resolver-rules=MAP rebind.test 127.0.0.1"]
        b = browser.browser_type.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            page = b.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            rebound = page.goto(f"http://rebind.test:{server.port}/api/runs")
            assert rebound is not None and rebound.status == 400
            assert "private_flow" not in page.content() and "DNS rebinding" in page.content()
            ok = page.goto(f"http://localhost:{server.port}/#/runs")
            assert ok is not None and ok.status == 200
            expect(page.locator("table.runs tbody tr[data-run-id]")).to_have_count(1)
        finally:
            b.close()
    store.close()
