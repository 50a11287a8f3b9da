"""Replay plans: redo the failed step and its downstream, keep the rest; refuse when inputs changed."""

from __future__ import annotations

from rundossier.core.dossier.build import latest_tries
from rundossier.core.dossier.ledger import Ledger
from rundossier.core.dossier.replay import replay_plan
from tests.core.dossier.streams import event, run, step

GRAPH = [
    step("extract", started_at=1, finished_at=2),
    step("clean", started_at=3, finished_at=4, upstream=["extract"]),
    step("load", status="failed", started_at=5, finished_at=6, upstream=["clean"]),
    step("report", status="upstream_failed", upstream=["load"]),
    step("audit", started_at=5, finished_at=9, upstream=["extract"]),
]


def plan(steps, failed, events=(), **kw):
    return replay_plan(run(**kw), latest_tries(steps), failed, Ledger(events), live=kw.get("status") == "running")


def test_graph_decides_redo_and_keep() -> None:
    p = plan(GRAPH, "load")
    assert p.replayable and p.reason == "from the recorded dependency graph"
    assert set(p.redo) == {"load", "report"}
    assert set(p.keep) == {"extract", "clean", "audit"}


def test_mapped_steps_match_their_task_id() -> None:
    steps = [
        step("split", started_at=1, finished_at=2),
        step("load[0]", task_id="load", map_index=0, status="failed", started_at=3, upstream=["split"]),
        step("load[1]", task_id="load", map_index=1, started_at=3, finished_at=4, upstream=["split"]),
        step("merge", status="upstream_failed", upstream=["load"]),
    ]
    p = plan(steps, "load[0]")
    assert set(p.redo) == {"load[0]", "merge"}
    assert set(p.keep) == {"split", "load[1]"}


def test_without_a_graph_time_order_decides_and_says_so() -> None:
    steps = [
        step("a", started_at=1, finished_at=2),
        step("b", status="failed", started_at=3, finished_at=4),
        step("c", started_at=5, finished_at=6),
        step("d", status="skipped"),
    ]
    p = plan(steps, "b")
    assert set(p.redo) == {"b", "c", "d"} and p.keep == ("a",)
    assert "no dependency graph recorded" in p.reason


def test_changed_inputs_make_it_not_replayable() -> None:
    events = [
        event("inputs_recorded", 0, data={"hash": "aaaa1111", "attempt": 1}),
        event("inputs_recorded", 50, data={"hash": "bbbb2222", "attempt": 2}),
    ]
    p = plan(GRAPH, "load", events)
    assert not p.replayable
    assert "inputs recorded for this run changed" in p.reason
    (e,) = p.evidence
    assert e.fields["hashes"] == ["aaaa1111", "bbbb2222"] and "attempt 1" in e.text and "attempt 2" in e.text


def test_same_inputs_recorded_twice_stay_replayable() -> None:
    events = [event("inputs_recorded", 0, data={"hash": "a"}), event("inputs_recorded", 9, data={"params_hash": "a"})]
    assert plan(GRAPH, "load", events).replayable


def test_step_inputs_that_changed_between_tries_count_too() -> None:
    events = [
        event("inputs_recorded", 1, "clean", 1, data={"hash": "x"}),
        event("inputs_recorded", 7, "clean", 2, data={"hash": "y"}),
    ]
    p = plan(GRAPH, "load", events)
    assert not p.replayable and "step clean" in p.evidence[0].text


def test_a_run_failing_outside_any_step_reruns_everything() -> None:
    p = plan(GRAPH[:2], None)
    assert p.replayable and set(p.redo) == {"extract", "clean"} and p.keep == ()


def test_orchestrator_says_how() -> None:
    assert "downstream" in plan(GRAPH, "load", orchestrator="airflow").how
    assert "unless their results are cached" in plan(GRAPH, "load", orchestrator="prefect").how


def test_no_plan_for_a_success() -> None:
    assert plan(GRAPH[:2], None, status="success") is None
