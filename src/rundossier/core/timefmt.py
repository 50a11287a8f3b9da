"""Times and durations as rundossier writes them for people and for JSON (pure).

One place for the three things every layer formats: an instant as ISO-8601 UTC with a `Z`,
an instant made timezone-aware (naive values are UTC, as the database stores them), and a
duration in milliseconds as a person reads it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


def iso(value: datetime | None) -> str | None:
    """`2026-12-04T15:26:17.123456Z`; None stays None."""
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: None) -> None: ...
def utc(value: datetime | None) -> datetime | None:
    """`value` as an aware UTC datetime (a naive one is taken as UTC); None stays None."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def duration_text(ms: int | float | None, *, unknown: str = "-") -> str:
    """`850 ms` -> `0.9s`, `75,000` -> `1m15s`, `4,000,000` -> `1h06m`, `-2,000` -> `-2.0s`; None -> `unknown`."""
    if ms is None:
        return unknown
    sign = "-" if ms < 0 else ""
    s = abs(ms) / 1000
    if s < 60:
        return f"{sign}{s:.1f}s"
    if s < 3600:
        return f"{sign}{int(s // 60)}m{int(s % 60):02d}s"
    return f"{sign}{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


__all__ = ["iso", "utc", "duration_text"]
