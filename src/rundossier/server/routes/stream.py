"""Live updates: server-sent events of runs as they are written, from any process.

The stream polls the store for runs whose `updated_at` moved (an indexed query), so it sees
writes from every worker, not just this process. Each change is an `event: run` with the run's
JSON; a comment line every 15 s keeps proxies from closing an idle stream. The stream ends when
the client goes away or the server is stopping (`app.state.stopping`, set by `rundossier serve`
on Ctrl-C or SIGTERM), so a browser holding it open never holds the server up.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from rundossier.read.models import RunOut
from rundossier.server.deps import AccessDep, ReaderDep

router = APIRouter(prefix="/api", tags=["live"])

POLL_S = 1.0
#: how often a waiting stream looks whether the server is stopping
TICK_S = 0.1
HEARTBEAT_S = 15.0


EVENTS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "`event: run` with a run's JSON (as in the runs list) per change",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


@router.get(
    "/stream",
    summary="Server-sent events: run changes as they happen",
    response_class=StreamingResponse,
    responses=EVENTS,
)
async def stream(
    request: Request,
    reader: ReaderDep,
    acc: AccessDep,
    flow_id: Annotated[str | None, Query(max_length=250)] = None,
    poll: Annotated[float, Query(ge=0.1, le=30)] = POLL_S,
    max_seconds: Annotated[float | None, Query(ge=0.1, le=86400, description="close after this long")] = None,
) -> StreamingResponse:
    readable = acc.readable_flows(request)
    stopping: threading.Event = request.app.state.stopping

    async def events() -> AsyncIterator[str]:
        since = datetime.now(UTC) - timedelta(seconds=2)
        started = asyncio.get_running_loop().time()
        quiet = 0.0
        yield f"retry: 3000\nevent: hello\ndata: {json.dumps({'since': since.isoformat()})}\n\n"
        while not stopping.is_set():
            if await request.is_disconnected():
                return
            if max_seconds is not None and asyncio.get_running_loop().time() - started > max_seconds:
                return
            runs = await asyncio.to_thread(reader.runs_updated_since, since)
            for run in runs:
                since = max(since, run.updated_at or since)
                if flow_id and run.flow_id != flow_id:
                    continue
                if readable is not None and run.flow_id not in readable:
                    continue
                yield f"event: run\nid: {run.run_id}\ndata: {json.dumps(RunOut.of(run).model_dump(mode='json'))}\n\n"
                quiet = 0.0
            if not await _pause(poll, stopping):
                return
            quiet += poll
            if quiet >= HEARTBEAT_S:
                quiet = 0.0
                yield ": keep-alive\n\n"

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _pause(seconds: float, stopping: threading.Event) -> bool:
    """Sleep `seconds` in short ticks; False as soon as the server is stopping."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not stopping.is_set():
        left = end - loop.time()
        if left <= 0:
            return True
        await asyncio.sleep(min(TICK_S, left))
    return False


__all__ = ["router"]
