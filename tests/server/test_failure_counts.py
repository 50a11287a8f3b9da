"""The failures page and the runs list count the same failures: on one store (SQLite and
PostgreSQL), the group counts of a window add up to the failed and crashed runs the runs list
shows for it, crashes (a lost heartbeat) and failures reported as a message included."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rundossier.core.ids import run_id_at
from rundossier.record.recorder import RunHandle
from rundossier.retention.sweep import sweep
from rundossier.storage.db.leases import LOST_HEARTBEAT_FINGERPRINT, LOST_HEARTBEAT_TYPE
from tests.seeding import failed_run, history_run
from tests.server.conftest import Api

#: (the flows a group hits, its count) for each group
Groups = list[tuple[tuple[str, ...], int]]
Scenario = Callable[[Api], Groups]


def _crashed(api: Api, flow: str, ago: timedelta) -> str:
    """A run whose process died: running, its lease long past; the reaper marks it crashed."""
    when = datetime.now(UTC) - ago
    return api.store.upsert_run(
        {
            "run_id": run_id_at(when),
            "orchestrator": "python",
            "flow_id": flow,
            "run_key": f"crash-{when.isoformat()}",
            "status": "running",
            "started_at": when,
            "heartbeat_at": when,
            "lease_until": when + timedelta(seconds=30),
            "lease_holder": "host/1/token",
        }
    )


def _message_only(api: Api, flow: str, message: str, *, in_step: bool) -> str:
    run = api.rec.start_run(flow)
    if in_step:
        api.rec.start_step(run, "load").finish("failed", message)
        api.rec.finish_run(run, "failed")
    else:
        api.rec.finish_run(run, "failed", message)
    return run.run_id


def _failed_runs(api: Api, since: str) -> list[dict[str, object]]:
    r = api.client.get("/api/runs", params={"status": "failed,crashed", "since": since, "limit": 500})
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


def test_group_counts_add_up_to_the_failed_and_crashed_runs_of_the_window(api: Api) -> None:
    for _ in range(3):
        failed_run(api.rec)  # the same exception, three times: one group
    failed_run(api.rec, flow_id="customer_sync")
    _message_only(api, "billing", "quota exceeded for project 42", in_step=True)
    _message_only(api, "billing", "quota exceeded for project 43", in_step=False)
    crash = _crashed(api, "ml_train", timedelta(minutes=10))
    _crashed(api, "ml_train", timedelta(minutes=20))
    history_run(api.store, flow_id="nightly_etl")  # a success counts nowhere
    assert api.store.reap_expired().runs  # what the server's reaper does on its own
    assert api.store.get_run(crash).error_type == LOST_HEARTBEAT_TYPE

    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    runs = _failed_runs(api, since)
    body = api.client.get("/api/failures", params={"since": since, "limit": 500}).json()
    groups = body["items"]
    assert sum(g["count"] for g in groups) == len(runs) == 8
    assert sum(sum(g["trend"]) for g in groups) == len(runs)
    # each group's count is the runs list's count for its fingerprint
    for g in groups:
        by_print = api.client.get("/api/runs", params={"fingerprint": g["fingerprint"], "since": since}).json()
        assert len(by_print["items"]) == g["count"], g
    crashes = next(g for g in groups if g["fingerprint"] == LOST_HEARTBEAT_FINGERPRINT)
    assert crashes["count"] == 2 and crashes["flows"] == ["ml_train"] and crashes["failure_class"] == "killed"
    quota = [g for g in groups if g["flows"] == ["billing"]]
    # a message's numbers do not split its group (the step's and the run's message differ in where they are)
    assert sum(g["count"] for g in quota) == 2


# -- the rule, edge by edge: a group's count is the number of runs the runs list shows for its
# fingerprint with status failed or crashed in the window, whatever path the failure took.


class Boom(RuntimeError):
    pass


def _raise(message: str) -> None:
    raise Boom(message)


def _step_fails(run: RunHandle, step: str, try_number: int, message: str = "disk full on /data") -> None:
    h = run.start_step(step, try_number=try_number)
    try:
        _raise(message)
    except Boom as exc:
        h.finish("failed", exc)


def _two_failed_tries(api: Api) -> Groups:
    run = api.rec.start_run("etl")
    _step_fails(run, "load", 1)
    _step_fails(run, "load", 2)  # the retry fails the same way
    run.finish("failed")
    return [(("etl",), 1)]


def _two_failed_attempts(api: Api) -> Groups:
    """An orchestrator runs the whole run again (attempt 2, same run key): still one run."""
    for attempt in (1, 2):
        run = api.rec.start_run("etl", "nightly-2026-03-01", attempt=attempt)
        _step_fails(run, "load", 1)
        run.finish("failed")
    return [(("etl",), 1)]


def _recovered_retry(api: Api) -> Groups:
    run = api.rec.start_run("etl")
    _step_fails(run, "load", 1)
    run.start_step("load", try_number=2).finish("success")
    run.finish("success")
    return []


def _removed_by_retention(api: Api) -> Groups:
    for _ in range(3):
        run = api.rec.start_run("etl")
        _step_fails(run, "load", 1)
        run.finish("failed")
    api.store.set_policy("etl", keep_days=None, keep_last=1, blob_days=None)
    report = sweep(api.store, api.blobs)
    assert report.complete and report.totals()["runs_removed"] == 2
    return [(("etl",), 1)]


def _killed(api: Api) -> Groups:
    """A process killed with SIGKILL inside a step: no exception, no end; the reaper marks the run crashed."""
    child = (
        "import os, signal, sys\n"
        "from rundossier import Recorder\n"
        "from rundossier.settings import Settings\n"
        "where = {'home': sys.argv[1], 'db_url': sys.argv[2], 'storage_url': sys.argv[3]}\n"
        "rec = Recorder(Settings.resolve(explicit=where))\n"
        "run = rec.start_run('ml_train')\n"
        "run.start_step('fit')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    s = api.settings
    done = subprocess.run([sys.executable, "-c", child, str(s.home), s.db_url, s.storage_url], timeout=120, check=False)
    assert done.returncode == -signal.SIGKILL
    later = datetime.now(UTC) + timedelta(hours=1)  # past any lease the child held
    assert api.store.reap_expired(now=later).runs
    return [(("ml_train",), 1)]


def _messages_only(api: Api) -> Groups:
    run = api.rec.start_run("billing")
    run.start_step("charge").finish("failed", "quota exceeded")
    run.finish("failed")
    other = api.rec.start_run("billing")
    other.finish("crashed", "exit code 137")  # an orchestrator's word only, at the run
    return [(("billing",), 1), (("billing",), 1)]  # two messages, two groups


def _two_flows(api: Api) -> Groups:
    for flow in ("sales", "finance", "sales"):
        run = api.rec.start_run(flow)
        _step_fails(run, "load", 1)
        run.finish("failed")
    return [(("finance", "sales"), 3)]  # one group, three runs


def _shape(groups: list[dict[str, Any]]) -> Groups:
    return sorted((tuple(g["flows"]), g["count"]) for g in groups)


def _listed(api: Api, **params: str) -> list[dict[str, Any]]:
    """Every run the runs list shows for these filters (all its pages)."""
    items: list[dict[str, Any]] = []
    more: dict[str, str] = {}
    while True:
        r = api.client.get("/api/runs", params={**params, "limit": 500, **more})
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        if not page["next_cursor"]:
            return items
        more = {"cursor": page["next_cursor"]}


def _groups(api: Api, **params: str) -> dict[str, Any]:
    r = api.client.get("/api/failures", params={**params, "limit": 500})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "scenario",
    [
        _two_failed_tries,
        _two_failed_attempts,
        _recovered_retry,
        _removed_by_retention,
        _killed,
        _messages_only,
        _two_flows,
    ],
)
def test_each_groups_count_is_the_count_of_the_runs_its_link_lists(api: Api, scenario: Scenario) -> None:
    expected = scenario(api)
    since = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    for window in ({}, {"since": since}):
        body = _groups(api, **window)
        assert _shape(body["items"]) == sorted(expected)
        # the link the Failures page gives a group: its fingerprint, failed or crashed, from the counted day
        failed = {"status": "failed,crashed"}
        if body["counted_since"]:
            failed["since"] = body["counted_since"]
        assert sum(g["count"] for g in body["items"]) == len(_listed(api, **failed))
        for g in body["items"]:
            assert len(_listed(api, fingerprint=g["fingerprint"], **failed)) == g["count"], g
            if window:
                assert sum(g["trend"]) == g["count"]
            for flow in g["flows"]:  # and filtered to one flow
                (one,) = [
                    x for x in _groups(api, flow_id=flow, **window)["items"] if x["fingerprint"] == g["fingerprint"]
                ]
                assert len(_listed(api, fingerprint=g["fingerprint"], flow_id=flow, **failed)) == one["count"]
