"""In a real browser: rundossier's views inside Airflow's UI, where Airflow frames them in a sandbox.

Debian's chromium driven by Playwright signs into a real `airflow api-server` (simple auth
manager, auth on) and opens the plugin's views: the Trace tab of a task instance, the Run History
tab of a DAG and the Run History nav entry. Airflow renders each in an iframe whose `sandbox` its
UI bundle fixes. The installed 3.3.2 bundle says
`allow-scripts allow-same-origin allow-forms allow-downloads`; the 3.1 to 3.3 releases before
apache/airflow#71803 leave `allow-downloads` out, and then a download started in the frame does
nothing. Tests marked with the `sandbox` fixture run twice: under the installed bundle, and under
the same bundle with `allow-downloads` taken out of its sandbox string (each asserts what the
iframe's sandbox really is). Neither sandbox has `allow-top-navigation` or `allow-popups`.

Downloads are asserted through the browser's own download event, its filename and the file's
content; links to Airflow pages through the top window's address; Copy through the clipboard.
Screenshots (1400x900) go to test-artifacts/screenshots/airflow-*.png.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from rundossier.core.ids import new_run_id
from rundossier.integrations.airflow.views import URL_PREFIX
from rundossier.read.reader import step_trace
from rundossier.server.ui import STATIC

from .airflow_env import ADMIN_PASSWORD, EXAMPLE_PASSWORD

CHROMIUM = os.environ.get("RUNDOSSIER_CHROMIUM", "/usr/bin/chromium")
VIEWPORT = {"width": 1400, "height": 900}
#: the api-server under a host name: plain http there is not a secure context (no Clipboard API)
PLAIN_HOST = "airflow.test"
WITH_DOWNLOADS = "allow-forms allow-downloads"
#: the iframe sandbox of Airflow 3.1 to 3.3's external views, before apache/airflow#71803
OLD_SANDBOX = "allow-scripts allow-same-origin allow-forms"

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no browser at {CHROMIUM} (apt-get install chromium)"),
    pytest.mark.skipif(
        not (STATIC / "index.html").exists(),
        reason="the rundossier web UI (server/static/index.html) is not in this tree yet",
    ),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", f"--host-resolver-rules=MAP {PLAIN_HOST} 127.0.0.1"]
        )
        yield b
        b.close()


@contextmanager
def signed_in(browser, base: str, **context_options) -> Iterator[object]:
    """A page signed into Airflow's UI at `base` (its own browser context)."""
    context = browser.new_context(accept_downloads=True, viewport=VIEWPORT, **context_options)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(base + "/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + "/", timeout=30_000)
    try:
        yield page
    finally:
        context.close()


def without_allow_downloads(page) -> None:
    """Serve Airflow's UI bundle with `allow-downloads` taken out of the external views' sandbox."""

    def rewrite(route) -> None:
        response = route.fetch()
        route.fulfill(response=response, body=response.text().replace(WITH_DOWNLOADS, "allow-forms"))

    page.route(re.compile(r".*/assets/index-[^/]*\.js$"), rewrite)


@pytest.fixture
def page(browser, api):
    with signed_in(browser, api.base) as page:
        yield page


@pytest.fixture(params=["installed", "without-allow-downloads"])
def sandbox(request, page) -> str:
    """Run the test under the installed bundle's sandbox and under 3.1-3.3's (no allow-downloads)."""
    if request.param != "installed":
        without_allow_downloads(page)
    return request.param


def check_sandbox(page, variant: str) -> None:
    tokens = set((page.locator('iframe[src*="rundossier/"]').get_attribute("sandbox") or "").split())
    assert {"allow-scripts", "allow-same-origin"} <= tokens
    assert not tokens & {"allow-top-navigation", "allow-top-navigation-by-user-activation", "allow-popups"}
    if variant != "installed":
        assert tokens == set(OLD_SANDBOX.split()), tokens


def task_instance_tab(base: str, dag_id: str, run_key: str, task_id: str, map_index: int | None = None) -> str:
    mapped = f"/mapped/{map_index}" if map_index is not None else ""
    return f"{base}/dags/{dag_id}/runs/{quote(run_key, safe='')}/tasks/{task_id}{mapped}/plugin/rundossier-trace"


def rundossier_frame(page, timeout_s: float = 30.0):
    """The tab's iframe once it shows the rundossier page (bounded wait)."""
    for _ in range(int(timeout_s * 10)):
        frame = next((f for f in reversed(page.frames) if "/rundossier/" in f.url), None)
        if frame is not None:
            return frame
        page.wait_for_timeout(100)
    raise AssertionError(f"no rundossier iframe in {page.url}; frames: {[f.url for f in page.frames]}")


def download(page, locator) -> tuple[str, str]:
    """Click `locator` (inside the frame) and return the browser's download: filename, text."""
    locator.wait_for()
    with page.expect_download(timeout=20_000) as info:
        locator.click()
    d = info.value
    return d.suggested_filename, Path(d.path()).read_text(encoding="utf-8")


def screenshot(page, artifacts: Path, name: str) -> None:
    shots = artifacts / "screenshots"
    shots.mkdir(exist_ok=True)
    page.screenshot(path=str(shots / f"airflow-{name}.png"))


def api_text(api, path: str) -> str:
    status, body, _ = api.get(URL_PREFIX + path, token=api.token())
    assert status == 200, body
    return body.decode("utf-8")


# -- downloads ----------------------------------------------------------------------------------


def test_view_trace_in_the_task_instance_tab_downloads_the_stored_trace(
    page, sandbox, api, store, blobs, artifacts, recorded
):
    run = recorded["rd_example_chained_failure"]
    page.goto(task_instance_tab(api.base, run.flow_id, run.run_key, "load"))
    frame = rundossier_frame(page)
    check_sandbox(page, sandbox)
    filename, text = download(page, frame.locator('section.failure a[data-testid="view-trace"]'))
    assert filename == f"{run.run_id}_trace.txt"
    assert text == step_trace(store, blobs, run.run_id, "load").text
    assert "RuntimeError: load of table orders failed" in text
    if sandbox == "installed":
        screenshot(page, artifacts, "trace-tab")


def test_the_trace_downloaded_in_the_tab_is_masked(page, sandbox, api, store, blobs, recorded):
    run = recorded["rd_example_leaked_login"]
    page.goto(task_instance_tab(api.base, run.flow_id, run.run_key, "connect"))
    frame = rundossier_frame(page)
    check_sandbox(page, sandbox)
    filename, text = download(page, frame.locator('section.failure a[data-testid="view-trace"]'))
    assert filename == f"{run.run_id}_trace.txt"
    assert text == step_trace(store, blobs, run.run_id, "connect").text
    assert "PermissionError" in text and EXAMPLE_PASSWORD not in text
    assert EXAMPLE_PASSWORD not in frame.locator("body").inner_text()


def test_the_structured_trace_and_the_step_log_download_in_the_tab(page, sandbox, api, recorded):
    run = recorded["rd_example_chained_failure"]
    page.goto(task_instance_tab(api.base, run.flow_id, run.run_key, "load"))
    frame = rundossier_frame(page)
    check_sandbox(page, sandbox)
    filename, text = download(page, frame.get_by_test_id("trace-json"))
    assert filename == f"{run.run_id}_trace.json"
    doc = json.loads(text)
    assert doc == json.loads(api_text(api, f"/api/runs/{run.run_id}/steps/load/trace.json?try=1"))
    assert doc["chain"][-1]["type"] == "RuntimeError"
    filename, text = download(page, frame.locator(".log-actions").get_by_role("link", name="Download"))
    assert filename == f"{run.run_id}_step_1_log.txt"
    assert text == api_text(api, f"/api/runs/{run.run_id}/steps/load/logs/download?try=1&stream=all")
    assert text.strip()


# -- the tab itself -------------------------------------------------------------------------------


def test_the_tab_shows_the_failure_first_and_above_the_fold(page, api, artifacts, recorded):
    run = recorded["rd_example_chained_failure"]
    page.goto(task_instance_tab(api.base, run.flow_id, run.run_key, "load"))
    frame = rundossier_frame(page)
    root_cause = frame.locator(".exc-root")
    root_cause.locator(".frame-app").first.wait_for()
    summary = frame.locator("section.failure .exc-summary")
    assert summary.inner_text() == "RuntimeError: load of table orders failed"
    assert root_cause.locator(".exc-type").inner_text() == "JSONDecodeError"
    # nothing scrolled, and the final error, View Trace, the root cause and its first own frame
    # are inside the 1400x900 window and inside the frame's box
    assert page.evaluate("window.scrollY") == 0 and frame.evaluate("window.scrollY") == 0
    iframe = page.locator('iframe[src*="rundossier/"]').bounding_box()
    for part in (
        summary,
        frame.locator('section.failure a[data-testid="view-trace"]'),
        root_cause.locator(".exc-message"),
        root_cause.locator(".frame-app").first,
    ):
        box = part.bounding_box()
        assert box is not None
        bottom = min(VIEWPORT["height"], iframe["y"] + iframe["height"])
        assert iframe["y"] <= box["y"] and box["y"] + box["height"] <= bottom, (part, box, iframe)
    # the whole chain is in the tab: library frames folded, the app's frames open, the last log lines
    assert frame.locator("section.failure .exc").count() == 3
    assert frame.locator(".frame-fold details[open]").count() == 0
    assert frame.locator(".logtail .logtail-lines").inner_text().strip()
    # failure before Details and Lifecycle; rundossier's own header and section links are gone
    assert frame.evaluate(
        "() => Boolean(document.querySelector('section.failure').compareDocumentPosition("
        "document.querySelector('section.details')) & Node.DOCUMENT_POSITION_FOLLOWING)"
    )
    assert not frame.locator(".brand").is_visible()
    assert not frame.locator(".mainnav").is_visible()
    screenshot(page, artifacts, "trace-tab-fold")


@pytest.mark.parametrize("host", ["127.0.0.1", PLAIN_HOST])
def test_copy_puts_the_airflow_tasks_clear_command_on_the_clipboard(browser, api, recorded, host):
    """On 127.0.0.1 the Clipboard API is there; on a plain-http host name it is not (the fallback copies)."""
    run = recorded["rd_example_chained_failure"]
    base = api.base.replace("127.0.0.1", host)
    with signed_in(browser, base) as page:
        page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=api.base)
        reader = page.context.new_page()
        reader.goto(api.base + "/api/v2/version")
        reader.evaluate("navigator.clipboard.writeText('nothing copied yet')")
        page.bring_to_front()
        page.goto(task_instance_tab(base, run.flow_id, run.run_key, "load"))
        frame = rundossier_frame(page)
        assert frame.evaluate("window.isSecureContext") is (host == "127.0.0.1")
        rerun = frame.locator("section.failure .rerun")
        command = rerun.locator(".command code").first
        command.wait_for()
        assert command.inner_text().startswith("airflow tasks clear rd_example_chained_failure --task-regex '^load$' ")
        button = rerun.locator(".command button").first
        button.click()
        page.wait_for_function("b => b.textContent !== 'Copy'", arg=button.element_handle())
        assert button.inner_text() == "Copied"
        assert reader.evaluate("navigator.clipboard.readText()") == command.inner_text()


def test_links_to_airflow_pages_open_in_the_airflow_window(page, sandbox, api, recorded):
    run = recorded["rd_example_chained_failure"]
    dag_run = f"{api.base}/dags/{run.flow_id}/runs/{quote(run.run_key, safe='')}"
    page.goto(task_instance_tab(api.base, run.flow_id, run.run_key, "load"))
    frame = rundossier_frame(page)
    check_sandbox(page, sandbox)
    assert frame.get_by_test_id("airflow-log").get_attribute("href").endswith("/tasks/load?try_number=1")
    frame.get_by_test_id("airflow-task-instance").click()
    page.wait_for_url(f"{dag_run}/tasks/load")
    assert not any("/rundossier/" in f.url for f in page.frames)
    # from a run's page in the DAG's tab: the DAG run
    page.goto(f"{api.base}/dags/{run.flow_id}/plugin/rundossier-dag")
    frame = rundossier_frame(page)
    frame.locator(f"tr[data-run-id='{run.run_id}'] a.runlink").click()
    frame.get_by_test_id("airflow-dag-run").click()
    page.wait_for_url(dag_run)


def test_the_tab_follows_airflows_light_and_dark_mode(browser, api, artifacts, recorded):
    run = recorded["rd_example_chained_failure"]
    card_luminance = """() => {
      const card = document.querySelector('section.failure');
      const [r, g, b] = getComputedStyle(card).backgroundColor.match(/\\d+/g).map(Number);
      return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
    }"""
    with signed_in(browser, api.base, color_scheme="dark") as page:
        page.goto(task_instance_tab(api.base, run.flow_id, run.run_key, "load"))
        frame = rundossier_frame(page)
        frame.locator("section.failure .exc-summary").wait_for()
        assert page.evaluate("document.documentElement.classList.contains('dark')")
        assert frame.evaluate("document.documentElement.dataset.theme") == "dark"
        assert frame.evaluate(card_luminance) < 0.2
        screenshot(page, artifacts, "trace-tab-dark")
        # Airflow follows the system's mode: switch it while the tab is open
        page.emulate_media(color_scheme="light")
        page.wait_for_function("() => document.documentElement.classList.contains('light')")
        frame.wait_for_function("() => document.documentElement.dataset.theme === 'light'")
        assert frame.evaluate(card_luminance) > 0.9


# -- landing on the right view ----------------------------------------------------------------


def test_a_mapped_task_instance_tab_finds_its_map_index(page, api, store, blobs, recorded):
    run = recorded["rd_example_mapped"]
    page.goto(task_instance_tab(api.base, run.flow_id, run.run_key, "process", map_index=2))
    frame = rundossier_frame(page)
    filename, text = download(page, frame.locator('section.failure a[data-testid="view-trace"]'))
    assert filename == f"{run.run_id}_trace.txt"
    assert text == step_trace(store, blobs, run.run_id, "process[2]").text
    assert "ZeroDivisionError: partition 2 has no rows to average" in text
    assert frame.get_by_test_id("airflow-task-instance").get_attribute("href").endswith("/tasks/process/mapped/2")


def test_a_retried_task_instance_tab_shows_its_last_try_and_reaches_the_failed_ones(page, api, store, blobs, recorded):
    run = recorded["rd_example_retry"]
    page.goto(task_instance_tab(api.base, run.flow_id, run.run_key, "flaky_fetch"))
    frame = rundossier_frame(page)
    frame.locator(".try-switch a[aria-current=page]").wait_for()
    assert frame.locator(".try-switch a[aria-current=page]").inner_text() == "3"
    assert frame.locator("h1 + .badge").inner_text() == "success"
    earlier = frame.locator(".notice", has_text="earlier tries failed")
    assert "try 1" in earlier.inner_text() and "try 2" in earlier.inner_text()
    earlier.get_by_role("link", name="try 2").click()
    filename, text = download(page, frame.locator('section.failure a[data-testid="view-trace"]'))
    assert filename == f"{run.run_id}_trace.txt"
    assert text == step_trace(store, blobs, run.run_id, "flaky_fetch", 2).text
    assert frame.get_by_test_id("airflow-log").get_attribute("href").endswith("/tasks/flaky_fetch?try_number=2")


def test_the_dag_tab_and_the_nav_entry_show_the_run_history(page, api, store, recorded):
    run = recorded["rd_example_chained_failure"]
    page.goto(f"{api.base}/dags/{run.flow_id}/plugin/rundossier-dag")
    frame = rundossier_frame(page)
    assert "flow_id=rd_example_chained_failure" in frame.url
    frame.locator('[data-testid="error-chip"]').first.wait_for()
    assert run.run_key in frame.locator("body").inner_text()
    page.goto(api.base + "/")
    page.get_by_role("link", name="Run History").click()
    page.wait_for_url(f"{api.base}/plugin/rundossier")
    frame = rundossier_frame(page)
    assert "#/runs?orchestrator=airflow" in frame.url
    # Airflow's chrome is around the page: no brand bar, but the sections stay reachable
    frame.locator("table.runs tbody tr").first.wait_for()
    assert not frame.locator(".brand").is_visible()
    frame.locator(".mainnav").get_by_role("link", name="Failures").click()
    frame.locator("h1", has_text="Failures").wait_for()


def test_live_updates_paging_and_search_work_inside_the_tab(page, api, store, recorded):
    run = recorded["rd_example_heavy_logs"]
    page.goto(task_instance_tab(api.base, run.flow_id, run.run_key, "crunch"))
    frame = rundossier_frame(page)
    pager = frame.get_by_test_id("log-page")
    frame.locator("table.log tbody tr").first.wait_for()
    pages = int(re.search(r"Page 1 of (\d+)", pager.inner_text()).group(1))
    assert pages >= 2
    frame.get_by_role("button", name="Next ›").click()
    frame.wait_for_function("() => document.querySelector('[data-testid=log-page]').textContent.startsWith('Page 2')")
    search = frame.get_by_label("Search the log")
    search.fill("checksum mismatch")
    search.press("Enter")
    frame.wait_for_function("() => /^1 \\/ \\d+$/.test(document.getElementById('log-matches').textContent)")
    assert "checksum mismatch" in frame.locator("tr.ln-current").inner_text()
    # live: a run recorded while the DAG's Run History tab is open appears in it
    dag = recorded["rd_example_retry"]
    page.goto(f"{api.base}/dags/{dag.flow_id}/plugin/rundossier-dag")
    frame = rundossier_frame(page)
    frame.locator(f"tr[data-run-id='{dag.run_id}']").wait_for()
    frame.wait_for_function("() => document.querySelector('[data-testid=live-indicator]').textContent === 'Live'")
    now = datetime.now(UTC)
    live_id = store.upsert_run(
        {
            "run_id": new_run_id(),
            "orchestrator": "airflow",
            "flow_id": dag.flow_id,
            "run_key": "manual__live-in-the-tab",
            "status": "running",
            "queued_at": now,
            "started_at": now,
        }
    )
    frame.locator(f"tr[data-run-id='{live_id}']").wait_for(timeout=20_000)


def test_the_api_docs_inside_airflow_load_only_from_the_api_server(page, api, artifacts):
    """`/rundossier/docs` (Swagger UI) behind Airflow's sign-in: its script and style come from the
    api-server itself (fastapi-offline's packaged files), never a CDN, and every operation renders."""
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(f"{api.base}{URL_PREFIX}/docs")
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock-get [data-path='/api/runs']").count() == 1
    assert page.locator(".opblock").count() >= 10
    screenshot(page, artifacts, "api-docs")
    assert any(u.endswith(f"{URL_PREFIX}/openapi.json") for u in requested)
    assert any(f"{URL_PREFIX}/static/docs/swagger-ui-bundle.js" in u for u in requested)
    elsewhere = [u for u in requested if not u.startswith(("data:", api.base + "/"))]
    assert elsewhere == [], f"the docs page sent requests off the machine: {elsewhere}"
