"""Text (CLI) and Markdown (Prefect artifact) forms of a dossier."""

from __future__ import annotations

from rundossier.core.dossier import build_dossier, dossier_markdown, dossier_text
from rundossier.core.dossier.model import Window
from rundossier.core.dossier.text import window_text
from rundossier.core.timefmt import duration_text
from tests.core.dossier.streams import event, failed_event, run, step, t
from tests.core.dossier.test_build import CHAIN, STREAMS, extract_ok, failing_load


def test_text_leads_with_the_explanation() -> None:
    stream, _ = STREAMS["no first work event"]
    text = dossier_text(build_dossier(stream.run, stream.steps, stream.events))
    lines = text.splitlines()
    assert lines[0].startswith("DOSSIER  Failed before any work in step load (try 1)")
    assert "class        pre_work (low confidence)" in text
    assert "before its first work event" in text
    assert "! worker claimed, no first work event (load try 1)" in text
    assert "step timing  load try 1:" in text and "setup open: worker claimed, no first work event" in text
    assert "replay       replayable" in text


def test_text_of_a_live_run() -> None:
    r = run(status="running", finished_at=None)
    text = dossier_text(build_dossier(r, [step("a", status="running", started_at=2)], [], now=t(62)))
    assert "active work open (1m00s so far): working" in text


def test_markdown_has_sections_and_escapes_user_text() -> None:
    r = run(flow_id="etl_<script>|x", root_step_id="load", orchestrator="prefect", run_key="abc")
    steps = [extract_ok(), failing_load(error_message="bad | `pipe` <b>")]
    md = dossier_markdown(build_dossier(r, steps, [failed_event("load", 41, CHAIN)]))
    assert md.startswith("## Run dossier: External service unavailable in step load")
    assert "<script>" not in md and "\\<script\\>" in md
    assert "### Next actions" in md and "```\nprefect flow-run retry abc\n```" in md
    assert "### Replay plan: Replayable" in md
    assert "| setup |" in md


def test_markdown_shows_only_what_a_browser_renders() -> None:
    """Prefect's Markdown shows `:warning:` as is, and no browser opens a storage path."""
    r = run(root_step_id="load", orchestrator="prefect", run_key="abc")
    d = build_dossier(r, [extract_ok(), failing_load(started_at=None)], [failed_event("load", 41, CHAIN)])
    assert d.signals
    md = dossier_markdown(d)
    assert ":warning:" not in md and "\u26a0\ufe0f" in md
    assert "file://" not in md and "**Read the full trace**" in md and f"rundossier trace {r.run_id}" in md
    linked = dossier_markdown(d, ui_base_url="https://rd.example/x/")
    url = f"https://rd.example/x/api/runs/{r.run_id}/steps/load/trace?try=1"
    assert f"**[Read the full trace]({url})**" in linked and "file://" not in linked


def test_markdown_code_fences_survive_backticks_in_commands() -> None:
    r = run(orchestrator="prefect", run_key="a```b", root_step_id="load")
    md = dossier_markdown(build_dossier(r, [failing_load()], [event("step_failed", 41, "load", 1)]))
    assert "````\nprefect flow-run retry 'a```b'\n````" in md


def test_window_text_and_durations() -> None:
    assert (
        duration_text(None) == "-"
        and duration_text(1500) == "1.5s"
        and duration_text(125_000) == "2m05s"
        and duration_text(-2000) == "-2.0s"
    )
    assert duration_text(3_720_000) == "1h02m"
    assert window_text(Window("queue_wait", "closed", duration_ms=2000)) == "queue wait 2.0s"
    assert window_text(Window("setup", "unknown", signal="never started")) == "setup ?: never started"
