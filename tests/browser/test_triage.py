"""The triage screens as a person sees them, by bounding boxes in the first viewport: a failed run's
first screen at 1280x800, a crash's reason, the runs list at 1280 and as cards at 390, titles, the
address holding filters (Back works), dark mode and the time-zone choice. The `page` fixture fails a
test on any JavaScript error and on a page wider than its window."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS, Site
from tests.seeding import history_run

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def in_first_viewport(page: Any, locator: Any) -> None:
    """`locator` is visible and wholly inside the window without scrolling."""
    expect(locator).to_be_visible()
    box = locator.bounding_box()
    size = page.viewport_size
    assert page.evaluate("() => window.scrollY") == 0
    assert box is not None and box["y"] >= 0 and box["x"] >= 0, box
    assert box["y"] + box["height"] <= size["height"], f"below the fold: {box}"
    assert box["x"] + box["width"] <= size["width"], f"beyond the right edge: {box}"


def test_a_failed_run_opens_on_what_failed_where_and_what_to_do(site: Site, page: Any) -> None:
    page.set_viewport_size(DESKTOP)
    run_id = site.ids["failed"]
    page.goto(f"{site.url}/#/run/{run_id}")
    head = page.get_by_test_id("failure-head")
    expect(head.get_by_test_id("top-frame")).to_be_visible()
    expect(page).to_have_title("nightly_etl · failed · rundossier")
    expect(head.locator(".fh-type")).to_have_text("LoadError")
    expect(head.get_by_test_id("failure-message")).to_have_text("load failed: warehouse unavailable")
    expect(head.get_by_test_id("top-frame")).to_contain_text("_load")
    expect(head.get_by_test_id("top-frame")).to_contain_text("seeding.py:")
    expect(head.get_by_test_id("top-frame").locator(".fh-code")).to_contain_text("raise LoadError")
    expect(head.locator(".fh-step")).to_have_text("Failed in step load · try 1")
    expect(head.get_by_test_id("dossier-headline")).to_contain_text("load")
    for item in [
        head.locator(".fh-type"),
        head.get_by_test_id("failure-message"),
        head.get_by_test_id("top-frame"),
        head.get_by_test_id("failing-step"),
        head.get_by_test_id("view-trace"),
        head.get_by_test_id("open-log"),
        head.get_by_test_id("dossier-headline"),
    ]:
        in_first_viewport(page, item)
    # the stack follows directly, the dossier after it
    stack = page.locator("section.failure")
    expect(stack.locator(".frame-app").first).to_be_visible()
    head_box, stack_box = head.bounding_box(), stack.bounding_box()
    assert stack_box["y"] >= head_box["y"] + head_box["height"]
    assert stack_box["y"] < page.get_by_test_id("dossier").bounding_box()["y"]
    # next actions are for a person: a link to the log, not a raw API GET
    dossier = page.get_by_test_id("dossier")
    expect(dossier).not_to_contain_text("GET /api/")
    expect(dossier.get_by_test_id("action-link").first).to_have_attribute("href", re.compile(r"view=log$"))
    # the message is text a person can select and copy
    assert page.evaluate("() => getComputedStyle(document.querySelector('.fh-message')).userSelect") != "none"
    page.screenshot(path=str(SCREENSHOTS / "triage_run_1280.png"))
    # one click to the failing step's log
    head.get_by_test_id("open-log").click()
    expect(page).to_have_url(re.compile(f"#/run/{run_id}/step/load\\?try=1&view=log$"))
    expect(page).to_have_title("load · nightly_etl · failed · rundossier")
    expect(page.locator("table.log tbody tr").first).to_be_visible()
    expect(page.locator("#log h2")).to_be_in_viewport()
    page.go_back()
    expect(page).to_have_url(re.compile(f"#/run/{run_id}$"))


def test_a_crash_and_a_message_only_failure_say_why_in_the_same_place(site: Site, page: Any) -> None:
    page.set_viewport_size(DESKTOP)
    crashed = history_run(
        site.store,
        flow_id="acc_nightly",
        status="crashed",
        ago=timedelta(minutes=3),
        error=(None, "the worker was killed (SIGKILL): out of memory"),
    )
    page.goto(f"{site.url}/#/run/{crashed}")
    head = page.get_by_test_id("failure-head")
    expect(page).to_have_title("acc_nightly · crashed · rundossier")
    expect(head.locator(".fh-type")).to_have_text("Crashed")
    expect(head.get_by_test_id("failure-message")).to_have_text("the worker was killed (SIGKILL): out of memory")
    expect(head.get_by_test_id("failure-reason")).to_contain_text("no trace captured")
    in_first_viewport(page, head.get_by_test_id("failure-message"))
    in_first_viewport(page, head.get_by_test_id("failure-reason"))
    expect(head.get_by_test_id("view-trace")).to_have_count(0)
    # a failure reported as a message only (the seeded day_fail has a type, week_fail too): no type
    message_only = history_run(site.store, flow_id="export", status="failed", error=(None, "quota exceeded"))
    page.goto(f"{site.url}/#/run/{message_only}")
    expect(head.locator(".fh-type")).to_have_text("Failed")
    expect(head.get_by_test_id("failure-message")).to_have_text("quota exceeded")
    expect(head.get_by_test_id("failure-reason")).to_contain_text("reported as a message only")


def test_the_runs_list_fits_1280_and_becomes_cards_at_390(site: Site, page: Any) -> None:
    page.set_viewport_size(DESKTOP)
    page.goto(f"{site.url}/#/runs")
    row = page.locator(f"tr[data-run-id='{site.ids['failed']}']")
    expect(row).to_be_visible()
    expect(page).to_have_title("Runs · rundossier")
    headers = page.locator("table.runs thead th").all_inner_texts()
    assert [t.lower() for t in headers] == ["flow / run", "status", "when", "duration", "failure"]
    wrap = page.locator(".table-wrap").first
    assert wrap.evaluate("el => el.scrollWidth - el.clientWidth") <= 0, "the runs table scrolls sideways at 1280"
    for cell in ["col-flow", "col-status", "col-when", "col-duration", "col-error"]:
        in_first_viewport(page, row.locator(f"td.{cell}"))
    chip = row.get_by_test_id("error-chip")
    expect(chip).to_have_attribute("title", "LoadError: load failed: warehouse unavailable")
    # a long message is cut to one line with an ellipsis, whole on hover
    long = history_run(site.store, flow_id="partner_export", status="failed", error=("ReadTimeout", "x" * 400))
    page.reload()
    long_chip = page.locator(f"tr[data-run-id='{long}']").get_by_test_id("error-chip")
    assert long_chip.evaluate(
        "el => el.scrollWidth > el.clientWidth && getComputedStyle(el).textOverflow === 'ellipsis'"
    )
    assert long_chip.bounding_box()["height"] < 30
    page.screenshot(path=str(SCREENSHOTS / "triage_runs_1280.png"))

    page.set_viewport_size(PHONE)
    page.reload()
    row = page.locator(f"tr[data-run-id='{site.ids['failed']}']")
    expect(row).to_be_visible()
    expect(page.locator("table.runs thead")).to_be_hidden()
    assert page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 0
    box = row.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    chip_box = row.get_by_test_id("error-chip").bounding_box()
    assert chip_box["x"] + chip_box["width"] <= PHONE["width"]
    expect(page.get_by_test_id("live-indicator")).to_be_in_viewport()
    page.screenshot(path=str(SCREENSHOTS / "triage_runs_390.png"))
    # the run page on a phone: no overflow either (checked by the fixture), the head first
    page.goto(f"{site.url}/#/run/{site.ids['failed']}")
    expect(page.get_by_test_id("top-frame")).to_be_visible()
    in_first_viewport(page, page.get_by_test_id("failure-message"))
    assert page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 0


def test_filters_and_page_live_in_the_address_and_back_works(site: Site, page: Any) -> None:
    page.goto(f"{site.url}/#/runs")
    expect(page.locator("table.runs tbody tr[data-run-id]")).to_have_count(len(site.ids))
    page.get_by_label("Status").select_option("failed")
    expect(page.locator("table.runs tbody tr[data-run-id]")).to_have_count(3)
    expect(page).to_have_title("Runs · failed · rundossier")
    page.get_by_role("button", name="24h", exact=True).click()
    expect(page.locator("table.runs tbody tr[data-run-id]")).to_have_count(2)
    page.go_back()  # the status filter alone
    expect(page).to_have_url(re.compile(r"#/runs\?status=failed$"))
    expect(page.locator("table.runs tbody tr[data-run-id]")).to_have_count(3)
    expect(page.get_by_label("Status")).to_have_value("failed")
    page.get_by_role("link", name=site.ids["failed"]).click()
    expect(page).to_have_url(re.compile(f"#/run/{site.ids['failed']}$"))
    page.go_back()
    expect(page.get_by_label("Status")).to_have_value("failed")
    expect(page.locator("table.runs tbody tr[data-run-id]")).to_have_count(3)
    # pages: a cursor in the address, Back returns to the newer page
    for i in range(55):
        history_run(site.store, flow_id="many", ago=timedelta(minutes=i + 1))
    page.goto(f"{site.url}/#/runs?flow_id=many")
    expect(page.locator("table.runs tbody tr[data-run-id]")).to_have_count(50)
    first_page = page.locator("table.runs tbody tr[data-run-id]").first.get_attribute("data-run-id")
    page.get_by_role("button", name="Older →").click()
    expect(page.locator("table.runs tbody tr[data-run-id]")).to_have_count(5)
    expect(page).to_have_url(re.compile(r"cursor="))
    page.reload()
    expect(page.locator("table.runs tbody tr[data-run-id]")).to_have_count(5)
    page.go_back()
    expect(page.locator("table.runs tbody tr[data-run-id]")).to_have_count(50)
    assert page.locator("table.runs tbody tr[data-run-id]").first.get_attribute("data-run-id") == first_page


def test_dark_mode_follows_the_system_and_the_toggle(site: Site, page: Any) -> None:
    page.emulate_media(color_scheme="dark")
    page.goto(f"{site.url}/#/run/{site.ids['failed']}")
    expect(page.get_by_test_id("top-frame")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    background = page.evaluate("() => getComputedStyle(document.querySelector('.card')).backgroundColor")
    assert background == "rgb(26, 33, 48)", background
    page.screenshot(path=str(SCREENSHOTS / "triage_run_dark.png"))
    toggle = page.get_by_test_id("theme-toggle")
    expect(toggle).to_have_text("Theme: Auto")
    toggle.click()
    expect(toggle).to_have_text("Theme: Dark")
    toggle.click()
    expect(toggle).to_have_text("Theme: Light")
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    page.reload()  # the choice is kept
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    page.get_by_test_id("theme-toggle").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")  # back to Auto: the system's dark


def test_one_time_zone_rule_local_with_offset_or_utc(site: Site, page: Any) -> None:
    page.goto(f"{site.url}/#/run/{site.ids['failed']}")
    started = page.locator("section.details time").first
    tz = page.get_by_test_id("tz-toggle")
    expect(tz).to_have_text(re.compile(r"^Times in local \(UTC[+-]\d\d:\d\d\)$"))
    expect(started).to_have_attribute("title", re.compile(r" UTC[+-]\d\d:\d\d$"))
    tz.click()
    expect(tz).to_have_text("Times in UTC")
    started = page.locator("section.details time").first
    expect(started).to_have_attribute("title", re.compile(r"\d UTC$"))
    iso = started.get_attribute("datetime")
    utc = page.evaluate("(iso) => new Date(iso).toISOString().slice(0, 19).replace('T', ' ')", iso)
    expect(started).to_have_text(utc)


@pytest.mark.parametrize("address", ["step/render", "step/render?try=1"])
def test_a_step_page_asks_for_its_log_beside_the_run_not_after_it(site: Site, page: Any, address: str) -> None:
    run_id = site.ids["big_log"]
    seen: list[tuple[str, str]] = []
    page.on("request", lambda r: seen.append(("sent", r.url)) if "/api/runs/" in r.url else None)
    page.on("requestfinished", lambda r: seen.append(("answered", r.url)) if "/api/runs/" in r.url else None)
    page.goto(f"{site.url}/#/run/{run_id}/{address}")
    expect(page.locator("table.log tbody tr.ln")).to_have_count(500)
    run_answered = seen.index(
        ("answered", next(u for k, u in seen if k == "sent" and u.split("?")[0].endswith(run_id)))
    )
    logs = [i for i, (k, u) in enumerate(seen) if k == "sent" and "/steps/render/logs" in u]
    assert len(logs) == 1, seen  # the first page is asked for once
    assert logs[0] < run_answered, seen


def test_the_log_level_filter_pages_through_matching_lines_only(site: Site, page: Any) -> None:
    page.goto(f"{site.url}/#/run/{site.ids['big_log']}/step/render")
    rows = page.locator("table.log tbody tr.ln")
    expect(rows).to_have_count(500)
    expect(page.get_by_test_id("log-page")).to_contain_text("Page 1 of 4")
    page.get_by_label("Level").select_option("warning")
    # the server filters: one page holds all 20 checkpoints (WARNING), the counts are of them
    expect(rows).to_have_count(20)
    expect(rows.first.locator(".ln-msg")).to_have_text("checkpoint 1: 100 rows rendered")
    expect(rows.last.locator(".ln-msg")).to_have_text("checkpoint 20: 2000 rows rendered")
    expect(page.get_by_test_id("log-page")).to_contain_text("Page 1 of 1 · lines 1–20 of 20")
    expect(page.locator("[data-count=stderr]")).to_have_text("(20)")
    expect(page.locator("[data-count=stdout]")).to_have_text("(0)")
    expect(page.locator(".level-note")).to_have_text("Only warnings and errors: 20 lines")
    # a search inside the filtered lines numbers its matches among them
    page.locator("#log-q").fill("checkpoint 7:")
    page.locator("#log-q").press("Enter")
    expect(page.get_by_test_id("match-counter")).to_have_text("1 / 1")
    expect(page.locator("tr.ln-current .ln-n")).to_have_text("7")
    page.get_by_label("Level").select_option("error")
    expect(page.locator("table.log tbody td.empty")).to_have_text("No lines in this stream.")
    # the search is cleared first: cleared last, it would keep whatever page the search had jumped to
    page.locator("#log-q").fill("")
    page.locator("#log-q").press("Enter")
    expect(page.locator("table.log tbody td.empty")).to_have_text("No lines in this stream.")
    page.get_by_label("Level").select_option("")
    expect(rows).to_have_count(500)
    expect(page.get_by_test_id("log-page")).to_contain_text("Page 1 of 4")
    expect(page.locator(".level-note")).to_be_hidden()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_triage_screens_keep_wcag_aa_contrast(site: Site, page: Any, scheme: str) -> None:
    from tests.browser.test_ui import CONTRAST_JS

    page.emulate_media(color_scheme=scheme)
    page.goto(f"{site.url}/#/runs")
    expect(page.locator(f"tr[data-run-id='{site.ids['failed']}']")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("data-theme", scheme)
    checked = page.evaluate(
        CONTRAST_JS,
        [
            "th",
            ".muted",
            "label",
            ".btn",
            ".chip",
            ".badge.st-success",
            ".badge.st-failed",
            ".col-flow a",
            "td",
            ".pref",
        ],
    )
    page.goto(f"{site.url}/#/run/{site.ids['failed']}")
    expect(page.get_by_test_id("top-frame")).to_be_visible()
    checked += page.evaluate(
        CONTRAST_JS,
        [".fh-headline", ".fh-type", ".fh-message", ".fh-where", ".fh-step", ".exc-type", ".frame-where", ".kv dt"],
    )
    assert len(checked) >= 15, checked
    low = [c for c in checked if c[2] < 4.5]
    assert low == [], f"below the WCAG AA contrast ratio of 4.5:1 in {scheme} mode: {low}"


def _sticking_out(page: Any) -> list[str]:
    """Elements whose right edge passes the window's (what makes a page scroll sideways)."""
    return list(
        page.evaluate(
            """() => [...document.querySelectorAll("main *")]
              .filter((el) => { const r = el.getBoundingClientRect();
                return r.width && r.right > window.innerWidth + 0.5 && !el.closest(".table-wrap, .log-scroll, pre"); })
              .slice(0, 5)
              .map((el) => `${el.tagName}.${el.className}: ${Math.round(el.getBoundingClientRect().right)}px`)"""
        )
    )


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1280x800", "390x844"])
@pytest.mark.parametrize(
    "path,ready",
    [
        ("/#/failures", "table.failures tbody tr"),
        ("/#/retention", "table.retention-flows tbody tr"),
        ("/#/runs", "[data-run-id]"),
        ("/#/run/{failed}", "[data-testid=failure-head]"),
        ("/#/run/{failed}/step/load?try=1&view=log", "table.log tbody tr.ln"),
    ],
    ids=["failures", "retention", "runs", "run", "step-log"],
)
def test_no_page_scrolls_sideways(site: Site, page: Any, size: dict[str, int], path: str, ready: str) -> None:
    """The failures, retention, runs, run and step log pages at 1280x800 and 390x844: nothing wider
    than the window (wide tables and long log lines scroll inside their own box)."""
    page.set_viewport_size(size)
    page.goto(site.url + path.format(**site.ids))
    expect(page.locator(ready).first).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 0, _sticking_out(page)
    assert _sticking_out(page) == []
    name = path.split("?")[0].strip("/#").replace("/{failed}", "").replace("/", "_") + f"_{size['width']}"
    page.screenshot(path=str(SCREENSHOTS / f"overflow_{name}.png"), full_page=True)
