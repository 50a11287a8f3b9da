"""Failure groups: per-flow summary rows merged into one group per fingerprint (pure).

A fingerprint (exception type plus normalised in-app frames, see `rundossier.core.trace.fingerprint`)
names one bug wherever it happens: the group says how often it failed, when first and last, in
which flows, and the latest run with its error and class.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class FailureGroup:
    fingerprint: str
    count: int
    first_seen: datetime
    last_seen: datetime
    flows: tuple[str, ...]
    orchestrators: tuple[str, ...]
    latest_run_id: str
    latest_flow_id: str
    error_type: str | None
    error_message: str | None
    failure_class: str | None


def merge_groups(order: Sequence[str], counts: Mapping[str, int], rows: Iterable[Any]) -> list[FailureGroup]:
    """One group per fingerprint of `order` (in that order), from its per-flow rows.

    `counts` are the counts in the selected window; first seen is the earliest of the rows, the
    latest run and error are those of the row seen last.
    """
    by: dict[str, list[Any]] = {}
    for r in rows:
        by.setdefault(r.fingerprint, []).append(r)
    out: list[FailureGroup] = []
    for fp in order:
        rs = by.get(fp)
        if not rs:
            continue
        latest = max(rs, key=lambda r: (r.last_seen, r.latest_run_id))
        out.append(
            FailureGroup(
                fingerprint=fp,
                count=counts.get(fp, sum(r.count for r in rs)),
                first_seen=min(r.first_seen for r in rs),
                last_seen=latest.last_seen,
                flows=tuple(sorted({r.flow_id for r in rs})),
                orchestrators=tuple(sorted({r.orchestrator for r in rs})),
                latest_run_id=latest.latest_run_id,
                latest_flow_id=latest.flow_id,
                error_type=latest.error_type,
                error_message=latest.error_message,
                failure_class=latest.failure_class,
            )
        )
    return out


#: a group nobody marked resolved; one marked resolved with no failure since; one that failed again after
GroupState = Literal["open", "resolved", "regression"]


def group_state(resolved_at: datetime | None, last_failure: datetime | None) -> GroupState:
    """Open, resolved, or a regression: a failure after the time it was marked resolved."""
    if resolved_at is None:
        return "open"
    if last_failure is not None and last_failure > resolved_at:
        return "regression"
    return "resolved"


#: the trend covers the window's days, at most this many (the last ones); without `since`, the last TREND_DAYS
MAX_TREND_DAYS = 92
TREND_DAYS = 14


def trend_window(first: str | None, last: str | None, today: date) -> tuple[date, int]:
    """The trend's first day and number of days: the window's days (`first`, `last`: ISO days or
    None), the last MAX_TREND_DAYS of them at most; without `first`, the last TREND_DAYS days."""
    end = date.fromisoformat(last) if last is not None else today
    start = date.fromisoformat(first) if first is not None else end - timedelta(days=TREND_DAYS - 1)
    start = max(start, end - timedelta(days=MAX_TREND_DAYS - 1))
    return start, max(0, (end - start).days + 1)


def group_json(g: FailureGroup) -> dict[str, Any]:
    """The API shape of a group (the error in the one error shape)."""
    from rundossier.core.failure import error_json
    from rundossier.core.timefmt import iso

    return {
        "fingerprint": g.fingerprint,
        "count": g.count,
        "first_seen": iso(g.first_seen),
        "last_seen": iso(g.last_seen),
        "flows": list(g.flows),
        "orchestrators": list(g.orchestrators),
        "failure_class": g.failure_class,
        "latest": {
            "run_id": g.latest_run_id,
            "flow_id": g.latest_flow_id,
            "error": error_json(g.error_type, g.error_message),
        },
    }


__all__ = [
    "FailureGroup",
    "GroupState",
    "group_state",
    "trend_window",
    "MAX_TREND_DAYS",
    "TREND_DAYS",
    "merge_groups",
    "group_json",
]
