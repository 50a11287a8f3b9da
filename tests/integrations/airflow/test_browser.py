"""In a real browser: the Trace tab of a task instance in Airflow's UI downloads the stored trace.

Debian's chromium driven by Playwright signs into a real `airflow api-server` (simple auth
manager), opens the task instance's Trace tab, clicks View Trace inside the tab's iframe and
receives the file through the browser's own download event. A screenshot of the tab is kept in
test-artifacts/screenshots/airflow-trace-tab.png.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from rundossier.readside import step_trace
from rundossier.server.ui import STATIC

from .airflow_env import ADMIN_PASSWORD

CHROMIUM = os.environ.get("RUNDOSSIER_CHROMIUM", "/usr/bin/chromium")

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
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser, api):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(api.base + "/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(api.base + "/", timeout=30_000)
    yield page
    context.close()


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


def view_trace_frame(page):
    """The Trace tab's iframe (page.frames[-1]), once its View Trace link is there."""
    frame = rundossier_frame(page)
    frame.locator('a[data-testid="view-trace"]').wait_for()
    return frame


def download_trace(page) -> tuple[str, str]:
    frame = view_trace_frame(page)
    with page.expect_download() as info:
        frame.click('a[data-testid="view-trace"]')
    download = info.value
    path = download.path()
    return download.suggested_filename, Path(path).read_text(encoding="utf-8")


def test_view_trace_in_the_task_instance_tab_downloads_the_stored_trace(page, api, store, blobs, artifacts, recorded):
    run = recorded["rd_example_chained_failure"]
    page.goto(task_instance_tab(api.base, run.flow_id, run.run_key, "load"))
    filename, text = download_trace(page)
    assert filename == f"{run.run_id}_trace.txt"
    assert text == step_trace(store, blobs, run.run_id, "load").text
    assert "RuntimeError: load of table orders failed" in text
    shots = artifacts / "screenshots"
    shots.mkdir(exist_ok=True)
    page.screenshot(path=str(shots / "airflow-trace-tab.png"))


def test_a_mapped_task_instance_tab_finds_its_map_index(page, api, store, blobs, recorded):
    run = recorded["rd_example_mapped"]
    page.goto(task_instance_tab(api.base, run.flow_id, run.run_key, "process", map_index=2))
    filename, text = download_trace(page)
    assert filename == f"{run.run_id}_trace.txt"
    assert text == step_trace(store, blobs, run.run_id, "process[2]").text
    assert "ZeroDivisionError: partition 2 has no rows to average" in text


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
    assert "#/runs?orchestrator=airflow" in rundossier_frame(page).url
