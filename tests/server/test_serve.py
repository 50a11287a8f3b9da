"""`rundossier serve` stops on SIGINT (Ctrl-C) and SIGTERM while browsers hold the live stream
open: the streams end, the process exits, and nothing but its own start line reaches stderr.

A real server in a subprocess on 127.0.0.1 and real streaming HTTP clients. The waits are
generous upper bounds that guard the test from hanging, not speed claims (see benchmarks/)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.s3server import free_port

#: a guard against a hang, far above the second or two a stop takes
EXIT_GUARD_S = 30.0


def _wait_until_serving(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"rundossier serve did not listen on {port}")


def _open_stream(port: int) -> socket.socket:
    """An SSE client that has received the stream's first event (so the response is in progress)."""
    client = socket.create_connection(("127.0.0.1", port), timeout=EXIT_GUARD_S)
    client.sendall(b"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
    received = b""
    while b"event: hello" not in received:
        chunk = client.recv(4096)
        assert chunk, f"the stream closed before its first event: {received!r}"
        received += chunk
    assert b"200 OK" in received.split(b"\r\n", 1)[0]
    return client


def _read_to_end(client: socket.socket) -> None:
    """Read until the server closes the connection (bounded by the socket's timeout)."""
    while client.recv(4096):
        pass


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_stops_quietly_with_open_streams(sig: signal.Signals, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "RUNDOSSIER_HOME": str(tmp_path / "home")}
    exe = Path(sys.executable).with_name("rundossier")
    proc = subprocess.Popen(
        [str(exe), "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    clients: list[socket.socket] = []
    try:
        _wait_until_serving(port, proc)
        clients = [_open_stream(port) for _ in range(3)]
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=EXIT_GUARD_S)
        for client in clients:  # every stream was ended by the server, not left hanging
            _read_to_end(client)
    finally:
        for client in clients:
            client.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    # SIGINT: exit 0 (stopped as asked); SIGTERM: the conventional death by that signal
    assert proc.returncode in ((0,) if sig == signal.SIGINT else (0, -signal.SIGTERM)), err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [line for line in lines if line.startswith("rundossier UI on http://127.0.0.1:")], err
    assert "Traceback" not in err and "CancelledError" not in err
