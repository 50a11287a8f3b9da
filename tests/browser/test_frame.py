"""The web UI inside a sandboxed frame of a same-origin page, as Airflow shows it, and Copy buttons.

A host page at the app's own origin (served by Playwright's router) frames the real app with
the sandbox of Airflow 3.1 to 3.3's plugin views: `allow-scripts allow-same-origin allow-forms`,
no `allow-downloads`, no `allow-top-navigation`. In such a frame a download started by the frame
does nothing; the page must start it, and navigate to the orchestrator's pages, from the top
document. The Airflow tests (tests/integrations/airflow/test_browser.py) do the same inside a
real Airflow UI.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from rundossier import Recorder
from rundossier.read.reader import run_trace, step_trace
from rundossier.server import create_app
from rundossier.storage.db import RunStore
from tests.browser.conftest import Site, _settings, seed
from tests.browser.test_ui import CONTRAST_JS, with_dossier
from tests.liveserver import LiveServer

pytestmark = pytest.mark.browser

OLD_AIRFLOW_SANDBOX = "allow-scripts allow-same-origin allow-forms"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """The app as the Airflow plugin builds it: it links Airflow runs to Airflow's UI at "../"."""
    settings = _settings(tmp_path)
    store = RunStore(settings.db_url)
    rec = Recorder(settings, store=store, live_log_interval=None)
    ids = seed(store, rec)
    app = create_app(settings, store=store, blobs=rec.blobs, orchestrator_urls={"airflow": "../"})
    with LiveServer(app) as server:
        yield Site(server.url, store, rec, settings, ids)
    store.close()


def host(page: Any, site: Site, hash_route: str, *, theme: str = "light", sandbox: str = OLD_AIRFLOW_SANDBOX) -> Any:
    """Open a same-origin page framing the app at `hash_route`; return the frame."""
    html = (
        f'<!doctype html><html class="{theme}"><head><title>host</title></head>'
        '<body style="margin:0"><h1 style="margin:0;height:60px">Host page</h1>'
        f'<iframe title="tab" sandbox="{sandbox}" src="/{hash_route}" '
        'style="display:block;border:0;width:100%;height:800px"></iframe></body></html>'
    )
    page.route(f"{site.url}/host.html", lambda route: route.fulfill(body=html, content_type="text/html"))
    page.goto(f"{site.url}/host.html")
    frame = page.frame_locator("iframe")
    expect(frame.locator("main")).not_to_contain_text("Loading…")
    return frame


def download(page: Any, locator: Any) -> tuple[str, bytes]:
    with page.expect_download() as info:
        locator.click()
    d = info.value
    return d.suggested_filename, Path(d.path()).read_bytes()


def test_every_download_works_in_a_frame_without_allow_downloads(site: Site, page: Any) -> None:
    run_id = site.ids["failed"]
    frame = host(page, site, f"#/run/{run_id}/step/load")
    failure = frame.locator("section.failure")
    name, body = download(page, failure.get_by_test_id("view-trace"))
    assert name == f"{run_id}_trace.txt"
    assert body.decode() == step_trace(site.store, site.rec.blobs, run_id, "load").text
    name, body = download(page, failure.get_by_test_id("trace-json"))
    assert name == f"{run_id}_trace.json"
    assert json.loads(body) == site.api(f"/api/runs/{run_id}/steps/load/trace.json?try=1").json()
    name, body = download(page, frame.locator(".log-actions").get_by_role("link", name="Download"))
    assert name == f"{run_id}_step_1_log.txt"
    assert body == site.api(f"/api/runs/{run_id}/steps/load/logs/download?try=1&stream=all").content
    # the runs table's error chip, in the same frame
    frame.locator(".crumbs").get_by_role("link", name="Runs").click()
    row = frame.locator(f"tr[data-run-id='{run_id}']")
    row.get_by_test_id("error-chip").click()
    name, body = download(page, row.get_by_test_id("view-trace"))
    assert name == f"{run_id}_trace.txt"
    assert body.decode() == run_trace(site.store, site.rec.blobs, run_id).text


def test_outside_a_frame_downloads_stay_the_browsers_own(site: Site, page: Any) -> None:
    """Standalone, nothing is delegated: the click on <a download> is the browser's default."""
    run_id = site.ids["failed"]
    page.goto(f"{site.url}/#/run/{run_id}/step/load")
    link = page.locator("section.failure").get_by_test_id("view-trace")
    link.wait_for()
    prevented = page.evaluate(
        """(el) => new Promise((resolve) => {
            const seen = (e) => { resolve(e.defaultPrevented); e.preventDefault(); };
            document.addEventListener("click", seen, { once: true });
            el.click();
        })""",
        link.element_handle(),
    )
    assert prevented is False
    assert page.evaluate("document.documentElement.classList.contains('framed')") is False


def test_in_a_frame_the_page_drops_its_header_and_shows_the_failure_first(site: Site, page: Any) -> None:
    run_id = site.ids["failed"]
    frame = host(page, site, f"#/run/{run_id}/step/load")
    expect(frame.locator(".brand")).to_be_hidden()
    expect(frame.locator(".mainnav")).to_be_hidden()
    expect(frame.get_by_test_id("live-indicator")).to_have_text("Live")
    sections = frame.locator("main > section, main > div.grid-2").evaluate_all(
        "els => els.map(e => e.getAttribute('aria-label') || e.className)"
    )
    assert sections[:2] == ["Failure", "grid-2"], sections
    # the section links stay on the list views (Airflow's nav entry shows the runs)
    frame.locator(".crumbs").get_by_role("link", name="Runs").click()
    expect(frame.locator(".mainnav")).to_be_visible()
    expect(frame.locator(".brand")).to_be_hidden()
    # not framed: the header is there
    page.goto(f"{site.url}/#/run/{run_id}/step/load")
    expect(page.locator(".brand")).to_be_visible()


def test_the_frame_follows_the_host_theme_with_readable_contrast(site: Site, page: Any) -> None:
    run_id = site.ids["failed"]
    frame = host(page, site, f"#/run/{run_id}/step/load", theme="dark")
    expect(frame.locator("html")).to_have_attribute("data-theme", "dark")
    expect(frame.locator("table.log tbody tr").first).to_be_visible()
    checked = frame.locator("html").evaluate(
        f"(_, selectors) => ({CONTRAST_JS})(selectors)",
        [
            ".muted",
            ".tl-time",
            ".tl-name",
            ".exc-type",
            ".frame-where",
            ".exc-relation",
            ".tab",
            ".kv dt",
            ".crumbs a",
            ".tag-root",
            ".btn-primary",
            ".btn",
            ".badge",
            ".exc-message",
            ".exc-summary",
            ".live-indicator",
            ".host-links .btn",
            "h1",
            "h2",
        ],
    )
    assert len(checked) >= 15, checked
    low = [c for c in checked if c[2] < 4.5]
    assert low == [], f"below the WCAG AA contrast ratio of 4.5:1 in the dark theme: {low}"
    page.evaluate("document.documentElement.className = 'light'")
    expect(frame.locator("html")).to_have_attribute("data-theme", "light")
    page.evaluate("document.documentElement.className = 'dark'")
    expect(frame.locator("html")).to_have_attribute("data-theme", "dark")


def test_links_to_the_orchestrator_open_in_the_top_window(site: Site, page: Any) -> None:
    run_id = site.ids["day_fail"]  # an Airflow run: scheduled__2026-11-21T00:00:00+00:00 of customer_sync
    dag_run = f"{site.url}/dags/customer_sync/runs/scheduled__2026-11-21T00%3A00%3A00%2B00%3A00"
    page.route(dag_run, lambda route: route.fulfill(body="<h1>Airflow's DAG run</h1>", content_type="text/html"))
    frame = host(page, site, f"#/run/{run_id}")
    link = frame.get_by_test_id("airflow-dag-run")
    expect(link).to_have_attribute("target", "_top")
    link.click()
    page.wait_for_url(dag_run)
    expect(page.locator("h1")).to_have_text("Airflow's DAG run")


def test_runs_of_other_orchestrators_get_no_airflow_links(site: Site, page: Any) -> None:
    page.goto(f"{site.url}/#/run/{site.ids['failed']}/step/load")
    expect(page.locator("section.failure .exc-summary")).to_be_visible()
    expect(page.locator(".host-links")).to_have_count(0)


def test_copy_falls_back_to_a_selection_when_the_clipboard_api_is_refused(site: Site, page: Any) -> None:
    run_id = site.ids["failed"]
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    with_dossier(page, run_id)
    refuse = "navigator.clipboard.writeText = () => Promise.reject(new DOMException('refused', 'NotAllowedError'));"
    page.add_init_script(f"if (window.top !== window) {{ {refuse} }}")
    frame = host(page, site, f"#/run/{run_id}")
    page.evaluate("navigator.clipboard.writeText('nothing copied yet')")
    command = frame.locator(".dossier .command code").first
    expect(command).to_have_text("python nightly_etl.py --from load")
    button = frame.locator(".dossier .command button").first
    button.click()
    expect(button).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "python nightly_etl.py --from load"


def test_copy_says_copied_only_when_it_worked(site: Site, page: Any) -> None:
    run_id = site.ids["failed"]
    with_dossier(page, run_id)
    page.add_init_script(
        "navigator.clipboard.writeText = () => Promise.reject(new DOMException('refused', 'NotAllowedError'));"
        "document.execCommand = () => false;"
    )
    page.goto(f"{site.url}/#/run/{run_id}")
    button = page.locator(".dossier .command button").first
    button.click()
    expect(button).to_have_text("Press Ctrl+C")
    expect(page.locator(".dossier [role=status]").first).to_have_text(
        "Could not copy: the text is selected, press Ctrl+C"
    )
    assert page.evaluate("window.getSelection().toString()") == "python nightly_etl.py --from load"
