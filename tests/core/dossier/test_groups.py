"""A failure group's state (open, resolved, regression) and the trend's window of days (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from rundossier.core.dossier.groups import MAX_TREND_DAYS, TREND_DAYS, group_state, trend_window

T = datetime(2026, 6, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("resolved_at", "last_failure", "state"),
    [
        (None, None, "open"),
        (None, T, "open"),
        (T, T - timedelta(seconds=1), "resolved"),
        (T, T, "resolved"),  # the failure it was resolved on
        (T, T + timedelta(microseconds=1), "regression"),
        (T, None, "resolved"),
    ],
)
def test_group_state(resolved_at: datetime | None, last_failure: datetime | None, state: str) -> None:
    assert group_state(resolved_at, last_failure) == state


TODAY = date(2026, 6, 30)


@pytest.mark.parametrize(
    ("first", "last", "start", "days"),
    [
        (None, None, TODAY - timedelta(days=TREND_DAYS - 1), TREND_DAYS),
        ("2026-06-28", None, date(2026, 6, 28), 3),
        ("2026-06-01", "2026-06-03", date(2026, 6, 1), 3),
        (None, "2026-06-03", date(2026, 6, 3) - timedelta(days=TREND_DAYS - 1), TREND_DAYS),
        ("2025-01-01", None, TODAY - timedelta(days=MAX_TREND_DAYS - 1), MAX_TREND_DAYS),
        ("2026-06-05", "2026-06-03", date(2026, 6, 5), 0),  # an empty window
    ],
)
def test_trend_window(first: str | None, last: str | None, start: date, days: int) -> None:
    assert trend_window(first, last, TODAY) == (start, days)
