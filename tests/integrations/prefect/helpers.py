"""Helpers for the Prefect tests: run a flow, find its recorded run, read its artifacts back."""

from __future__ import annotations

import asyncio
import inspect
import re
from typing import Any
from uuid import UUID

from rundossier.prefect import RunDossier


def run_flow(fl: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a flow (sync or async) and return its final state; wait for rundossier's background work."""
    if inspect.iscoroutinefunction(fl.fn):
        state = asyncio.run(fl(*args, return_state=True, **kwargs))
    else:
        state = fl(*args, return_state=True, **kwargs)
    assert RunDossier.wait(60), "rundossier's background work did not finish"
    return state


def flow_run_id(state: Any) -> str:
    return str(state.state_details.flow_run_id)


def recorded_run(rec: Any, fl: Any, state: Any) -> Any:
    row = rec.store.find_run("prefect", fl.name, flow_run_id(state))
    assert row is not None, f"flow run {flow_run_id(state)} of {fl.name} was not recorded"
    return row


def steps_by_id(rec: Any, run_id: str) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for step in rec.store.list_steps(run_id):
        out.setdefault(step.step_id, []).append(step)
    for tries in out.values():
        tries.sort(key=lambda s: s.try_number)
    return out


def artifacts_of(flow_run: str) -> list[Any]:
    """The artifacts of a flow run, read back through the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as c:
        return c.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run)])),
            sort=ArtifactSort.ID_DESC,
            limit=50,
        )


def markdown_link(data: str) -> str | None:
    m = re.search(r"\]\((?P<url>[^)]+)\)", data)
    return m.group("url") if m else None
