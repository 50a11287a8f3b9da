"""How severe a log line is: its logging level, or for a print line, its stream (pure).

One rule for the API's `level=` filter and the UI: a line with a known level has that level's
rank (Python's numbers: DEBUG 10 ... CRITICAL 50); a line without one (a print, or a level this
does not know) counts as a warning on stderr and as info on stdout.
"""

from __future__ import annotations

from typing import Literal

from rundossier.core.logs.jsonl import LogLine

#: the filter's choices: lines of this level or worse
MinLevel = Literal["error", "warning", "info"]

DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50

_RANKS = {
    "debug": DEBUG,
    "trace": DEBUG,
    "info": INFO,
    "notice": INFO,
    "warning": WARNING,
    "warn": WARNING,
    "error": ERROR,
    "exception": ERROR,
    "critical": CRITICAL,
    "fatal": CRITICAL,
}
_MIN_RANK: dict[str, int] = {"error": ERROR, "warning": WARNING, "info": INFO}


def severity(level: str | None, stream: str) -> int:
    """The line's rank: its level's, else WARNING on stderr and INFO on stdout."""
    if level is not None:
        rank = _RANKS.get(level.strip().lower())
        if rank is not None:
            return rank
    return WARNING if stream == "stderr" else INFO


def at_least(line: LogLine, minimum: MinLevel) -> bool:
    """Whether the line is of level `minimum` or worse."""
    return severity(line.level, line.stream) >= _MIN_RANK[minimum]


__all__ = ["MinLevel", "severity", "at_least", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
