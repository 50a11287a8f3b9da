"""Retention decisions (pure): hypothesis properties of plan_flow, and small cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rundossier.core.retention.plan import Action, Because, RunFacts, plan_flow
from rundossier.core.retention.policy import Policy
from rundossier.core.status import ACTIVE, TERMINAL, Status

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
STATUSES = [s.value for s in Status] + ["something_new"]

policies = st.builds(
    Policy,
    keep_days=st.integers(0, 60),
    keep_last=st.integers(0, 12),
    blob_days=st.integers(0, 60),
)


@st.composite
def flows(draw: st.DrawFn) -> list[RunFacts]:
    """A flow's runs, newest first: mixed statuses, ages up to 90 days, some already expired."""
    n = draw(st.integers(0, 25))
    runs = []
    for i in range(n):
        age_h = draw(st.integers(0, 90 * 24))
        expired = draw(st.sampled_from(["no", "no", "no", "done", "pending"]))
        runs.append(
            RunFacts(
                run_id=f"run_{n - i:04d}",
                status=draw(st.sampled_from(STATUSES)),
                ended_at=draw(st.one_of(st.none(), st.just(NOW - timedelta(hours=age_h))))
                if draw(st.integers(0, 20)) == 0
                else NOW - timedelta(hours=age_h),
                blobs_expired=expired != "no",
                blobs_expired_at=NOW - timedelta(days=100) if expired == "done" else None,
            )
        )
    return runs


def _terminal(r: RunFacts) -> bool:
    return r.status in {s.value for s in TERMINAL}


@settings(max_examples=120, deadline=None)
@given(flows(), policies)
def test_never_deletes_or_expires_a_run_that_is_not_finished(runs: list[RunFacts], policy: Policy) -> None:
    for d in plan_flow(runs, policy, NOW):
        if not _terminal(d.run):
            assert d.action is Action.KEEP and d.because is Because.ACTIVE


@settings(max_examples=120, deadline=None)
@given(flows(), policies)
def test_never_keeps_more_than_k_finished_runs(runs: list[RunFacts], policy: Policy) -> None:
    kept = [d for d in plan_flow(runs, policy, NOW) if _terminal(d.run) and d.action is not Action.DELETE]
    if policy.keep_last:
        assert len(kept) <= policy.keep_last


@settings(max_examples=120, deadline=None)
@given(flows(), policies)
def test_never_deletes_a_run_younger_than_n_days_unless_the_k_rule_says_so(
    runs: list[RunFacts], policy: Policy
) -> None:
    rank = 0
    for d in plan_flow(runs, policy, NOW):
        if _terminal(d.run):
            rank += 1
        if d.action is not Action.DELETE:
            continue
        old = (
            policy.keep_days and d.run.ended_at is not None and d.run.ended_at < NOW - timedelta(days=policy.keep_days)
        )
        beyond_k = bool(policy.keep_last) and rank > policy.keep_last
        assert old or beyond_k
        assert d.because is (Because.KEEP_LAST if beyond_k else Because.KEEP_DAYS)


@settings(max_examples=120, deadline=None)
@given(flows(), policies)
def test_a_run_within_both_limits_keeps_its_row(runs: list[RunFacts], policy: Policy) -> None:
    rank = 0
    for d in plan_flow(runs, policy, NOW):
        if not _terminal(d.run):
            continue
        rank += 1
        within_k = not policy.keep_last or rank <= policy.keep_last
        young = (
            not policy.keep_days or d.run.ended_at is None or d.run.ended_at >= NOW - timedelta(days=policy.keep_days)
        )
        if within_k and young:
            assert d.action is not Action.DELETE


@settings(max_examples=120, deadline=None)
@given(flows(), policies)
def test_blobs_expire_only_after_blob_days_or_to_finish_an_interrupted_expiry(
    runs: list[RunFacts], policy: Policy
) -> None:
    for d in plan_flow(runs, policy, NOW):
        if d.action is not Action.EXPIRE:
            continue
        assert _terminal(d.run) and not d.run.blobs_gone
        if d.because is Because.BLOB_DAYS:
            assert policy.blob_days and d.run.ended_at is not None
            assert d.run.ended_at < NOW - timedelta(days=policy.blob_days)
        else:
            assert d.because is Because.RESUME and d.run.expiry_pending


def _apply(runs: list[RunFacts], policy: Policy, now: datetime) -> list[RunFacts]:
    out = []
    for d in plan_flow(runs, policy, now):
        if d.action is Action.DELETE:
            continue
        r = d.run
        if d.action is Action.EXPIRE:
            r = RunFacts(r.run_id, r.status, r.ended_at, True, now)
        out.append(r)
    return out


@settings(max_examples=120, deadline=None)
@given(flows(), policies)
def test_a_second_sweep_at_the_same_time_does_nothing(runs: list[RunFacts], policy: Policy) -> None:
    after = _apply(runs, policy, NOW)
    assert all(d.action is Action.KEEP for d in plan_flow(after, policy, NOW))
    assert not any(r.expiry_pending for r in after if _terminal(r))


@settings(max_examples=100, deadline=None)
@given(flows(), policies, st.integers(0, 30 * 24))
def test_later_sweeps_delete_at_least_as_much(runs: list[RunFacts], policy: Policy, later_h: int) -> None:
    now_deleted = {d.run.run_id for d in plan_flow(runs, policy, NOW) if d.action is Action.DELETE}
    later = NOW + timedelta(hours=later_h)
    later_deleted = {d.run.run_id for d in plan_flow(runs, policy, later) if d.action is Action.DELETE}
    assert now_deleted <= later_deleted


def _run(i: int, status: str = "success", age_days: float = 0, expired: str = "no") -> RunFacts:
    return RunFacts(
        f"run_{i:04d}",
        status,
        NOW - timedelta(days=age_days),
        expired != "no",
        NOW if expired == "done" else None,
    )


@pytest.mark.parametrize(
    ("policy", "runs", "expected"),
    [
        # keep_last counts finished runs only; active ones are skipped and kept
        (Policy(0, 2, 0), [_run(5, "running"), _run(4), _run(3), _run(2)], ["keep", "keep", "keep", "delete"]),
        # keep_days: strictly older than N days
        (
            Policy(10, 0, 0),
            [_run(3, age_days=9.9), _run(2, age_days=10), _run(1, age_days=10.1)],
            ["keep"] * 2 + ["delete"],
        ),
        # whichever limit comes first
        (
            Policy(10, 1, 0),
            [_run(3, age_days=1), _run(2, age_days=2), _run(1, age_days=11)],
            ["keep", "delete", "delete"],
        ),
        # 0 means no limit
        (Policy(0, 0, 0), [_run(2, age_days=5000), _run(1, "failed", age_days=9000)], ["keep", "keep"]),
        # blob_days expires traces and logs early; already-expired runs are left alone
        (
            Policy(30, 0, 7),
            [_run(3, age_days=1), _run(2, age_days=8), _run(1, age_days=9, expired="done")],
            ["keep", "expire", "keep"],
        ),
        # an interrupted expiry is finished, even when blob_days is off
        (Policy(30, 0, 0), [_run(1, "failed", age_days=2, expired="pending")], ["expire"]),
        # an old paused run is never deleted
        (Policy(1, 1, 1), [_run(2, "paused", age_days=400), _run(1, "queued", age_days=400)], ["keep", "keep"]),
    ],
)
def test_cases(policy: Policy, runs: list[RunFacts], expected: list[str]) -> None:
    assert [d.action.value for d in plan_flow(runs, policy, NOW)] == expected


def test_a_run_without_any_time_is_not_deleted_by_age() -> None:
    run = RunFacts("run_1", "success", None)
    assert plan_flow([run], Policy(1, 0, 1), NOW)[0].action is Action.KEEP


def test_active_statuses_are_the_status_vocabulary_ones() -> None:
    assert {s.value for s in ACTIVE} == {"queued", "running", "paused"}
