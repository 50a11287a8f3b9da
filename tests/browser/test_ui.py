"""The web UI in a real browser: runs table and filters, error chip and View Trace download, run
detail, log paging and search, live updates, follow mode, the #/find route, keyboard use."""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from rundossier.storage.db import RunQuery
from tests.browser.conftest import SCREENSHOTS, Site
from tests.seeding import history_run

pytestmark = pytest.mark.browser


def open_runs(page: Any, site: Site, query: str = "") -> None:
    page.goto(f"{site.url}/#/runs{query}")
    expect(page.locator("table.runs tbody tr").first).to_be_visible()


def row_ids(page: Any) -> list[str]:
    page.wait_for_function("() => !document.querySelector('.page-head p').textContent.startsWith('Loading')")
    return page.locator("table.runs tbody tr[data-run-id]").evaluate_all("rows => rows.map(r => r.dataset.runId)")


def test_runs_table_lists_seeded_runs_newest_first(site: Site, page: Any) -> None:
    open_runs(page, site)
    assert row_ids(page) == sorted(site.ids.values(), reverse=True)
    failed_row = page.locator(f"tr[data-run-id='{site.ids['failed']}']")
    expect(failed_row.locator(".badge")).to_have_text("failed")
    # the row says in which step it failed and when, relative (the absolute time on hover)
    expect(failed_row.locator(".failed-step")).to_have_text("in load")
    expect(failed_row.locator("time.ago")).to_have_text(re.compile(r"^(just now|\d+ s ago)$"))
    absolute = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")
    expect(failed_row.locator("time.ago")).to_have_attribute("title", absolute)
    expect(failed_row.get_by_test_id("error-chip")).to_contain_text("LoadError: load failed")
    expect(page.get_by_test_id("live-indicator")).to_have_text("Live")


def test_filter_by_status_and_time_range(site: Site, page: Any) -> None:
    open_runs(page, site)
    page.get_by_label("Status").select_option("failed")
    expect(page.locator("table.runs tbody tr[data-run-id]")).to_have_count(3)
    assert set(row_ids(page)) == {site.ids["failed"], site.ids["day_fail"], site.ids["week_fail"]}
    page.get_by_role("button", name="24h", exact=True).click()
    expect(page.locator("table.runs tbody tr[data-run-id]")).to_have_count(2)
    assert set(row_ids(page)) == {site.ids["failed"], site.ids["day_fail"]}
    # the span goes to the API as typed: the server reads it with the CLI's parser
    with page.expect_request(lambda r: "/api/runs?" in r.url and "since=6h" in r.url):
        page.get_by_role("button", name="6h", exact=True).click()
    expect(page.locator("table.runs tbody tr[data-run-id]")).to_have_count(1)
    assert "status=failed" in page.url and "range=6h" in page.url
    # the filters live in the address: a reload keeps them
    page.reload()
    expect(page.locator("table.runs tbody tr[data-run-id]")).to_have_count(1)
    expect(page.get_by_role("button", name="6h", exact=True)).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="Clear filters").click()
    expect(page.locator("table.runs tbody tr[data-run-id]")).to_have_count(len(site.ids))


def test_search_orchestrator_and_custom_range(site: Site, page: Any) -> None:
    open_runs(page, site)
    page.get_by_label("Search").fill("customer")
    expect(page.locator("table.runs tbody tr[data-run-id]")).to_have_count(1)
    page.get_by_label("Search").fill("")
    expect(page.locator("table.runs tbody tr[data-run-id]")).to_have_count(len(site.ids))
    page.get_by_label("Orchestrator").select_option("prefect")
    expect(page.locator("table.runs tbody tr[data-run-id]")).to_have_count(1)
    assert row_ids(page) == [site.ids["hour_ok"]]
    page.get_by_label("Orchestrator").select_option("")
    page.get_by_role("button", name="Custom", exact=True).click()
    # from 6 days ago to 3 days ago: the two week-old nightly_etl runs' window holds only the failed one (4 d)
    page.evaluate(
        """() => {
        const local = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
        document.getElementById('f-since').value = local(new Date(Date.now() - 4.5 * 86400e3));
        document.getElementById('f-until').value = local(new Date(Date.now() - 3 * 86400e3));
    }"""
    )
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("table.runs tbody tr[data-run-id]")).to_have_count(1)
    assert row_ids(page) == [site.ids["week_fail"]]


def test_search_finds_runs_by_their_error_text_also_live(site: Site, page: Any) -> None:
    reset = history_run(
        site.store,
        flow_id="customer_sync",
        status="failed",
        ago=timedelta(hours=1),
        error=("ConnectionResetError", "[Errno 104] Connection reset by peer"),
    )
    open_runs(page, site)
    rows = page.locator("table.runs tbody tr[data-run-id]")
    for q, url, found in [
        ("peer reset", r"q=peer(\+|%20)reset", reset),  # every word, anywhere in the message
        ("TIMEOUTERROR", r"q=TIMEOUTERROR", site.ids["week_fail"]),  # the error type, in any case
        ("reset by PEER", r"q=reset(\+|%20)by", reset),
    ]:
        page.get_by_label("Search").fill(q)
        expect(page).to_have_url(re.compile(url))
        expect(rows).to_have_count(1)
        expect(rows.first).to_have_attribute("data-run-id", found)
    # a run recorded now that matches joins the table live; one that does not stays out
    history_run(site.store, flow_id="nightly_etl", status="failed", error=("OSError", "connection reset by peer"))
    history_run(site.store, flow_id="nightly_etl", status="failed", error=("OSError", "disk full"))
    expect(page.locator("table.runs tbody tr[data-run-id]")).to_have_count(2)
    expect(page.locator("table.runs tbody tr[data-run-id]").first).to_contain_text("nightly_etl")


def test_error_chip_popover_and_view_trace_download(site: Site, page: Any, tmp_path: Path) -> None:
    run_id = site.ids["failed"]
    open_runs(page, site)
    chip = page.locator(f"tr[data-run-id='{run_id}']").get_by_test_id("error-chip")
    chip.hover()
    popover = page.locator(f"tr[data-run-id='{run_id}']").get_by_test_id("error-popover")
    expect(popover).to_be_visible()
    expect(popover).to_contain_text("load failed: warehouse unavailable")
    link = popover.get_by_test_id("view-trace")
    expect(link).to_have_attribute("href", f"api/runs/{run_id}/trace")
    expect(link).to_have_attribute("download", "")
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename == f"{run_id}_trace.txt"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    expected = site.api(f"/api/runs/{run_id}/trace").text
    assert saved.read_text(encoding="utf-8") == expected
    assert "ConnectionError: timeout after 30s" in expected
    # a run without a captured trace says so instead of offering a broken download
    other = page.locator(f"tr[data-run-id='{site.ids['day_fail']}']")
    page.mouse.move(0, 0)
    other.get_by_test_id("error-chip").hover()
    expect(other.get_by_test_id("error-popover")).to_contain_text("no trace captured")
    expect(other.get_by_test_id("view-trace")).to_have_count(0)


def test_chip_is_keyboard_reachable(site: Site, page: Any) -> None:
    run_id = site.ids["failed"]
    open_runs(page, site)
    row = page.locator(f"tr[data-run-id='{run_id}']")
    row.get_by_role("link", name=run_id).focus()
    page.keyboard.press("Tab")  # the next control in the row is the chip
    expect(row.get_by_test_id("error-chip")).to_be_focused()
    expect(row.get_by_test_id("error-popover")).to_be_visible()
    page.keyboard.press("Tab")
    expect(row.get_by_test_id("view-trace")).to_be_focused()
    page.keyboard.press("Escape")
    expect(row.get_by_test_id("error-popover")).to_be_hidden()
    expect(row.get_by_test_id("error-chip")).to_be_focused()


def test_run_detail_timeline_steps_graph_and_failure_panel(site: Site, page: Any) -> None:
    run_id = site.ids["failed"]
    open_runs(page, site)
    page.get_by_role("link", name=run_id).click()
    expect(page).to_have_url(re.compile(f"#/run/{run_id}$"))
    expect(page.locator("h1")).to_contain_text("nightly_etl")
    expect(page.locator(".timeline .tl-failed .tl-name")).to_have_text("failed")
    expect(page.locator(".timeline .tl-done")).to_have_count(2)
    expect(page.locator("table.steps tbody tr")).to_have_count(2)
    expect(page.locator("svg.graph .node.st-failed")).to_contain_text("load")
    expect(page.locator("svg.graph .node.st-success")).to_contain_text("extract")
    panel = page.locator("section.failure")
    expect(panel.locator(".exc-type").first).to_have_text("ConnectionError")
    expect(panel.locator(".exc-relation")).to_contain_text("direct cause")
    expect(panel.locator(".frame-app").first).to_be_visible()
    with page.expect_download() as info:
        panel.get_by_test_id("view-trace").click()
    assert info.value.suggested_filename == f"{run_id}_trace.txt"
    # zoom and recenter the graph
    before = page.locator("svg.graph g.viewport").get_attribute("transform")
    page.get_by_role("button", name="Zoom in").click()
    assert page.locator("svg.graph g.viewport").get_attribute("transform") != before
    page.get_by_role("button", name="Recenter").click()
    # clicking a node opens the step
    page.locator("svg.graph a.node-link", has_text="load").click()
    expect(page).to_have_url(re.compile(f"#/run/{run_id}/step/load\\?try=1$"))
    expect(page.locator("section.failure").get_by_test_id("view-trace")).to_have_attribute(
        "href", f"api/runs/{run_id}/steps/load/trace?try=1"
    )


def test_a_parent_runs_page_links_to_its_subflow_runs_and_back(site: Site, page: Any) -> None:
    with site.rec.run("parent_flow", run_key="parent-1") as parent:
        with site.rec.run("child_flow", run_key="child-1", parent_run_id=parent.run_id) as child:
            pass
    page.goto(f"{site.url}/#/run/{parent.run_id}")
    details = page.locator("section.details")
    link = details.locator("ul.children a", has_text="child_flow")
    expect(link).to_have_attribute("href", f"#/run/{child.run_id}")
    expect(details.locator("ul.children .badge.st-success")).to_have_text("success")
    details.screenshot(path=str(SCREENSHOTS / "run_subflows.png"))
    link.click()
    expect(page).to_have_url(re.compile(f"#/run/{child.run_id}$"))
    expect(page.locator("section.details").get_by_role("link", name=parent.run_id)).to_be_visible()


def test_log_viewer_pages_through_2000_lines_and_finds_a_match(site: Site, page: Any) -> None:
    run_id = site.ids["big_log"]
    page.goto(f"{site.url}/#/run/{run_id}/step/render")
    pager = page.get_by_test_id("log-page")
    expect(pager).to_have_text("Page 1 of 4 · lines 1–500 of 2,000")
    expect(page.locator("table.log tbody tr")).to_have_count(500)
    expect(page.locator("[data-count=stderr]")).to_have_text("(20)")
    page.get_by_role("button", name="Next ›").click()
    expect(pager).to_contain_text("Page 2 of 4")
    expect(page.locator("table.log tbody tr").first.locator(".ln-n")).to_have_text("501")
    page.get_by_role("button", name="Last page").click()
    expect(pager).to_contain_text("Page 4 of 4 · lines 1,501–2,000")
    search = page.get_by_label("Search the log")
    search.fill("checkpoint 15")
    search.press("Enter")
    expect(page.get_by_test_id("match-counter")).to_have_text("1 / 1")
    current = page.locator("tr.ln-current")
    expect(current.locator(".ln-n")).to_have_text("1500")
    expect(current.locator("mark")).to_have_text("checkpoint 15")
    expect(current).to_be_in_viewport()
    expect(pager).to_contain_text("Page 3 of 4")
    search.fill("CHECKPOINT 1")
    search.press("Enter")
    # 11 matches (checkpoints 1, 10..19); the first one from the top of the page shown (page 3)
    expect(page.get_by_test_id("match-counter")).to_have_text("3 / 11")
    expect(page.locator("tr.ln-current .ln-n")).to_have_text("1100")
    page.get_by_role("button", name="Next match").click()
    expect(page.get_by_test_id("match-counter")).to_have_text("4 / 11")
    page.get_by_role("button", name="Previous match").click()
    page.get_by_role("button", name="Previous match").click()
    page.get_by_role("button", name="Previous match").click()
    expect(page.get_by_test_id("match-counter")).to_have_text("1 / 11")
    expect(page.locator("tr.ln-current .ln-n")).to_have_text("100")
    expect(pager).to_contain_text("Page 1 of 4")
    page.get_by_role("tab", name=re.compile("stderr")).click()
    expect(pager).to_contain_text("of 20")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download").click()
    assert info.value.suggested_filename == f"{run_id}_step_1_log.txt"


def test_a_new_run_appears_live_and_changes_state(site: Site, page: Any) -> None:
    open_runs(page, site)
    expect(page.get_by_test_id("live-indicator")).to_have_text("Live")
    handle = site.rec.start_run("arrives_live")
    row = page.locator(f"tr[data-run-id='{handle.run_id}']")
    expect(row).to_be_visible()
    expect(row.locator(".badge.pulse")).to_have_text("running")
    site.rec.finish_run(handle, "failed", "it broke while you watched")
    expect(row.locator(".badge")).to_have_text("failed")
    expect(row.get_by_test_id("error-chip")).to_contain_text("it broke while you watched")
    assert row_ids(page)[0] == handle.run_id


def test_follow_mode_streams_a_running_steps_lines(site: Site, page: Any) -> None:
    run = site.rec.start_run("streaming")
    step = site.rec.start_step(run, "consume")
    step.log.write("stdout", "batch 1")
    page.goto(f"{site.url}/#/run/{run.run_id}/step/consume")
    follow = page.get_by_role("button", name="Follow")
    expect(follow).to_have_attribute("aria-pressed", "true")
    expect(page.locator("table.log .ln-msg").last).to_have_text("batch 1")
    stop = threading.Event()

    def writer() -> None:
        for i in range(2, 40):
            if stop.is_set():
                return
            step.log.write("stdout", f"batch {i}")
            time.sleep(0.1)

    t = threading.Thread(target=writer)
    t.start()
    try:
        expect(page.locator("table.log .ln-msg", has_text=re.compile(r"^batch 1\d$")).first).to_be_visible()
    finally:
        stop.set()
        t.join()
    step.finish("success")
    site.rec.finish_run(run, "success")
    expect(page.locator(".log-info")).to_contain_text("The step ended (success)")
    # then the page shows the finished step and its stored log
    expect(page.locator(".title-row .badge")).to_have_text("success")
    expect(page.get_by_role("button", name="Follow")).to_have_attribute("aria-pressed", "false")
    expect(page.locator("table.log .ln-msg").last).to_have_text(re.compile(r"^batch \d+$"))


def test_find_route_resolves_orchestrator_ids(site: Site, page: Any) -> None:
    run = site.store.get_run(site.ids["day_fail"])
    base = f"{site.url}/#/find?orchestrator=airflow&flow_id=customer_sync&run_key={run.run_key.replace('+', '%2B')}"
    page.goto(base)
    expect(page).to_have_url(re.compile(f"#/run/{run.run_id}$"))
    expect(page.locator("h1")).to_contain_text("customer_sync")
    failed = site.store.get_run(site.ids["failed"])
    page.goto(
        f"{site.url}/#/find?orchestrator=python&flow_id=nightly_etl&run_key={failed.run_key}"
        "&step_id=load&map_index=%7BMAP_INDEX%7D&try=1"
    )
    expect(page).to_have_url(re.compile(f"#/run/{failed.run_id}/step/load\\?try=1$"))
    page.goto(f"{site.url}/#/find?orchestrator=airflow&flow_id=customer_sync&run_key=manual__never")
    expect(page.locator("h1")).to_have_text("Run not recorded")
    expect(page.locator(".notice")).to_contain_text("manual__never")


@pytest.mark.parametrize("section,path", [("Failures", "/api/failures"), ("Retention", "/api/retention")])
def test_failures_and_retention_pages(site: Site, page: Any, section: str, path: str) -> None:
    page.goto(f"{site.url}/#/runs")
    page.get_by_role("navigation", name="Sections").get_by_role("link", name=section).click()
    expect(page.locator("h1")).to_have_text(section)
    answer = site.api(path)
    if answer.status_code == 404:
        expect(page.locator(".notice")).to_contain_text("not available on this server")
        return
    expect(page.locator(".notice-error")).to_have_count(0)
    if section == "Failures":
        groups = answer.json()["items"]
        assert groups, "the seeded failed run makes a failure group"
        row = page.locator("table.failures tbody tr").filter(has_text="LoadError")
        expect(row).to_contain_text("load failed: warehouse unavailable")
        expect(row.get_by_role("link", name="nightly_etl")).to_be_visible()
        row.get_by_role("link", name=site.ids["failed"]).click()
        expect(page).to_have_url(re.compile(f"#/run/{site.ids['failed']}$"))
        # the run page opens on the dossier the server built for it
        expect(page.get_by_test_id("dossier")).to_be_visible()
    else:
        flows = {f["flow_id"]: f for f in answer.json()["flows"]}
        row = page.locator("table.retention-flows tbody tr").filter(has_text="nightly_etl")
        expect(row).to_contain_text(flows["nightly_etl"]["describe"])
        expect(row).to_contain_text(flows["nightly_etl"]["reason"])
        expect(page.locator("section", has_text="A sweep now would remove")).to_be_visible()
        page.screenshot(path=str(SCREENSHOTS / "retention.png"), full_page=True)


def test_failure_groups_filter_trend_resolve_and_regression(site: Site, page: Any) -> None:
    from tests.seeding import failed_run

    failed_run(site.rec)  # the seeded LoadError twice today: one group, count 2
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{site.url}/#/failures")
    rows = page.locator("table.failures tbody tr")
    load = rows.filter(has_text="LoadError")
    expect(load.locator("td.num")).to_have_text("2")
    # the trend: a bar per day of the last 14, today's the tallest
    expect(load.get_by_test_id("trend").locator("i")).to_have_count(14)
    expect(load.get_by_test_id("trend")).to_have_attribute("aria-label", re.compile(r"^2 failed runs over 14 days"))
    expect(load.get_by_test_id("group-state")).to_have_text("Open")
    (group,) = site.api("/api/failures").json()["items"]
    other = "timeout" if group["failure_class"] != "timeout" else "data"
    # filters live in the address
    page.get_by_label("Class").select_option(other)
    expect(page).to_have_url(re.compile(f"#/failures\\?failure_class={other}$"))
    expect(page.locator(".notice")).to_have_text("No failures match these filters.")
    page.get_by_label("Class").select_option(group["failure_class"])
    page.get_by_role("button", name="7d", exact=True).click()
    expect(page).to_have_url(re.compile(f"failure_class={group['failure_class']}&range=7d$"))
    expect(load.locator("td.num")).to_have_text("2")
    page.get_by_role("button", name="Clear filters").click()
    page.get_by_label("Flow").select_option("nightly_etl")
    expect(page).to_have_url(re.compile(r"#/failures\?flow_id=nightly_etl$"))
    expect(load).to_have_count(1)
    page.go_back()
    expect(page).to_have_url(re.compile(r"#/failures$"))
    # the page says what a count is, and a count opens exactly the runs it counts
    expect(page.get_by_test_id("count-rule")).to_be_in_viewport()
    expect(page.get_by_test_id("count-rule")).to_contain_text("each run once")
    page.get_by_role("button", name="7d", exact=True).click()
    load.get_by_test_id("group-runs").click()
    link = f"#/runs\\?fingerprint={group['fingerprint']}&status=failed%2Ccrashed&range=custom&since=\\d{{4}}-"
    expect(page).to_have_url(re.compile(link))
    expect(page.locator("table.runs tbody tr[data-run-id]")).to_have_count(2)
    page.go_back()
    page.get_by_role("button", name="Clear filters").click()
    expect(page).to_have_url(re.compile(r"#/failures$"))
    # resolve; a new failure with the same fingerprint reopens it as a regression; reopen by hand
    load.get_by_role("button", name="Resolve").click()
    expect(load.get_by_test_id("group-state")).to_have_text("Resolved")
    page.screenshot(path=str(SCREENSHOTS / "failures_1280.png"))
    failed_run(site.rec)
    page.reload()
    expect(load.get_by_test_id("group-state")).to_have_text("Regression")
    expect(load.locator("td.num")).to_have_text("3")
    load.get_by_role("button", name="Reopen").click()
    expect(load.get_by_test_id("group-state")).to_have_text("Open")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(load.get_by_role("button", name="Resolve")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "failures_390.png"))


def test_retention_rules_are_set_changed_deleted_and_a_sweep_runs_with_progress(site: Site, page: Any) -> None:
    page.on("dialog", lambda dialog: dialog.accept())
    nightly = len(site.store.list_runs(RunQuery(flow_id="nightly_etl"), limit=100).items)
    assert nightly >= 3
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{site.url}/#/retention")
    form = page.get_by_role("form", name="Set a retention rule")
    # set a flow's policy from its row
    page.locator("table.retention-flows tr[data-flow=nightly_etl]").get_by_role("button", name="Set policy").click()
    expect(form.get_by_label("Pattern")).to_have_value("nightly_etl")
    form.get_by_label("Keep last runs").fill("2")
    form.get_by_role("button", name="Save rule").click()
    rule = page.locator("table.retention-rules tr[data-pattern=nightly_etl]")
    expect(rule).to_contain_text("days inherited · last 2 runs")
    expect(form.locator(".notice-info")).to_have_text("Rule nightly_etl saved.")
    assert {r.flow_pattern: r.keep_last for r in site.store.list_policies()}["nightly_etl"] == 2
    # change it
    rule.get_by_role("button", name="Edit").click()
    expect(form.get_by_label("Keep last runs")).to_have_value("2")
    form.get_by_label("Keep last runs").fill("1")
    form.get_by_role("button", name="Save rule").click()
    expect(rule).to_contain_text("last 1 run")
    # a bad value is refused with the API's message, nothing saved
    form.get_by_label("Keep days").fill("99999999")
    form.get_by_role("button", name="Save rule").click()
    expect(form.locator(".notice-error")).to_contain_text("Could not save the rule: keep_days")
    expect(rule).to_contain_text("last 1 run")
    # preview, then run the sweep: one request per flow, the bar fills
    status = page.get_by_test_id("sweep-status")
    page.get_by_role("button", name="Preview (dry run)").click()
    expect(status).to_contain_text("A sweep would leave")
    expect(status).to_contain_text(f"{nightly - 1} runs")
    assert len(site.store.list_runs(RunQuery(flow_id="nightly_etl"), limit=100).items) == nightly
    page.get_by_role("button", name="Run sweep now").click()
    expect(page.locator(".notice-info").first).to_contain_text("Swept")
    expect(page.locator(".notice-info").first).to_contain_text(f"{nightly - 1} runs")
    assert len(site.store.list_runs(RunQuery(flow_id="nightly_etl"), limit=100).items) == 1
    page.screenshot(path=str(SCREENSHOTS / "retention_1280.png"), full_page=True)
    # delete the rule: the flow falls back to the default
    page.locator("table.retention-rules tr[data-pattern=nightly_etl]").get_by_role("button", name="Delete").click()
    expect(page.locator("table.retention-rules tr[data-pattern=nightly_etl]")).to_have_count(0)
    assert "nightly_etl" not in {r.flow_pattern for r in site.store.list_policies()}
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SCREENSHOTS / "retention_390.png"), full_page=True)


def test_retention_changes_carry_the_token(browser: Any, tmp_path: Path) -> None:
    from rundossier.server import create_app
    from tests.browser.conftest import _settings
    from tests.liveserver import LiveServer

    token = "browser-test-token-0123456789"
    context = browser.new_context()
    page = context.new_page()
    settings = _settings(tmp_path)
    app = create_app(settings, api_token=token)
    with LiveServer(app) as server:
        page.goto(f"{server.url}/#/retention")
        page.get_by_label("Token").fill(token)
        page.get_by_role("button", name="Continue").click()
        form = page.get_by_role("form", name="Set a retention rule")
        form.get_by_label("Pattern").fill("*")
        form.get_by_label("Keep days").fill("14")
        form.get_by_role("button", name="Save rule").click()
        expect(page.locator("table.retention-rules tr[data-pattern='*']")).to_contain_text("14 days")
    context.close()


def test_token_prompt_when_the_server_needs_one(browser: Any, tmp_path: Path) -> None:
    from rundossier.server import create_app
    from tests.browser.conftest import _settings
    from tests.liveserver import LiveServer

    token = "browser-test-token-0123456789"
    context = browser.new_context()
    page = context.new_page()
    with LiveServer(create_app(_settings(tmp_path), api_token=token)) as server:
        page.goto(f"{server.url}/#/runs")
        expect(page.locator("h1")).to_have_text("This server needs its token")
        page.get_by_label("Token").fill(token)
        page.get_by_role("button", name="Continue").click()
        expect(page.locator("h1")).to_have_text("Runs")
        # an empty store says how to record a first run
        expect(page.locator("td.empty")).to_contain_text("No runs recorded yet.")
        expect(page.locator("td.empty")).to_contain_text("rundossier demo")
        expect(page.get_by_test_id("live-indicator")).to_have_text("Live")
    context.close()


def test_failures_and_retention_render_what_the_api_answers(browser: Any, tmp_path: Path) -> None:
    """Against the contract shapes (the endpoints land with their own issues): stubbed here when missing."""
    from rundossier.server import create_app
    from tests.browser.conftest import _settings
    from tests.liveserver import LiveServer

    app = create_app(_settings(tmp_path))
    paths = set(app.openapi()["paths"])
    failures = {
        "items": [
            {  # the dossier issue's shape: the latest run as an object
                "fingerprint": "0f0f0f0f0f0f0f0f",
                "count": 2,
                "first_seen": "2026-11-20T03:00:00Z",
                "last_seen": "2026-11-20T04:00:00Z",
                "flows": ["customer_sync"],
                "failure_class": "data",
                "latest": {
                    "run_id": "run_01M7Z000000000000000000000",
                    "flow_id": "customer_sync",
                    "error": {"type": "KeyError", "message": "'customer_id'"},
                },
            },
            {
                "fingerprint": "a1b2c3d4e5f60718",
                "count": 7,
                "first_seen": "2026-11-15T03:00:00Z",
                "last_seen": "2026-11-21T03:00:00Z",
                "flows": ["nightly_etl", "backfill"],
                "latest_run_id": "run_01M80000000000000000000000",
                "error": {"type": "pkg.WarehouseError", "message": "load failed: warehouse unavailable"},
            },
        ]
    }
    retention = {
        "policies": [
            {"flow_pattern": "*", "keep_days": 30, "keep_last": 100, "blob_days": 7},
            {"flow_pattern": "finance_*", "keep_days": 365, "keep_last": None, "blob_days": 30},
        ]
    }
    stubbed = []
    if "/api/failures" not in paths:
        app.get("/api/failures")(lambda: failures)
        stubbed.append("failures")
    if "/api/retention" not in paths:
        app.get("/api/retention")(lambda: retention)
        stubbed.append("retention")
    context = browser.new_context()
    page = context.new_page()
    with LiveServer(app) as server:
        page.goto(f"{server.url}/#/failures")
        if "failures" in stubbed:
            expect(page.locator("table.failures tbody tr")).to_have_count(2)
            first = page.locator("table.failures tbody tr").first
            expect(first).to_contain_text("KeyError: 'customer_id'")
            expect(first.get_by_role("link", name="run_01M7Z000000000000000000000")).to_be_visible()
            row = page.locator("table.failures tbody tr").nth(1)
            expect(row).to_contain_text("WarehouseError: load failed: warehouse unavailable")
            expect(row.locator("td.num")).to_have_text("7")
            expect(row.get_by_role("link", name="backfill")).to_be_visible()
            expect(row.get_by_role("link", name="run_01M80000000000000000000000")).to_have_attribute(
                "href", "#/run/run_01M80000000000000000000000"
            )
        else:  # the real endpoint, on an empty store
            expect(page.locator("h1")).to_have_text("Failures")
            expect(page.locator(".notice")).to_have_text("No failures recorded.")
        page.goto(f"{server.url}/#/retention")
        if "retention" in stubbed:
            table = page.locator("table.generic")
            expect(table.locator("tbody tr")).to_have_count(2)
            expect(table.locator("thead")).to_contain_text("keep days")
            expect(table.locator("tbody tr").nth(1)).to_contain_text("finance_*")
        else:
            expect(page.locator("h1")).to_have_text("Retention")
        page.screenshot(path=str(SCREENSHOTS / "retention_stubbed.png"))
    context.close()


DOSSIER = {
    "version": 1,
    "run_id": None,
    "flow_id": "nightly_etl",
    "orchestrator": "python",
    "status": "failed",
    "attempt": 1,
    "live": False,
    "as_of": None,
    "headline": "External service unavailable in step load (try 1): LoadError: load failed",
    "failed_step": "load",
    "failed_try": 1,
    "classification": {
        "code": "unavailable",
        "label": "unavailable",
        "confidence": "high",
        "summary": "a service the step talks to could not be reached",
        "step_id": "load",
        "try_number": 1,
        "evidence": [{"text": "ConnectionError: timeout after 30s", "source": "exception chain", "fields": {}}],
        "also": ["timeout"],
    },
    "timing": {
        "step_id": None,
        "try_number": None,
        "status": "failed",
        "total_ms": 43000,
        "windows": [
            {"name": "queue_wait", "state": "closed", "duration_ms": 1200, "signal": None},
            {"name": "setup", "state": "closed", "duration_ms": 400, "signal": None},
            {"name": "active_work", "state": "closed", "duration_ms": 41000, "signal": None},
            {"name": "write_back", "state": "open", "duration_ms": None, "signal": "no final artifact recorded"},
        ],
    },
    "steps": [],
    "signals": [{"code": "no_log", "text": "a trace but no log", "step_id": "load", "try_number": 1}],
    "material": [{"name": "trace", "state": "kept", "detail": "2.1 KB", "ref": None}],
    "actions": [
        {"kind": "rerun", "title": "Re-run the flow", "command": "python nightly_etl.py --from load", "detail": None}
    ],
    "fingerprint": "4be1c6a0d2f93e17",
    "comparison": {
        "baseline_run_id": "run_01M80000000000000000000000",
        "baseline_attempt": 1,
        "baseline_finished_at": "2026-11-21T03:00:00Z",
        "differences": [{"field": "host", "failed": "worker-7", "baseline": "worker-2", "note": None}],
        "windows": [],
        "newly_failed": ["load"],
        "new_steps": [],
        "not_reached": [],
        "note": None,
    },
    "replay": {
        "from_step": "load",
        "replayable": True,
        "reason": "from the recorded dependency graph",
        "redo": ["load"],
        "keep": ["extract"],
        "how": "clear load and downstream",
        "evidence": [],
    },
    "group": {
        "fingerprint": "4be1c6a0d2f93e17",
        "count": 4,
        "first_seen": "2026-11-15T03:00:00Z",
        "flows": ["nightly_etl"],
    },
}


def with_dossier(page: Any, run_id: str) -> None:
    """Serve `DOSSIER` (version 1) inside the run's answer, whatever query the page adds to its request."""
    import json

    def fulfill(route: Any) -> None:
        response = route.fetch()
        data = response.json()
        data["dossier"] = {**DOSSIER, "run_id": run_id}
        route.fulfill(response=response, body=json.dumps(data), headers={"content-type": "application/json"})

    page.route(re.compile(rf"/api/runs/{re.escape(run_id)}(\?[^/]*)?$"), fulfill)


def test_the_dossier_renders_at_the_top_of_a_failed_run(site: Site, page: Any) -> None:
    """Against the dossier's JSON (version 1): injected into the run's answer, as the dossier issue serves it."""
    run_id = site.ids["failed"]
    with_dossier(page, run_id)
    page.goto(f"{site.url}/#/run/{run_id}")
    dossier = page.get_by_test_id("dossier")
    expect(dossier.locator(".dossier-title")).to_have_text(DOSSIER["headline"])
    expect(dossier).to_contain_text("high confidence")
    expect(dossier).to_contain_text("ConnectionError: timeout after 30s")
    expect(dossier.locator(".command code")).to_have_text("python nightly_etl.py --from load")
    expect(dossier.locator(".wseg")).to_have_count(4)
    expect(dossier.locator(".wlegend")).to_contain_text("active work 41.0s")
    expect(dossier.locator(".wlegend")).to_contain_text("no final artifact recorded")
    expect(dossier.get_by_role("link", name="4be1c6a0d2f93e17")).to_have_attribute(
        "href", "#/runs?fingerprint=4be1c6a0d2f93e17"
    )
    expect(dossier).to_contain_text("worker-7")


CONTRAST_JS = """
(selectors) => {
  const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = [];
  for (const sel of selectors) {
    for (const el of document.querySelectorAll(sel)) {
      if (!el.textContent.trim() || !el.getClientRects().length) continue;
      const fg = lum(parse(getComputedStyle(el).color).slice(0, 3));
      const bg = lum(background(el));
      const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
      out.push([sel, el.textContent.trim().slice(0, 30), Math.round(ratio * 100) / 100]);
      break;
    }
  }
  return out;
}
"""


def test_text_contrast_meets_wcag_aa(site: Site, page: Any) -> None:
    site.store.update_run(site.ids["week_fail"], status="crashed")
    open_runs(page, site)
    runs_selectors = [
        "th",
        ".muted",
        "label",
        ".mainnav a",
        ".brand",
        ".live-indicator",
        ".seg",
        ".btn",
        ".chip",
        ".badge.st-success",
        ".badge.st-failed",
        ".badge.st-crashed",
        ".badge.st-running",
        ".failed-step",
        "time.ago",
        ".pref",
        ".runlink",
        ".col-flow a",
        "td",
    ]
    checked = page.evaluate(CONTRAST_JS, runs_selectors)
    page.goto(f"{site.url}/#/run/{site.ids['failed']}/step/load")
    expect(page.locator("table.log tbody tr").first).to_be_visible()
    checked += page.evaluate(
        CONTRAST_JS,
        [
            ".tl-time",
            ".tl-name",
            ".exc-type",
            ".frame-where",
            ".exc-relation",
            ".tab",
            ".ln-n",
            ".ln-ts",
            ".ln-msg",
            ".ln-stream",
            ".kv dt",
            ".crumbs a",
            ".tag-root",
            ".btn-primary",
            ".notice",
        ],
    )
    assert len(checked) >= 25, checked
    low = [c for c in checked if c[2] < 4.5]
    assert low == [], f"below the WCAG AA contrast ratio of 4.5:1: {low}"


def test_an_expired_trace_says_so_instead_of_a_download(site: Site, page: Any) -> None:
    from datetime import UTC, datetime

    run_id = site.ids["failed"]
    site.store.update_run(run_id, blobs_expired=True, blobs_expired_at=datetime(2026, 11, 1, 12, tzinfo=UTC))
    open_runs(page, site)
    row = page.locator(f"tr[data-run-id='{run_id}']")
    row.get_by_test_id("error-chip").hover()
    expect(row.get_by_test_id("error-popover")).to_contain_text("trace expired by retention on 2026-11-01")
    expect(row.get_by_test_id("view-trace")).to_have_count(0)
    page.goto(f"{site.url}/#/run/{run_id}")
    expect(page.locator("section.failure")).to_contain_text("trace expired by retention on 2026-11-01")
    expect(page.get_by_test_id("view-trace")).to_have_count(0)
    page.goto(f"{site.url}/#/run/{run_id}/step/load")
    expect(page.locator(".log-info")).to_contain_text("log expired by retention on 2026-11-01")


def test_the_live_indicator_reconnects_and_the_table_catches_up(browser: Any, tmp_path: Path) -> None:
    from rundossier import Recorder
    from rundossier.server import create_app
    from rundossier.storage.db import RunStore
    from tests.browser.conftest import _settings
    from tests.liveserver import LiveServer
    from tests.s3server import free_port

    settings = _settings(tmp_path)
    store = RunStore(settings.db_url)
    rec = Recorder(settings, store=store, live_log_interval=None)
    first = rec.start_run("before_outage")
    app = create_app(settings, store=store)
    port = free_port()
    context = browser.new_context()
    page = context.new_page()
    try:
        with LiveServer(app, port=port) as server:
            page.goto(f"{server.url}/#/runs")
            expect(page.get_by_test_id("live-indicator")).to_have_text("Live")
            expect(page.locator(f"tr[data-run-id='{first.run_id}']")).to_be_visible()
        expect(page.get_by_test_id("live-indicator")).to_have_text(re.compile("Reconnecting|Offline"), timeout=5_000)
        # a run recorded while the page is cut off, long enough ago that the stream cannot replay it
        missed = rec.start_run("during_outage")
        time.sleep(2.5)
        with LiveServer(app, port=port):
            expect(page.get_by_test_id("live-indicator")).to_have_text("Live", timeout=15_000)
            expect(page.locator(f"tr[data-run-id='{missed.run_id}']")).to_be_visible()
    finally:
        context.close()
        store.close()
