"""The one parser of times people type: spans back from now and ISO-8601 dates and times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from rundossier.core.timeparse import ACCEPTED, parse_span, parse_time
from rundossier.errors import InvalidInput

NOW = datetime(2026, 12, 5, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text,ago",
    [
        ("30s", timedelta(seconds=30)),
        ("90m", timedelta(minutes=90)),
        ("6h", timedelta(hours=6)),
        ("3d", timedelta(days=3)),
        ("2w", timedelta(weeks=2)),
        ("0h", timedelta(0)),
        (" 6H ", timedelta(hours=6)),
        ("6 h", timedelta(hours=6)),
    ],
)
def test_spans_count_back_from_now(text: str, ago: timedelta) -> None:
    assert parse_time(text, now=NOW) == NOW - ago


def test_a_span_from_a_now_in_another_zone_is_utc() -> None:
    now = NOW.astimezone(timezone(timedelta(hours=5)))
    got = parse_time("1h", now=now)
    assert got == NOW - timedelta(hours=1) and got.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01T08:00", datetime(2026, 12, 1, 8, tzinfo=UTC)),
        ("2026-12-01 08:00:30", datetime(2026, 12, 1, 8, 0, 30, tzinfo=UTC)),
        ("2026-12-01T08:00:00Z", datetime(2026, 12, 1, 8, tzinfo=UTC)),
        ("2026-12-01T08:00:00+02:00", datetime(2026, 12, 1, 6, tzinfo=UTC)),
        ("2026-12-01T08:00:00.250-05:30", datetime(2026, 12, 1, 13, 30, 0, 250000, tzinfo=UTC)),
    ],
)
def test_iso_dates_and_times_are_utc(text: str, expected: datetime) -> None:
    got = parse_time(text, now=NOW)
    assert got == expected and got.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "yesterday", "6", "h", "6x", "-6h", "1.5h", "6h ago", "2026-13-01", "2026-12-01T25:00", "x" * 500],
)
def test_anything_else_names_the_parameter_and_the_accepted_forms(text: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_time(text, now=NOW, name="--since")
    message = str(err.value)
    assert message.startswith("--since: ") and ACCEPTED in message and len(message) < 400


@pytest.mark.parametrize("text", ["999999999999999999w", "0001-01-01T00:00:00+14:00", "99999999999d"])
def test_times_outside_what_utc_holds_are_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput, match="years 1 to 9999"):
        parse_time(text, now=NOW)


@pytest.mark.parametrize(
    "text,length", [("90s", 90), ("30m", 1800), ("24h", 86400), ("7D", 604800), (" 2 w", 1209600), ("0s", 0)]
)
def test_spans_as_lengths_of_time(text: str, length: int) -> None:
    assert parse_span(text, name="--orphan-grace").total_seconds() == length


@pytest.mark.parametrize("text", ["soon", "", "24", "2026-12-01", "-1h", "1.5h", "y" * 100])
def test_a_span_is_only_a_span(text: str) -> None:
    with pytest.raises(InvalidInput, match="^--orphan-grace: .* is not a time span; use a span such as"):
        parse_span(text, name="--orphan-grace")


def test_a_span_longer_than_python_counts_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="longer than rundossier can count"):
        parse_span("999999999999999999w", name="--orphan-grace")
