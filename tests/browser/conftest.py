"""Browser tests: Debian's chromium (/usr/bin/chromium) driven by Playwright against the real app
served by uvicorn on loopback, with a seeded SQLite store. Screenshots go to test-artifacts/screenshots/.

Run them with scripts/test-browser.sh (it installs chromium and Playwright's Python package).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from rundossier import Recorder
from rundossier.server import create_app
from rundossier.settings import Settings
from rundossier.storage.db import RunStore
from tests.liveserver import LiveServer
from tests.seeding import failed_run, history_run, log_run

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
TIMEOUT_MS = 15_000


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        reason = f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Site:
    """The served app, its backing store and recorder, and what was seeded."""

    url: str
    store: RunStore
    rec: Recorder
    settings: Settings
    ids: dict[str, str]

    def api(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10)


def _settings(tmp_path: Path) -> Settings:
    return Settings.resolve(
        explicit={
            "home": str(tmp_path / "home"),
            "db_url": f"sqlite:///{tmp_path}/runs.db",
            "storage_url": f"file://{tmp_path}/blobs",
        }
    )


def seed(store: RunStore, rec: Recorder) -> dict[str, str]:
    ids = {
        "week_ok": history_run(store, flow_id="nightly_etl", ago=timedelta(days=5)),
        "week_fail": history_run(
            store, flow_id="nightly_etl", status="failed", ago=timedelta(days=4), error=("TimeoutError", "too slow")
        ),
        "day_fail": history_run(
            store,
            flow_id="customer_sync",
            status="failed",
            ago=timedelta(hours=20),
            orchestrator="airflow",
            run_key="scheduled__2026-11-21T00:00:00+00:00",
            error=("KeyError", "'customer_id'"),
        ),
        "hour_ok": history_run(store, flow_id="ml_train", ago=timedelta(hours=2), orchestrator="prefect"),
    }
    ids["big_log"] = log_run(rec, 2000)
    ids["failed"] = failed_run(rec)
    return ids


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    settings = _settings(tmp_path)
    store = RunStore(settings.db_url)
    rec = Recorder(settings, store=store, live_log_interval=0.2)
    ids = seed(store, rec)
    with LiveServer(create_app(settings, store=store, blobs=rec.blobs)) as server:
        yield Site(server.url, store, rec, settings, ids)
    store.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page; JavaScript errors fail the test; a screenshot is saved when the test ends."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    # "Failed to load resource" is the browser noting an HTTP error the page handles (404, 410)
    pg.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )
    yield pg
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    try:
        # nothing pushes the page wider than the window (wide tables scroll inside their box)
        overflow = pg.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        pg.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    finally:
        context.close()
    assert errors == [], f"the page logged errors: {errors}"
    assert overflow <= 0, f"the page is {overflow}px wider than the window"
