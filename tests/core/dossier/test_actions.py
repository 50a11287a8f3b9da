"""Next actions: exact orchestrator commands, what to inspect, what to compare with."""

from __future__ import annotations

import json
import shlex

import pytest

from rundossier.core.dossier.actions import airflow_logical_date, inspect_actions, retry_actions
from rundossier.core.dossier.model import Material
from tests.core.dossier.streams import event, run, step


def test_airflow_cli_clear_for_a_scheduled_run() -> None:
    r = run(orchestrator="airflow", flow_id="nightly_etl", run_key="scheduled__2026-01-01T00:00:00+00:00")
    s = step("load.part", task_id="load.part", status="failed")
    cli, rest = retry_actions(r, s)
    assert cli.command == (
        "airflow tasks clear nightly_etl --task-regex '^load\\.part$' "
        "--start-date 2026-01-01T00:00:00+00:00 --end-date 2026-01-01T00:00:00+00:00 --downstream --yes"
    )
    argv = shlex.split(rest.command)
    assert argv[:3] == ["curl", "-X", "POST"]
    assert argv[3] == "$AIRFLOW_URL/api/v2/dags/nightly_etl/clearTaskInstances"
    body = json.loads(argv[argv.index("-d") + 1])
    assert body == {
        "dag_run_id": "scheduled__2026-01-01T00:00:00+00:00",
        "include_downstream": True,
        "only_failed": False,
        "dry_run": False,
        "task_ids": ["load.part"],
    }


def test_airflow_mapped_task_targets_its_map_index_over_rest() -> None:
    r = run(orchestrator="airflow", run_key="manual__2026-01-01T10:00:00+00:00")
    s = step("load[3]", task_id="load", map_index=3, status="failed")
    cli, rest = retry_actions(r, s)
    assert "--task-regex '^load$'" in cli.command and "every map index" in cli.detail
    body = json.loads(shlex.split(rest.command)[-1])
    assert body["task_ids"] == [["load", 3]]


def test_airflow_without_a_logical_date_offers_only_the_exact_rest_call() -> None:
    r = run(orchestrator="airflow", run_key="my custom run 'id'")
    (rest,) = retry_actions(r, step("load", status="failed"))
    assert "cannot target it" in rest.detail
    body = json.loads(shlex.split(rest.command)[-1])  # the quoting survives odd run ids
    assert body["dag_run_id"] == "my custom run 'id'"


def test_airflow_dag_ids_are_quoted_in_paths() -> None:
    r = run(orchestrator="airflow", flow_id="etl/with space", run_key="x")
    (rest,) = retry_actions(r, None)
    assert "/dags/etl%2Fwith%20space/clearTaskInstances" in rest.command
    assert json.loads(shlex.split(rest.command)[-1])["only_failed"] is True


@pytest.mark.parametrize(
    ("tags", "run_key", "expected"),
    [
        ({"logical_date": "2026-02-03T00:00:00Z"}, "manual__x", ("2026-02-03T00:00:00Z", "tag logical_date")),
        (None, "backfill__2026-01-01T00:00:00+00:00", ("2026-01-01T00:00:00+00:00", "the run id")),
        (None, "manual__not-a-date", (None, None)),
        ({"logical_date": 5}, "x", (None, None)),
    ],
)
def test_airflow_logical_date(tags, run_key, expected) -> None:
    assert airflow_logical_date(run(orchestrator="airflow", run_key=run_key, tags=tags)) == expected


def test_prefect_retry_is_the_flow_run_retry() -> None:
    r = run(orchestrator="prefect", run_key="0b6b6c3e-7d0e-4a53-9a55-8f0b3b0c2f11")
    (a,) = retry_actions(r, step("load", status="failed"))
    assert a.command == "prefect flow-run retry 0b6b6c3e-7d0e-4a53-9a55-8f0b3b0c2f11"
    assert "--entrypoint" in a.detail


def test_plain_python_has_no_command_to_invent() -> None:
    (a,) = retry_actions(run(), step("load", status="failed"))
    assert a.command is None and "your own code" in a.detail


def test_inspect_points_at_trace_log_and_artifacts() -> None:
    r = run()
    s = step("load step", status="failed", try_number=2)
    material = [Material("trace", "stored", "", "file:///t"), Material("log", "stored", "3 lines")]
    arts = [event("artifact_written", 10, "extract", 1, data={"uri": "s3://b/x.parquet"})]
    acts = inspect_actions(r, s, material, arts)
    cmds = [a.command for a in acts]
    assert f"rundossier trace {r.run_id} --step 'load step' --try 2" in cmds
    assert f"GET /api/runs/{r.run_id}/steps/load%20step/logs?try=2" in cmds
    assert any(a.detail == "s3://b/x.parquet" for a in acts)


def test_inspect_says_why_there_is_nothing_to_read() -> None:
    material = [Material("trace", "expired", "expired by retention on 2026-01-02"), Material("log", "none", "none")]
    acts = inspect_actions(run(), step("load", status="failed"), material, [])
    assert [a.command for a in acts] == [None, None]
    assert acts[0].detail.startswith("expired by retention")
