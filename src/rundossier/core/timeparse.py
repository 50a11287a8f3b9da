"""Times people type, read one way everywhere (pure): the CLI's `--since`, the API's `since` and
`until`, the UI's time range.

Two forms are accepted:

- a span back from `now`: a whole number and a unit, `90m`, `6h`, `3d`, `2w` (units `s`, `m`,
  `h`, `d`, `w`; upper case and a space between are fine: `6 H`);
- an ISO-8601 date or time: `2026-12-01`, `2026-12-01T08:00`, `2026-12-01 08:00:00Z`,
  `2026-12-01T08:00:00+02:00`; one without a zone is UTC (as the database stores times).

Anything else raises `InvalidInput` naming the parameter and the accepted forms (`ACCEPTED`).
`parse_span` reads the first form alone, for options that are a length of time (a grace period).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from rundossier.core.timefmt import utc
from rundossier.errors import InvalidInput

#: seconds per span unit
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: the accepted forms, as every error message names them
ACCEPTED = (
    "a span back from now such as 90m, 6h, 3d or 2w (units s, m, h, d, w), or an ISO-8601 date or time "
    "such as 2026-12-01, 2026-12-01T08:00 or 2026-12-01T08:00:00+02:00 (UTC when it has no zone)"
)
#: the accepted form of a length of time
ACCEPTED_SPAN = "a span such as 90s, 30m, 24h, 7d or 2w (units s, m, h, d, w)"
#: longer text is no time anyone types (and never reaches the number parser)
MAX_LENGTH = 64

_SPAN = re.compile(r"(\d{1,18})\s*([smhdw])", re.IGNORECASE)


def parse_time(text: str, *, now: datetime, name: str = "since") -> datetime:
    """`text` as an aware UTC datetime: a span before `now` (aware) or an ISO-8601 time.

    `name` is the parameter or option the text came from, for the message of `InvalidInput`."""
    value = text.strip()
    if not value or len(value) > MAX_LENGTH:
        raise InvalidInput(f"{name}: {_shown(text)} is not a time; use {ACCEPTED}")
    span = _SPAN.fullmatch(value)
    try:
        if span is not None:
            return now.astimezone(UTC) - _timedelta(span)
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(f"{name}: {_shown(text)} is not a time; use {ACCEPTED}") from None
        return utc(ts)
    except OverflowError:
        raise InvalidInput(
            f"{name}: {_shown(text)} is outside the times rundossier can compare (years 1 to 9999 in UTC); "
            "use a shorter span such as 30d, or an ISO time"
        ) from None


def parse_span(text: str, *, name: str) -> timedelta:
    """`text` as a length of time: `90s`, `30m`, `24h`, `7d`, `2w`."""
    span = _SPAN.fullmatch(text.strip()) if len(text) <= MAX_LENGTH else None
    if span is None:
        raise InvalidInput(f"{name}: {_shown(text)} is not a time span; use {ACCEPTED_SPAN}")
    try:
        return _timedelta(span)
    except OverflowError:
        raise InvalidInput(f"{name}: {_shown(text)} is longer than rundossier can count; use {ACCEPTED_SPAN}") from None


def _timedelta(span: re.Match[str]) -> timedelta:
    return timedelta(seconds=int(span.group(1)) * UNITS[span.group(2).lower()])


def _shown(text: str) -> str:
    return repr(text if len(text) <= MAX_LENGTH else text[:MAX_LENGTH] + "...")


__all__ = ["parse_time", "parse_span", "ACCEPTED", "ACCEPTED_SPAN", "UNITS"]
