"""What a Prefect user sees in Prefect's own UI: the artifacts of a failed run, the Block's card.

A real `prefect server start` serves Prefect's UI; rundossier's server (uvicorn, loopback) serves the
trace downloads the artifacts link to and the logo the block catalog shows; the flow runs in its own
process (`scripts/plain_flow.py failing`: a task retried once, then a task failing with a chained
exception). Screenshots go to test-artifacts/screenshots/prefect_*.png.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import rundossier
from rundossier.prefect import RunDossier
from rundossier.server.app import create_app
from rundossier.settings import Settings
from tests.liveserver import LiveServer
from tests.s3server import free_port

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[4] / "test-artifacts" / "screenshots"
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "plain_flow.py"
SRC = Path(rundossier.__file__).resolve().parents[1]
PREFECT = Path(sys.executable).with_name("prefect")
TIMEOUT_MS = 30_000


@dataclass
class Setup:
    prefect_url: str  # Prefect's UI
    rd_url: str  # rundossier's UI and API
    flow_run_id: str
    artifacts: dict[str, Any]  # key -> artifact
    logo_url: str


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 180) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server start exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"Prefect's server did not answer {url} within {timeout_s:.0f} s")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    tmp = tmp_path_factory.mktemp("prefect-ui")
    settings = Settings.resolve(
        explicit={"home": str(tmp / "home"), "db_url": f"sqlite:///{tmp}/rd.db", "storage_url": f"file://{tmp}/blobs"}
    )
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    with LiveServer(create_app(settings)) as rd:
        logo = f"{rd.url}/static/logo.png"
        env = dict(
            os.environ,
            PREFECT_HOME=str(tmp / "prefect-home"),
            PREFECT_API_URL=api,
            PREFECT_SERVER_UI_API_URL=api,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PYTHONPATH=str(SRC),
            RUNDOSSIER_PREFECT_LOGO_URL=logo,  # the Prefect server registers the Block type at start
        )
        with (tmp / "server.log").open("wb") as log:
            server = subprocess.Popen(
                [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_healthy(f"{api}/health", server)
            with temporary_settings(updates={PREFECT_API_URL: api}), pytest.MonkeyPatch.context() as mp:
                mp.setattr(RunDossier, "_logo_url", logo)  # saving registers the type too: the same logo
                block = RunDossier(
                    storage_url=settings.storage_url,
                    db_url=settings.db_url,
                    home=str(settings.home),
                    ui_base_url=rd.url,
                )
                block.save("prefect-ui", overwrite=True)
                for name in ("failing", "early"):
                    flow = subprocess.run(
                        [sys.executable, str(SCRIPT), name],
                        env=dict(env, RD_TEST_BLOCK="prefect-ui"),
                        capture_output=True,
                        timeout=300,
                    )
                    assert flow.returncode == 1, flow.stderr.decode()[-3000:]  # the flow fails, as it should
                with get_client(sync_client=True) as c:
                    flow_runs = {fr.name: fr for fr in c.read_flow_runs(limit=5)}
                    (failing,) = [
                        fr
                        for fr in flow_runs.values()
                        if fr.state_type.value == "FAILED" and c.read_flow(fr.flow_id).name == "failing-flow"
                    ]
                    artifacts = {a.key: a for a in c.read_artifacts(limit=20) if a.key}
            yield Setup(f"http://127.0.0.1:{port}", rd.url, str(failing.id), artifacts, logo)
        finally:
            server.terminate()
            server.wait(60)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"prefect_{name}.png"), full_page=True)


def test_the_flow_runs_artifacts_tab_lists_both_artifacts(setup: Setup, page: Any) -> None:
    page.goto(f"{setup.prefect_url}/runs/flow-run/{setup.flow_run_id}")
    page.get_by_text("Artifacts", exact=True).first.click()
    page.get_by_text("rundossier-failing-flow-failure").first.wait_for()
    page.get_by_text("rundossier-failing-flow-trace").first.wait_for()
    _shot(page, "artifacts_tab")


def test_the_failure_summary_renders_and_names_the_failing_task(setup: Setup, page: Any) -> None:
    art = setup.artifacts["rundossier-failing-flow-failure"]
    page.goto(f"{setup.prefect_url}/artifacts/artifact/{art.id}")
    heading = page.get_by_role("heading", name="Run dossier:")
    heading.wait_for()
    title = heading.inner_text()
    assert "in step load-" in title and "RuntimeError: could not load batch 7" in title, title
    assert "flaky" not in title and "Timeout" not in title, title
    body = page.inner_text("body")
    assert ":warning:" not in body and "file://" not in body
    assert "redo: load-" in body and "keep: flaky-" in body
    links = {a.inner_text(): a.get_attribute("href") for a in page.locator("a[href^='http']").all()}
    assert links["Download the full trace"].startswith(f"{setup.rd_url}/api/runs/run_"), links
    assert links["Read the full trace"].startswith(f"{setup.rd_url}/api/runs/run_"), links
    assert "/steps/load-" in links["Read the full trace"]
    assert links["Open the run in rundossier"].startswith(f"{setup.rd_url}/#/run/run_"), links
    page.set_viewport_size({"width": 1400, "height": 2600})  # Prefect's UI scrolls inside the page
    _shot(page, "artifact_failure")
    with page.expect_download() as download:  # a click in Prefect's UI downloads the trace
        page.get_by_role("link", name="Read the full trace").click()
    text = Path(download.value.path()).read_text()
    assert "RuntimeError: could not load batch 7" in text and "ConnectionError: warehouse timeout after 30s" in text


def test_signals_render_as_prefect_renders_them(setup: Setup, page: Any) -> None:
    """A flow failing in its own code: the dossier's "no step" note, with a real warning sign."""
    art = setup.artifacts["rundossier-early-flow-failure"]
    page.goto(f"{setup.prefect_url}/artifacts/artifact/{art.id}")
    page.get_by_role("heading", name="Run dossier:").wait_for()
    note = page.get_by_text("no step was recorded for this run")
    assert note.inner_text().startswith("\u26a0")
    body = page.inner_text("body")
    assert ":warning:" not in body and "file://" not in body
    assert "ValueError: bad parameter: day=2026-13-01" in body
    _shot(page, "artifact_signal")


def test_the_trace_link_artifact_downloads_the_trace(setup: Setup, page: Any) -> None:
    art = setup.artifacts["rundossier-failing-flow-trace"]
    page.goto(f"{setup.prefect_url}/artifacts/artifact/{art.id}")
    link = page.get_by_role("link", name="Download the full trace of this failure")
    assert link.get_attribute("href").startswith(f"{setup.rd_url}/api/runs/run_")
    _shot(page, "artifact_trace")
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename.endswith("_trace.txt")
    assert "RuntimeError: could not load batch 7" in Path(download.value.path()).read_text()


def test_the_block_catalog_card_shows_the_logo(setup: Setup, page: Any) -> None:
    page.goto(f"{setup.prefect_url}/blocks/catalog")
    page.get_by_placeholder("Search blocks").fill("RunDossier")
    logo = page.locator(f"img[src='{setup.logo_url}']").first
    logo.wait_for()
    page.wait_for_function("img => img.complete", arg=logo.element_handle())
    assert logo.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [256, 256]  # loaded, square
    _shot(page, "block_catalog")
