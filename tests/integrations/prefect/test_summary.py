"""The failure summary shown on a flow run in Prefect's UI (pure)."""

from __future__ import annotations

import pytest

from rundossier.integrations.prefect.summary import (
    FailureSummary,
    chain_of,
    failure_markdown,
    fenced,
    md_escape,
    one_line,
    run_page_url,
    trace_url,
)


def _chained() -> BaseException:
    try:
        try:
            raise ConnectionError("timeout")
        except ConnectionError as exc:
            raise RuntimeError("load failed") from exc
    except RuntimeError as exc:
        return exc


def _context() -> BaseException:
    try:
        try:
            raise KeyError("k")
        except KeyError:
            raise ValueError("while handling")  # noqa: B904
    except ValueError as exc:
        return exc


@pytest.mark.parametrize(
    ("base", "run_id", "trace", "page"),
    [
        ("http://h:8000", "run_1", "http://h:8000/api/runs/run_1/trace", "http://h:8000/#/run/run_1"),
        ("https://h/rd/", "run_1", "https://h/rd/api/runs/run_1/trace", "https://h/rd/#/run/run_1"),
        ("http://h", "a b/c", "http://h/api/runs/a%20b%2Fc/trace", "http://h/#/run/a%20b%2Fc"),
    ],
)
def test_links(base: str, run_id: str, trace: str, page: str) -> None:
    assert trace_url(base, run_id) == trace
    assert run_page_url(base, run_id) == page


def test_chain_of_a_cause() -> None:
    assert chain_of(_chained()) == ("RuntimeError: load failed", "caused by ConnectionError: timeout")


def test_chain_of_a_context() -> None:
    assert chain_of(_context()) == ("ValueError: while handling", "while handling KeyError: 'k'")


def test_chain_of_a_suppressed_context() -> None:
    try:
        try:
            raise KeyError("k")
        except KeyError:
            raise ValueError("v") from None
    except ValueError as exc:
        assert chain_of(exc) == ("ValueError: v",)


def test_chain_is_bounded_and_masked() -> None:
    exc: BaseException | None = None
    for n in range(20):
        new = RuntimeError(f"level {n} password=hunter2")
        new.__cause__ = exc
        exc = new
    chain = chain_of(exc, mask=lambda s: s.replace("hunter2", "***"), limit=3)
    assert len(chain) == 4 and chain[-1] == "..."
    assert all("hunter2" not in link for link in chain)


def test_chain_of_a_loop_ends() -> None:
    a, b = ValueError("a"), ValueError("b")
    a.__cause__, b.__cause__ = b, a
    assert chain_of(a) == ("ValueError: a", "caused by ValueError: b")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("one", "one"), ("first\nsecond", "first ..."), ("x" * 400, "x" * 297 + "..."), ("  padded  ", "padded")],
)
def test_one_line(text: str, expected: str) -> None:
    assert one_line(text) == expected


def test_fenced_survives_backticks() -> None:
    lines = fenced("a ``` b")
    assert lines[0] == "````text" and lines[-1] == "````"


def test_md_escape() -> None:
    assert md_escape("[x](http://evil) *y* <b>") == r"\[x\](http://evil) \*y\* \<b\>"


def test_markdown_of_a_task_failure_with_links() -> None:
    md = failure_markdown(
        FailureSummary(
            flow_name="nightly_etl",
            run_id="run_1",
            status="failed",
            flow_run_name="brave-fox",
            error_type="RuntimeError",
            error_message="load failed",
            step_id="load-8b5",
            try_number=2,
            chain=("RuntimeError: load failed", "caused by ConnectionError: timeout"),
            trace_link="http://h/api/runs/run_1/trace",
            page_link="http://h/#/run/run_1",
        )
    )
    assert "Failing task: `load-8b5`, try 2." in md
    assert "RuntimeError: load failed" in md and "caused by ConnectionError: timeout" in md
    assert "[Download the full trace](http://h/api/runs/run_1/trace)" in md
    assert "[Open the run in rundossier](http://h/#/run/run_1)" in md
    assert "nightly\\_etl" in md


def test_markdown_without_a_ui_points_at_the_cli_and_says_how_to_get_links() -> None:
    md = failure_markdown(
        FailureSummary(
            flow_name="f",
            run_id="run_1",
            status="crashed",
            error_message="process exited with code -9",
            reason="no traceback captured: the process died",
        )
    )
    assert "flow run crashed" in md and "process exited with code -9" in md
    assert "`rundossier trace run_1`" in md and "`ui_base_url`" in md
    assert "no traceback captured" in md and "Download" not in md and "://" not in md


def test_the_dossier_replaces_the_plain_summary_but_keeps_the_links() -> None:
    md = failure_markdown(
        FailureSummary(flow_name="f", run_id="run_1", status="failed", trace_link="http://h/t"),
        dossier="## Run dossier: timeout in load",
    )
    assert md.startswith("## Run dossier: timeout in load") and "(http://h/t)" in md
