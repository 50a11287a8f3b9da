"""Failure groups: per-flow summary rows merged into one group per fingerprint (pure).

A fingerprint (exception type plus normalised in-app frames, see `rundossier.core.trace.fingerprint`)
names one bug wherever it happens: the group says how often it failed, when first and last, in
which flows, and the latest run with its error and class.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any


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


__all__ = ["FailureGroup", "merge_groups", "group_json"]
