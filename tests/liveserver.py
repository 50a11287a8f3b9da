"""Test helper: serve an ASGI app with a real uvicorn on 127.0.0.1 (a free port) in a thread.

    with LiveServer(create_app(settings)) as server:
        httpx.get(server.url + "/healthz")

Startup waits in a bounded loop; leaving the block stops the server and joins its thread.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from tests.s3server import free_port

START_TIMEOUT_S = 15.0


class LiveServer:
    def __init__(self, app: Any, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{self.port}", daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError(f"uvicorn on port {self.port} exited during startup")
            if time.monotonic() > deadline:
                self.server.should_exit = True
                raise RuntimeError(f"uvicorn on port {self.port} did not start within {START_TIMEOUT_S}s")
            time.sleep(0.02)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.should_exit = True
        self.server.force_exit = True  # open SSE streams must not hold the shutdown
        self.thread.join(timeout=10)


__all__ = ["LiveServer"]
