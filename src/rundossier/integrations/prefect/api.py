"""The few reads and writes rundossier makes on Prefect's API, each bounded by a request timeout.

A client of our own (never the engine's client of the run context, which another thread uses):
`get_client(sync_client=True, httpx_settings=...)` builds a fresh one when the settings differ.
Arguments the server validates strictly (`limit`, `sort`) are always passed.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any
from uuid import UUID

PAGE = 200
MAX_PAGES = 50  # 10,000 task runs per flow run read back at most
ARTIFACT_KEY_MAX = 64


@contextlib.contextmanager
def client(timeout_s: float) -> Iterator[Any]:
    """A new synchronous Prefect client whose requests each end within `timeout_s`.

    Prefect's client retries a request that timed out (`PREFECT_CLIENT_MAX_RETRIES`, 5 by default,
    with backoff): a 2 s timeout then takes over a minute against an API that does not answer,
    longer than a hook or the exit of a script may wait. So ours does not retry.
    """
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    with temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: 0}):
        with get_client(sync_client=True, httpx_settings={"timeout": httpx.Timeout(timeout_s)}) as c:
            yield c


def flow_task_runs(c: Any, flow_run_id: str | UUID) -> list[Any]:
    """Every task run of a flow run (paged)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    flt = FlowRunFilter(id=FlowRunFilterId(any_=[UUID(str(flow_run_id))]))
    out: list[Any] = []
    for page in range(MAX_PAGES):
        batch = c.read_task_runs(
            flow_run_filter=flt, sort=TaskRunSort.EXPECTED_START_TIME_ASC, limit=PAGE, offset=page * PAGE
        )
        out.extend(batch)
        if len(batch) < PAGE:
            break
    return out


def flow_artifacts(c: Any, flow_run_id: str | UUID) -> list[Any]:
    """The artifacts (`create_*_artifact`) of a flow run's task runs and of the flow run itself (paged)."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.client.schemas.sorting import ArtifactSort

    flt = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(str(flow_run_id))]))
    out: list[Any] = []
    for page in range(MAX_PAGES):
        batch = c.read_artifacts(artifact_filter=flt, sort=ArtifactSort.CREATED_DESC, limit=PAGE, offset=page * PAGE)
        out.extend(batch)
        if len(batch) < PAGE:
            break
    return out


def task_run_states(c: Any, task_run_id: str | UUID) -> list[Any]:
    return list(c.read_task_run_states(UUID(str(task_run_id))))


def parent_flow_run_id(c: Any, parent_task_run_id: str | UUID) -> str | None:
    """The flow run that holds the task run standing for a subflow call."""
    task_run = c.read_task_run(UUID(str(parent_task_run_id)))
    fid = getattr(task_run, "flow_run_id", None)
    return str(fid) if fid else None


def flow_name_of_run(c: Any, flow_run_id: str | UUID) -> str:
    flow_run = c.read_flow_run(UUID(str(flow_run_id)))
    return str(c.read_flow(flow_run.flow_id).name)


def flow_run(c: Any, flow_run_id: str | UUID) -> Any:
    return c.read_flow_run(UUID(str(flow_run_id)))


def create_link(
    c: Any, flow_run_id: str | UUID, link: str, link_text: str, *, key: str | None, description: str
) -> Any:
    """A link artifact on a flow run: Prefect's own `LinkArtifact` (what `create_link_artifact`
    makes), sent with this client and the flow run given (a hook may have no run context)."""
    from prefect.artifacts import LinkArtifact
    from prefect.client.schemas.actions import ArtifactCreate

    art = LinkArtifact(link=link, link_text=link_text, key=key, description=description)
    return c.create_artifact(
        artifact=ArtifactCreate(
            key=art.key,
            type=art.type,
            description=art.description,
            data=art.format(_sync=True),
            flow_run_id=UUID(str(flow_run_id)),
        )
    )


def create_markdown(c: Any, flow_run_id: str | UUID, markdown: str, *, key: str | None, description: str) -> Any:
    """A Markdown artifact on a flow run."""
    from prefect.client.schemas.actions import ArtifactCreate

    return c.create_artifact(
        artifact=ArtifactCreate(
            key=key, type="markdown", description=description, data=markdown, flow_run_id=UUID(str(flow_run_id))
        )
    )


def artifact_key(*parts: str) -> str:
    """An artifact key Prefect accepts: lowercase letters, digits and dashes."""
    key = re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")
    return key[:ARTIFACT_KEY_MAX].rstrip("-") or "rundossier"


__all__ = [
    "artifact_key",
    "client",
    "create_link",
    "create_markdown",
    "flow_run",
    "flow_name_of_run",
    "flow_task_runs",
    "parent_flow_run_id",
    "task_run_states",
]
