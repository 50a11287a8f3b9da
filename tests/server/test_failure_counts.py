"""The failures page and the runs list count the same failures: on one store (SQLite and
PostgreSQL), the group counts of a window add up to the failed and crashed runs the runs list
shows for it, crashes (a lost heartbeat) and failures reported as a message included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rundossier.core.ids import run_id_at
from rundossier.storage.db.leases import LOST_HEARTBEAT_FINGERPRINT, LOST_HEARTBEAT_TYPE
from tests.seeding import failed_run, history_run
from tests.server.conftest import Api


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
