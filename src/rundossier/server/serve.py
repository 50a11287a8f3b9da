"""Serving the app with uvicorn until Ctrl-C or SIGTERM: stopped within a second or two, quietly,
even while browsers hold the live stream open.

uvicorn stops accepting connections on the first signal, then waits for the open responses to
finish; a server-sent events stream never finishes by itself. So the first signal also sets the
app's `state.stopping`, which ends every stream (`routes.stream`) at its next tick, and
`timeout_graceful_shutdown` bounds the wait for any other answer still being written.
"""

from __future__ import annotations

import threading
from types import FrameType

import uvicorn
from fastapi import FastAPI

#: seconds uvicorn waits for answers in progress after a signal before it cancels them
GRACE_S = 1


class _Server(uvicorn.Server):
    """uvicorn's server that also tells the app it is stopping when a signal arrives."""

    def __init__(self, config: uvicorn.Config, stopping: threading.Event) -> None:
        super().__init__(config)
        self.stopping = stopping

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.stopping.set()
        super().handle_exit(sig, frame)


def serve(app: FastAPI, *, host: str, port: int) -> None:
    """Serve `app` (from `create_app`) on host:port until SIGINT or SIGTERM."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=GRACE_S)
    try:
        _Server(config, app.state.stopping).run()
    except KeyboardInterrupt:  # a second Ctrl-C while stopping: uvicorn re-raises it at the end
        pass


__all__ = ["serve", "GRACE_S"]
