"""Timing windows of a run and of each step try, from recorded boundaries only.

Boundaries, in time order, and where each comes from (an explicit event beats a row field):

- queued: a `run_queued` event (for the step, or the run), else the row's `queued_at`;
- started: a `worker_claimed` event (step) or `run_started` event (run), else `started_at`;
- first work: the earliest `first_work` event, else for a step `first_output_at` (its first log
  line) and for a run the earliest step start;
- last work: the latest `last_work` event, else for a step `last_output_at` (its last log line)
  and for a run the latest step end (none while a step of a live run is still active);
- finished: the row's `finished_at`.

Windows: queue wait (queued -> started), setup (started -> first work), active work (first ->
last work), write-back (last work -> finished). For a run, setup is what happens before the first
step starts (scheduling, flow import) and write-back what happens after the last step ends.
A boundary never recorded leaves its window `open` (start known) or `unknown` (start missing),
with a signal such as "worker claimed, no first work event"; never a made-up duration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from rundossier.core.dossier.events import FIRST_WORK, LAST_WORK, RUN_QUEUED, RUN_STARTED, WORKER_CLAIMED
from rundossier.core.dossier.ledger import Ledger
from rundossier.core.dossier.model import CLOSED, INCONSISTENT, OPEN, UNKNOWN, WINDOW_NAMES, Timing, Window
from rundossier.core.ids import RUN_STEP
from rundossier.core.status import ACTIVE

#: the recorder's step id for a failure outside any step (not a step of the flow)
ACTIVE_STATUSES = ACTIVE  # the dossier's name for it


@dataclass(slots=True)
class Boundaries:
    queued: datetime | None = None
    queued_from: str | None = None
    started: datetime | None = None
    started_from: str | None = None
    first_work: datetime | None = None
    first_work_from: str | None = None
    last_work: datetime | None = None
    last_work_from: str | None = None
    finished: datetime | None = None
    finished_from: str | None = None


def ms_between(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return (end - start) // _MS


def step_boundaries(step: Any, ledger: Ledger, *, latest: bool = True) -> Boundaries:
    """The recorded boundaries of one step try."""
    kinds = ledger.step_kinds(step.step_id, step.try_number, latest=latest)
    if kinds:
        queued, queued_from = _first(kinds.get(RUN_QUEUED), "event run_queued")
        started, started_from = _first(kinds.get(WORKER_CLAIMED), "event worker_claimed")
        first, first_from = _first(kinds.get(FIRST_WORK), "event first_work")
        last, last_from = _last(kinds.get(LAST_WORK), "event last_work")
    else:
        queued = queued_from = started = started_from = first = first_from = last = last_from = None
    if queued is None and step.queued_at is not None:
        queued, queued_from = step.queued_at, "step.queued_at"
    if started is None and step.started_at is not None:
        started, started_from = step.started_at, "step.started_at"
    if first is None and step.first_output_at is not None:
        first, first_from = step.first_output_at, "step.first_output_at (first log line)"
    if last is None and step.last_output_at is not None:
        last, last_from = step.last_output_at, "step.last_output_at (last log line)"
    finished = step.finished_at
    return Boundaries(
        queued, queued_from, started, started_from, first, first_from, last, last_from,
        finished, "step.finished_at" if finished is not None else None,
    )  # fmt: skip


def run_boundaries(run: Any, steps: Sequence[Any], ledger: Ledger, *, live: bool) -> Boundaries:
    """The recorded boundaries of the run (steps: every try of every step)."""
    queued, queued_from = _first(ledger.run(RUN_QUEUED), "event run_queued")
    if queued is None and run.queued_at is not None:
        queued, queued_from = run.queued_at, "run.queued_at"
    started, started_from = _first(ledger.run(RUN_STARTED), "event run_started")
    if started is None and run.started_at is not None:
        started, started_from = run.started_at, "run.started_at"
    first, first_from = _first(ledger.run(FIRST_WORK), "event first_work")
    last, last_from = _last(ledger.run(LAST_WORK), "event last_work")
    if first is None or last is None:
        earliest: tuple[datetime, str] | None = None
        latest: tuple[datetime, str] | None = None
        active = False
        for s in steps:
            if s.step_id == RUN_STEP:
                continue
            if s.status in ACTIVE_STATUSES:
                active = True
            st = s.started_at
            if st is not None and (earliest is None or st < earliest[0]):
                earliest = (st, s.step_id)
            fin = s.finished_at
            if fin is not None and (latest is None or fin > latest[0]):
                latest = (fin, s.step_id)
        if first is None and earliest is not None:
            first, first_from = earliest[0], f"earliest step start ({earliest[1]})"
        if last is None and latest is not None and not (live and active):
            last, last_from = latest[0], f"latest step end ({latest[1]})"
    finished = run.finished_at
    return Boundaries(
        queued, queued_from, started, started_from, first, first_from, last, last_from,
        finished, "run.finished_at" if finished is not None else None,
    )  # fmt: skip


#: signals per window: (open while live, open when finished, start never recorded), for steps and runs
_STEP_SIGNALS = (
    ("waiting in the queue", "queued, never started (failed before a worker claimed it)", "no queued time recorded"),
    ("started, no first work yet", "worker claimed, no first work event", "no start recorded"),
    ("working", "first work recorded, no last work event", "no first work recorded"),
    ("writing back", "last work recorded, no finish recorded", "no last work recorded"),
)
_RUN_SIGNALS = (
    ("waiting in the queue", "queued, no start recorded", "no queued time recorded"),
    ("started, no first work yet", "run started, no first work event", "no start recorded"),
    *_STEP_SIGNALS[2:],
)
_NEVER_STARTED = "never started"
#: a window that ends less than this before it starts is closed at 0 ms: its boundaries are times one
#: host took a few ms apart in two places (a log record's time, a state's timestamp), not clock skew,
#: which between hosts is tens of ms or more
CLOCK_TOLERANCE_MS = 10
_MS = timedelta(milliseconds=1)


def timing(
    b: Boundaries,
    *,
    step_id: str | None,
    try_number: int | None,
    status: str,
    live: bool,
    now: datetime | None,
) -> Timing:
    """The four windows between `b`'s boundaries, with a signal wherever one is missing."""
    signals = _STEP_SIGNALS if step_id is not None else _RUN_SIGNALS
    bounds = (
        (b.queued, b.queued_from),
        (b.started, b.started_from),
        (b.first_work, b.first_work_from),
        (b.last_work, b.last_work_from),
        (b.finished, b.finished_from),
    )
    windows = []
    for i, name in enumerate(WINDOW_NAMES):
        start, start_from = bounds[i]
        end, end_from = bounds[i + 1]
        if start is None:
            unknown = signals[i][2]
            if i == 1 and b.queued is not None:
                unknown = _NEVER_STARTED
            windows.append(Window(name, UNKNOWN, None, end, None, None, None, end_from, unknown))
        elif end is None:
            elapsed = (now - start) // _MS if live and now is not None else None
            signal = signals[i][0] if live else signals[i][1]
            windows.append(Window(name, OPEN, start, None, None, elapsed, start_from, None, signal))
        else:
            ms = (end - start) // _MS
            if -CLOCK_TOLERANCE_MS < ms < 0:
                ms = 0  # two reads of one clock a few ms apart, in either order: not a skew
            if ms < 0:
                why = f"ends {-ms} ms before it starts (clocks of two hosts disagree?)"
                windows.append(Window(name, INCONSISTENT, start, end, None, None, start_from, end_from, why))
            else:
                windows.append(Window(name, CLOSED, start, end, ms, None, start_from, end_from, None))
    origin = b.queued or b.started
    total = (b.finished - origin) // _MS if origin is not None and b.finished is not None else None
    return Timing(step_id, try_number, status, tuple(windows), total if total is None or total >= 0 else None)


_TS = attrgetter("ts")


def _first(events: list[Any] | None, label: str) -> tuple[datetime | None, str | None]:
    if not events:
        return None, None
    return min(map(_TS, events)), label


def _last(events: list[Any] | None, label: str) -> tuple[datetime | None, str | None]:
    if not events:
        return None, None
    return max(map(_TS, events)), label


__all__ = [
    "ACTIVE_STATUSES",
    "CLOCK_TOLERANCE_MS",
    "RUN_STEP",
    "Boundaries",
    "ms_between",
    "run_boundaries",
    "step_boundaries",
    "timing",
]
