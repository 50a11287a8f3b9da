"""The run page's artifacts in a real chromium: the manifest beside the timeline (missing inputs
marked, producers linked), the data-flow graph of producer -> consumer steps (one in another run),
and the dossier's line about the missing input. Saves ui-artifacts.png and ui-data-flow.png among
the screenshots (and into docs/ with RUNDOSSIER_UPDATE_DOCS=1: the images README's docs show)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS, Site

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _shots(name: str) -> list[Path]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return [SCREENSHOTS / name, *([DOCS / name] if os.environ.get("RUNDOSSIER_UPDATE_DOCS") == "1" else [])]


class Missing(FileNotFoundError):
    pass


def _pipeline(site: Site, data: Path) -> tuple[str, str]:
    data.mkdir()
    (data / "orders.csv").write_text("order_id,amount\n1,12.5\n2,7\n")
    with site.rec.run("extract_orders") as first, first.step("extract") as step:
        step.artifact(str(data / "orders.csv"), kind="csv")
    try:
        with site.rec.run("nightly_etl", run_key="manual__2026-12-05T06:00:00") as second:
            with second.step("stage") as step:
                step.artifact(str(data / "orders.csv"), role="input", kind="csv")
                (data / "staging.parquet").write_bytes(b"PAR1" + b"\0" * 2048)
                step.artifact(str(data / "staging.parquet"), kind="parquet")
            with second.step("convert", upstream=["stage"]) as step:
                step.artifact(str(data / "staging.parquet"), role="input", kind="parquet")
                step.artifact(str(data / "fx_rates.csv"), role="input", kind="csv")
                step.artifact("s3://warehouse/orders_eur/2026-12-05.parquet", kind="parquet", size=0)
                raise Missing(f"[Errno 2] No such file or directory: '{data / 'fx_rates.csv'}'")
    except Missing:
        pass
    return first.run_id, second.run_id


def test_the_run_page_shows_artifacts_beside_the_timeline_and_the_data_flow(
    site: Site, page: Any, tmp_path: Path
) -> None:
    first, second = _pipeline(site, tmp_path / "lake")
    page.goto(f"{site.url}/#/run/{second}")
    card = page.locator("section.artifacts")
    expect(card).to_be_visible()
    rows = card.locator("tbody tr")
    expect(rows).to_have_count(5)
    expect(card.locator(".count")).to_have_text("5 recorded, 1 missing")
    missing = card.locator("tr.artifact-missing")
    expect(missing).to_have_count(1)
    expect(missing).to_contain_text("fx_rates.csv")
    expect(missing.locator(".tag-missing")).to_have_text("missing")
    # an input another run wrote links to that run; one this run wrote links to the step
    external = rows.nth(0)
    expect(external.locator(".producer a")).to_have_text("extract_orders / extract")
    expect(external.locator(".producer a")).to_have_attribute("href", f"#/run/{first}")
    expect(rows.nth(2).locator(".producer a")).to_have_text("stage")
    expect(rows.nth(1).locator("td.num")).to_have_text("2.0 KiB")
    # the card sits beside the timeline (same column of the grid)
    column = page.locator(".grid-2 .column")
    expect(column.locator("section[aria-label=Lifecycle]")).to_be_visible()
    expect(column.locator("section.artifacts")).to_be_visible()
    # the data-flow graph: another run's step -> stage -> convert
    flow = page.locator("section[aria-label='Data flow']")
    expect(flow.locator(".node")).to_have_count(3)
    expect(flow.locator(".node.st-external")).to_contain_text("extract")
    expect(flow.locator("path.edge")).to_have_count(2)
    expect(flow.locator("a.node-link", has_text="extract")).to_have_attribute("href", f"#/run/{first}")
    # the dossier says which input was missing
    expect(page.locator("section.dossier, [data-testid=dossier]").first).to_contain_text(
        "fx_rates.csv did not exist when the step read it"
    )
    page.locator(".grid-2").first.scroll_into_view_if_needed()
    for path in _shots("ui-artifacts.png"):
        page.locator(".grid-2").first.screenshot(path=str(path))
    for path in _shots("ui-data-flow.png"):
        flow.screenshot(path=str(path))
    # the producer link opens the other run
    external.locator(".producer a").click()
    expect(page).to_have_url(re.compile(f"#/run/{first}$"))
    expect(page.locator("section.artifacts tbody tr")).to_have_count(1)
    expect(page.locator("section[aria-label='Data flow']")).to_be_hidden()


def test_a_run_without_artifacts_shows_no_artifact_cards(site: Site, page: Any) -> None:
    page.goto(f"{site.url}/#/run/{site.ids['failed']}")
    expect(page.locator("section[aria-label=Lifecycle]")).to_be_visible()
    expect(page.locator("table.steps tbody tr")).to_have_count(2)
    expect(page.locator("section.artifacts")).to_be_hidden()
    expect(page.locator("section[aria-label='Data flow']")).to_be_hidden()


def test_a_big_manifest_pages_with_load_more(site: Site, page: Any) -> None:
    with site.rec.run("fan_out") as run, run.step("split") as step:
        for i in range(205):
            step.artifact(f"s3://lake/part-{i:04d}.parquet", size=1024, checksum=f"etag:{i}")
    page.goto(f"{site.url}/#/run/{run.run_id}")
    card = page.locator("section.artifacts")
    expect(card.locator("tbody tr")).to_have_count(200)
    expect(card.locator(".count")).to_have_text("200+ recorded")
    card.get_by_role("button", name="Load more").click()
    expect(card.locator("tbody tr")).to_have_count(205)
    expect(card.locator(".count")).to_have_text("205 recorded")
    expect(card.get_by_role("button", name="Load more")).to_be_hidden()
    expect(card.locator("tbody tr").last).to_contain_text("part-0204.parquet")
