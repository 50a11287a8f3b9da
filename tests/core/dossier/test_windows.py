"""Timing windows: recorded boundaries only; a missing boundary opens the window with a signal."""

from __future__ import annotations

import pytest

from rundossier.core.dossier.ledger import Ledger
from rundossier.core.dossier.model import CLOSED, INCONSISTENT, OPEN, UNKNOWN
from rundossier.core.dossier.windows import run_boundaries, step_boundaries, timing
from tests.core.dossier.streams import event, run, step, t

NAMES = ("queue_wait", "setup", "active_work", "write_back")


def step_windows(s, events=(), *, live=False, now=None):
    tm = timing(
        step_boundaries(s, Ledger(events)), step_id=s.step_id, try_number=s.try_number, status=s.status,
        live=live, now=now,
    )  # fmt: skip
    return tm


def states(tm):
    return tuple((w.state, w.duration_ms) for w in tm.windows)


@pytest.mark.parametrize(
    ("kw", "events", "expected"),
    [
        pytest.param(
            dict(queued_at=0, started_at=2, first_output_at=5, last_output_at=50, finished_at=60),
            [],
            ((CLOSED, 2000), (CLOSED, 3000), (CLOSED, 45000), (CLOSED, 10000)),
            id="every-boundary-from-rows",
        ),
        pytest.param(
            dict(started_at=2, finished_at=60),
            [],
            ((UNKNOWN, None), (OPEN, None), (UNKNOWN, None), (UNKNOWN, None)),
            id="no-queue-no-output",
        ),
        pytest.param(
            dict(queued_at=0, started_at=None, finished_at=9, status="failed"),
            [],
            ((OPEN, None), (UNKNOWN, None), (UNKNOWN, None), (UNKNOWN, None)),
            id="failed-before-claim",
        ),
        pytest.param(
            dict(queued_at=0, started_at=2, first_output_at=5, last_output_at=50, finished_at=60),
            [
                ("run_queued", 1),
                ("worker_claimed", 3),
                ("first_work", 10),
                ("first_work", 12),
                ("last_work", 40),
                ("last_work", 45),
            ],
            ((CLOSED, 2000), (CLOSED, 7000), (CLOSED, 35000), (CLOSED, 15000)),
            id="events-beat-row-fields",
        ),
        pytest.param(
            dict(started_at=10, first_output_at=5, last_output_at=20, finished_at=30),
            [],
            ((UNKNOWN, None), (INCONSISTENT, None), (CLOSED, 15000), (CLOSED, 10000)),
            id="clock-skew",
        ),
        pytest.param(
            dict(started_at=2, first_output_at=5, last_output_at=50.004, finished_at=50),
            [],
            ((UNKNOWN, None), (CLOSED, 3000), (CLOSED, 45004), (CLOSED, 0)),
            id="a-few-ms-apart-on-one-host-is-not-skew",
        ),
        pytest.param(
            dict(started_at=2, first_output_at=5, last_output_at=50.02, finished_at=50),
            [],
            ((UNKNOWN, None), (CLOSED, 3000), (CLOSED, 45020), (INCONSISTENT, None)),
            id="tens-of-ms-is-skew",
        ),
        pytest.param(
            dict(started_at=2, first_output_at=5, finished_at=60),
            [],
            ((UNKNOWN, None), (CLOSED, 3000), (OPEN, None), (UNKNOWN, None)),
            id="first-work-no-last-work",
        ),
    ],
)
def test_step_windows(kw, events, expected) -> None:
    s = step("load", **kw)
    evs = [event(kind, at, "load", 1) for kind, at in events]
    assert states(step_windows(s, evs)) == expected


def test_missing_boundaries_say_so() -> None:
    tm = step_windows(step("load", started_at=2, finished_at=60, status="failed"))
    setup = tm.window("setup")
    assert setup.signal == "worker claimed, no first work event"
    assert setup.duration_ms is None and setup.start == t(2) and setup.start_from == "step.started_at"
    assert tm.window("queue_wait").signal == "no queued time recorded"
    assert tm.total_ms == 58000


def test_failed_before_claim_says_so() -> None:
    tm = step_windows(step("load", queued_at=0, finished_at=9, status="failed"))
    assert "failed before a worker claimed it" in tm.window("queue_wait").signal
    assert tm.window("setup").signal == "never started"


def test_live_window_counts_up_to_now() -> None:
    s = step("load", started_at=2, first_output_at=5, status="running")
    tm = step_windows(s, live=True, now=t(65))
    active = tm.window("active_work")
    assert (active.state, active.elapsed_ms, active.signal) == (OPEN, 60000, "working")
    assert tm.total_ms is None


def test_event_without_try_counts_for_the_latest_try_only() -> None:
    evs = [event("first_work", 30, "load", None)]
    s1 = step("load", started_at=2, finished_at=10, status="failed")
    s2 = step("load", try_number=2, started_at=20, finished_at=40)
    assert step_boundaries(s1, Ledger(evs), latest=False).first_work is None
    assert step_boundaries(s2, Ledger(evs), latest=True).first_work == t(30)


def test_run_windows_come_from_steps_when_no_run_events() -> None:
    r = run(queued_at=0, started_at=1, finished_at=100)
    steps = [
        step("extract", started_at=5, finished_at=30),
        step("load", started_at=31, finished_at=90),
        step("_run", started_at=95, finished_at=99),  # the recorder's run-level pseudo step is not work
    ]
    b = run_boundaries(r, steps, Ledger([]), live=False)
    assert (b.first_work, b.first_work_from) == (t(5), "earliest step start (extract)")
    assert (b.last_work, b.last_work_from) == (t(90), "latest step end (load)")
    tm = timing(b, step_id=None, try_number=None, status="failed", live=False, now=None)
    assert [w.duration_ms for w in tm.windows] == [1000, 4000, 85000, 10000]


def test_run_level_work_events_beat_steps() -> None:
    r = run(started_at=1, finished_at=100)
    evs = [event("first_work", 10), event("last_work", 80)]
    b = run_boundaries(r, [step("a", started_at=5, finished_at=90)], Ledger(evs), live=False)
    assert (b.first_work, b.last_work) == (t(10), t(80))


def test_live_run_with_an_active_step_has_no_last_work() -> None:
    r = run(status="running", finished_at=None)
    steps = [step("a", started_at=5, finished_at=30), step("b", started_at=31, status="running")]
    b = run_boundaries(r, steps, Ledger([]), live=True)
    assert b.last_work is None
    tm = timing(b, step_id=None, try_number=None, status="running", live=True, now=t(50))
    assert tm.window("active_work").elapsed_ms == 45000


def test_run_with_no_steps() -> None:
    tm = timing(
        run_boundaries(run(), [], Ledger([]), live=False), step_id=None, try_number=None, status="failed",
        live=False, now=None,
    )  # fmt: skip
    assert tm.window("setup").signal == "run started, no first work event"
    assert tm.total_ms == 100000
