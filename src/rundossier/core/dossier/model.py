"""The dossier's data model: frozen dataclasses, and their one JSON form (`dossier_json`).

A `Dossier` explains one run from its recorded rows and events: where the time went (timing
windows), what kind of failure it was and why we think so (classification with evidence), what
to do next (actions), what changed since the flow last succeeded (comparison) and what a re-run
from the failed step would redo (replay plan). Missing data is shown as such: a window whose
boundary was never recorded is `open` or `unknown` with a signal, never a made-up duration.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rundossier.core.timefmt import iso

#: bump when the JSON shape changes incompatibly
DOSSIER_VERSION = 1

#: window names, in time order
QUEUE_WAIT = "queue_wait"
SETUP = "setup"
ACTIVE_WORK = "active_work"
WRITE_BACK = "write_back"
WINDOW_NAMES = (QUEUE_WAIT, SETUP, ACTIVE_WORK, WRITE_BACK)

#: window states
CLOSED = "closed"  # both boundaries recorded
OPEN = "open"  # the start is recorded, the end never was (or not yet: a live run)
UNKNOWN = "unknown"  # the start was never recorded
INCONSISTENT = "inconsistent"  # the end was recorded before the start (clocks of two hosts disagree?)


@dataclass(frozen=True, slots=True)
class Evidence:
    """One line that supports a conclusion, where it came from, and the raw fields behind it."""

    text: str
    source: str
    fields: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(slots=True)
class Window:
    """One timing window between two recorded boundaries (not frozen: thousands are built per dossier)."""

    name: str
    state: str
    start: datetime | None = None
    end: datetime | None = None
    duration_ms: int | None = None
    #: for an open window of a live run: milliseconds from its start to `Dossier.as_of`
    elapsed_ms: int | None = None
    start_from: str | None = None
    end_from: str | None = None
    signal: str | None = None


@dataclass(slots=True)
class Timing:
    """The windows of the run (step_id None) or of one step try."""

    step_id: str | None
    try_number: int | None
    status: str
    windows: tuple[Window, ...]
    #: first recorded boundary to finish (queued or started -> finished), None while unfinished
    total_ms: int | None = None

    def window(self, name: str) -> Window:
        for w in self.windows:
            if w.name == name:
                return w
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class Signal:
    """Something missing or unusual in the record, said plainly."""

    code: str
    text: str
    step_id: str | None = None
    try_number: int | None = None


@dataclass(frozen=True, slots=True)
class Material:
    """What is kept for the failed step: trace, log, work events, artifacts (state + detail)."""

    name: str
    state: str
    detail: str
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Classification:
    """What kind of failure this is, how sure, and the evidence that made the call."""

    code: str
    label: str
    confidence: str
    summary: str
    step_id: str | None = None
    try_number: int | None = None
    evidence: tuple[Evidence, ...] = ()
    #: other classes whose rules also matched (less specific, or lower in the order)
    also: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Action:
    """A next step for the operator; `command` is exact and copyable when there is one."""

    kind: str
    title: str
    command: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Difference:
    """A field that differs between the failed run and the baseline (the last successful run)."""

    field: str
    failed: Any
    baseline: Any
    note: str | None = None


@dataclass(frozen=True, slots=True)
class WindowDelta:
    step_id: str | None
    window: str
    failed_ms: int | None
    baseline_ms: int | None
    delta_ms: int | None


@dataclass(frozen=True, slots=True)
class Comparison:
    """What differs from the flow's last successful run."""

    baseline_run_id: str
    baseline_attempt: int | None
    baseline_finished_at: datetime | None
    differences: tuple[Difference, ...]
    windows: tuple[WindowDelta, ...]
    newly_failed: tuple[str, ...]
    new_steps: tuple[str, ...]
    not_reached: tuple[str, ...]
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    """What a re-run from the failed step would redo and keep; not replayable when inputs changed."""

    from_step: str | None
    replayable: bool
    reason: str
    redo: tuple[str, ...]
    keep: tuple[str, ...]
    how: str
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True, slots=True)
class Dossier:
    """Everything the dossier says about one run."""

    run_id: str
    flow_id: str
    orchestrator: str
    status: str
    attempt: int | None
    live: bool
    as_of: datetime | None
    headline: str
    failed_step: str | None
    failed_try: int | None
    classification: Classification | None
    timing: Timing
    steps: tuple[Timing, ...]
    signals: tuple[Signal, ...]
    material: tuple[Material, ...]
    actions: tuple[Action, ...]
    fingerprint: str | None
    comparison: Comparison | None
    replay: ReplayPlan | None
    version: int = DOSSIER_VERSION


def dossier_json(dossier: Dossier) -> dict[str, Any]:
    """The dossier as JSON-ready data (what `GET /api/runs/{run_id}` returns under "dossier")."""
    out = _json(dossier)
    assert isinstance(out, dict)
    return out


_FIELDS: dict[type, tuple[str, ...]] = {}


def _window_json(w: Window) -> dict[str, Any]:
    # the hot path: a run of 1,000 steps has 4,000 windows
    return {
        "name": w.name,
        "state": w.state,
        "start": iso(w.start),
        "end": iso(w.end),
        "duration_ms": w.duration_ms,
        "elapsed_ms": w.elapsed_ms,
        "start_from": w.start_from,
        "end_from": w.end_from,
        "signal": w.signal,
    }


def _timing_json(t: Timing) -> dict[str, Any]:
    return {
        "step_id": t.step_id,
        "try_number": t.try_number,
        "status": t.status,
        "windows": [_window_json(w) for w in t.windows],
        "total_ms": t.total_ms,
    }


def _json(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Timing):
        return _timing_json(value)
    if isinstance(value, tuple | list):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    cls = type(value)
    names = _FIELDS.get(cls)
    if names is None:
        if not dataclasses.is_dataclass(value):
            return value
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(value))
    return {name: _json(getattr(value, name)) for name in names}


__all__ = [
    "Evidence",
    "Window",
    "Timing",
    "Signal",
    "Material",
    "Classification",
    "Action",
    "Difference",
    "WindowDelta",
    "Comparison",
    "ReplayPlan",
    "Dossier",
    "dossier_json",
    "DOSSIER_VERSION",
    "WINDOW_NAMES",
    "QUEUE_WAIT",
    "SETUP",
    "ACTIVE_WORK",
    "WRITE_BACK",
    "CLOSED",
    "OPEN",
    "UNKNOWN",
    "INCONSISTENT",
]
