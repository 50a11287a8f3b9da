"""What a Prefect user reads in Prefect's own UI: the artifacts on a failed flow run, end to end."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from rundossier.core.dossier import build_dossier
from rundossier.read.reader import step_trace

from .helpers import artifacts_of, flow_run_id, recorded_run, run_flow, steps_by_id


def _line(markdown: str, prefix: str) -> str:
    (line,) = [line for line in markdown.splitlines() if line.startswith(prefix)]
    return line


def test_the_failure_artifact_names_the_failing_task_not_a_try_that_was_retried(
    examples: Any, example_recorder: Any
) -> None:
    """A task fails twice then succeeds, then another task fails: the artifact blames the second one."""
    rec = example_recorder
    state = run_flow(examples.retried_then_failure)
    assert state.is_failed()
    run = recorded_run(rec, examples.retried_then_failure, state)
    by_task = {tries[0].task_id: tries for tries in steps_by_id(rec, run.run_id).values()}
    retried, (load,) = by_task["retried"], by_task["load"]
    assert [(s.try_number, s.status) for s in retried] == [(1, "failed"), (2, "failed"), (3, "success")]
    assert (run.root_step_id, run.error_type) == (load.step_id, "RuntimeError")

    arts = {a.key: a.data for a in artifacts_of(flow_run_id(state))}
    summary = arts["rundossier-retried-then-failure-failure"]
    headline = summary.splitlines()[0]
    assert load.step_id in headline and "RuntimeError: could not load batch 7" in headline, headline
    assert retried[0].step_id not in headline and "Timeout" not in headline, headline
    redo = _line(summary, "- redo:")
    assert load.step_id in redo and retried[0].step_id not in redo, redo
    # the same final facts as rundossier's own run page
    dossier = build_dossier(
        rec.store.get_run(run.run_id),
        rec.store.list_steps(run.run_id),
        rec.store.list_events(run.run_id),
        now=datetime.now(UTC),
    )
    assert dossier.failed_step == load.step_id and dossier.headline in headline


@pytest.mark.parametrize("name", ["chained_failure", "mapped_with_failure", "retried_then_failure", "async_failure"])
def test_failed_tasks_on_one_host_get_no_clock_skew_note(examples: Any, example_recorder: Any, name: str) -> None:
    """A try ends when its last line is written (one clock); Prefect's closing line is not among its last lines."""
    rec, fl = example_recorder, getattr(examples, name)
    state = run_flow(fl)
    run = recorded_run(rec, fl, state)
    steps = rec.store.list_steps(run.run_id)
    for s in steps:
        assert s.started_at is not None and s.finished_at is not None and s.started_at <= s.finished_at, s
        if s.last_output_at is not None:
            assert s.first_output_at >= s.started_at and s.last_output_at <= s.finished_at, s
    dossier = build_dossier(run, steps, rec.store.list_events(run.run_id), now=datetime.now(UTC))
    assert not [s for s in dossier.signals if s.code == "clock_skew"], dossier.signals
    failed = [s for s in steps if s.status == "failed"]
    assert failed
    for s in failed:
        text = step_trace(rec.store, rec.blobs, run.run_id, s.step_id, s.try_number).text
        assert "Task run failed with exception" in text and "Finished in state" not in text
