"""How severe a log line is (the `level=` filter's one rule) and log pages cut by level."""

from __future__ import annotations

import pytest

from rundossier.core.logs import LogLine, at_least, severity
from rundossier.core.logs.levels import CRITICAL, DEBUG, ERROR, INFO, WARNING
from rundossier.read.reader import log_page


@pytest.mark.parametrize(
    ("level", "stream", "rank"),
    [
        ("ERROR", "stdout", ERROR),
        ("error", "stderr", ERROR),
        ("WARNING", "stdout", WARNING),
        ("Warn", "stdout", WARNING),
        ("INFO", "stderr", INFO),
        ("DEBUG", "stderr", DEBUG),
        ("CRITICAL", "stdout", CRITICAL),
        ("FATAL", "stdout", CRITICAL),
        (" exception ", "stdout", ERROR),
        (None, "stderr", WARNING),  # a print to stderr
        (None, "stdout", INFO),  # a print to stdout
        ("Level 5", "stderr", WARNING),  # a level this does not know: by stream
        ("", "stdout", INFO),
    ],
)
def test_severity_is_the_level_else_the_stream(level: str | None, stream: str, rank: int) -> None:
    assert severity(level, stream) == rank


@pytest.mark.parametrize(
    ("level", "stream", "passes"),
    [
        ("ERROR", "stdout", {"error", "warning", "info"}),
        ("CRITICAL", "stdout", {"error", "warning", "info"}),
        ("WARNING", "stdout", {"warning", "info"}),
        (None, "stderr", {"warning", "info"}),
        ("INFO", "stderr", {"info"}),
        (None, "stdout", {"info"}),
        ("DEBUG", "stdout", set()),
    ],
)
def test_at_least_keeps_that_level_or_worse(level: str | None, stream: str, passes: set[str]) -> None:
    line = LogLine(0.0, stream, level, "m")
    assert {m for m in ("error", "warning", "info") if at_least(line, m)} == passes  # type: ignore[arg-type]


def _lines() -> list[LogLine]:
    out = []
    for i in range(1, 101):
        if i % 10 == 0:
            out.append(LogLine(float(i), "stderr", "ERROR" if i % 50 == 0 else "WARNING", f"problem {i}"))
        else:
            out.append(LogLine(float(i), "stdout", "DEBUG" if i % 3 == 0 else None, f"line {i}"))
    return out


def test_a_level_page_is_a_page_of_matching_lines_with_their_counts() -> None:
    page = log_page(_lines(), level="warning", page=2, page_size=4)
    assert page.total == 10 and page.counts == {"stdout": 0, "stderr": 10}
    assert [(x.n, x.message) for x in page.lines] == [
        (5, "problem 50"),
        (6, "problem 60"),
        (7, "problem 70"),
        (8, "problem 80"),
    ]
    errors = log_page(_lines(), level="error")
    assert [x.message for x in errors.lines] == ["problem 50", "problem 100"] and errors.total == 2


def test_level_stream_and_search_combine() -> None:
    info = log_page(_lines(), level="info", stream="stdout", q="line 1")
    # DEBUG lines (every 3rd) drop out; numbers count the lines left
    assert info.total == 90 - 30 and info.counts == {"stdout": 60, "stderr": 10}
    assert all(x.level != "DEBUG" for x in info.lines)
    assert [info.lines[n - 1].message for n in info.matches] == [f"line {i}" for i in (1, 11, 13, 14, 16, 17, 19)]


def test_no_level_keeps_every_line() -> None:
    page = log_page(_lines(), page_size=1000)
    assert page.total == 100 and page.counts == {"stdout": 90, "stderr": 10}
