"""Regenerate the UI screenshots in docs/ from a seeded store, in Debian's chromium at 1280x800.

    PYTHONPATH=$PWD/src .venv/bin/python scripts/screenshots.py [--out docs]

Writes ui-run.png (a failed run's first screen), ui-runs.png (the runs list) and ui-failures.png
with ui-failures-phone.png (the failure groups at 1280x800 and as cards at 390x844). It seeds a
throwaway SQLite store with the test suite's helpers (tests/seeding.py: a real recorded failure
with a chained exception, history rows of other flows), serves the real app on loopback and
shoots the first viewport: what a person sees before scrolling.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test helpers (tests/seeding.py, tests/liveserver.py)

from tests.liveserver import LiveServer  # noqa: E402
from tests.seeding import failed_run, history_run, log_run  # noqa: E402

from rundossier import Recorder  # noqa: E402
from rundossier.server import create_app  # noqa: E402
from rundossier.settings import Settings  # noqa: E402
from rundossier.storage.db import RunStore  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SHOTS = ("ui-run.png", "ui-runs.png", "ui-failures.png", "ui-failures-phone.png")


def seed(store: RunStore, rec: Recorder) -> dict[str, str]:
    ids = {
        "old_ok": history_run(store, flow_id="nightly_etl", ago=timedelta(days=1, hours=2), duration_s=312),
        "timeout": history_run(
            store,
            flow_id="partner_export",
            status="failed",
            ago=timedelta(hours=9),
            error=(
                "requests.exceptions.ReadTimeout",
                "HTTPSConnectionPool(host='api.partner.example', port=443): Read timed out. (read timeout=30)",
            ),
            duration_s=95,
        ),
        "crashed": history_run(
            store,
            flow_id="acc_nightly",
            status="crashed",
            ago=timedelta(hours=5),
            orchestrator="airflow",
            run_key="scheduled__2026-12-03T00:00:00+00:00",
            error=(None, "the worker was killed (SIGKILL, exit code -9): out of memory"),
            duration_s=1804,
        ),
        "sync_fail": history_run(
            store,
            flow_id="customer_sync",
            status="failed",
            ago=timedelta(hours=3),
            orchestrator="airflow",
            run_key="scheduled__2026-12-04T00:00:00+00:00",
            error=("KeyError", "'customer_id'"),
            duration_s=12.4,
        ),
        "ml_ok": history_run(
            store, flow_id="ml_train", ago=timedelta(hours=2), orchestrator="prefect", duration_s=1520
        ),
        "report": log_run(rec, 300),
    }
    ids["failed"] = failed_run(rec)
    return ids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs"), help="folder for the PNG files (default: docs/)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.resolve(
            explicit={"home": f"{tmp}/home", "db_url": f"sqlite:///{tmp}/runs.db", "storage_url": f"file://{tmp}/blobs"}
        )
        store = RunStore(settings.db_url)
        rec = Recorder(settings, store=store)
        ids = seed(store, rec)
        with LiveServer(create_app(settings, store=store, blobs=rec.blobs)) as server, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport=VIEWPORT, color_scheme="light")
            page.goto(f"{server.url}/#/run/{ids['failed']}")
            page.get_by_test_id("top-frame").wait_for()
            page.locator("section.failure .frame-app").first.wait_for()
            page.screenshot(path=str(out / "ui-run.png"))
            page.goto(f"{server.url}/#/runs")
            page.locator(f"tr[data-run-id='{ids['failed']}']").wait_for()
            page.mouse.move(0, 0)
            page.screenshot(path=str(out / "ui-runs.png"))
            for viewport, name in ((VIEWPORT, "ui-failures.png"), (PHONE, "ui-failures-phone.png")):
                page.set_viewport_size(viewport)
                page.goto(f"{server.url}/#/failures")
                page.locator("table.failures tbody tr").first.wait_for()
                page.get_by_test_id("trend").first.wait_for()
                page.mouse.move(0, 0)
                page.screenshot(path=str(out / name))
            browser.close()
        store.close()
    for name in SHOTS:
        print(out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
