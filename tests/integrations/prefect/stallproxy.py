"""A loopback HTTP proxy in front of Prefect's API that never answers some requests.

It forwards each request on its own upstream connection (asking both sides to close it after the
response, so nothing has to parse a response's framing) and relays websocket upgrades (Prefect's
events) byte for byte. A request whose path starts with one of `stall` is read and never answered:
an API that accepts and then hangs, the way a stuck server or a dead load balancer behaves.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable

HEAD_MAX = 64 * 1024


class StallProxy:
    def __init__(self, upstream: tuple[str, int], stall: Iterable[str]) -> None:
        self.upstream = upstream
        self.stall = tuple(stall)
        self.stalled = 0
        self.forwarded = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="stall-proxy", daemon=True)

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def __enter__(self) -> StallProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            head, rest = _read_head(client)
            if not head:
                return
            lines = head.split(b"\r\n")
            path = lines[0].split(b" ")[1].decode("latin-1") if len(lines[0].split(b" ")) > 1 else ""
            if path.startswith(self.stall):
                self.stalled += 1
                self._stop.wait()  # read, never answered
                return
            headers = [line for line in lines[1:] if line]
            upgrade = any(line.lower().startswith(b"upgrade:") for line in headers)
            sizes = [int(line.split(b":", 1)[1]) for line in headers if line.lower().startswith(b"content-length:")]
            length = sizes[0] if sizes else 0
            while len(rest) < length:
                chunk = client.recv(65536)
                if not chunk:
                    return
                rest += chunk
            if not upgrade:
                headers = [line for line in headers if not line.lower().startswith(b"connection:")]
                headers.append(b"Connection: close")
            self.forwarded += 1
            with socket.create_connection(self.upstream, timeout=None) as up:
                up.sendall(b"\r\n".join([lines[0], *headers]) + b"\r\n\r\n" + rest)
                if upgrade:
                    threading.Thread(target=_pipe, args=(client, up), daemon=True).start()
                _pipe(up, client)


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk or len(data) > HEAD_MAX:
            return b"", b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while chunk := src.recv(65536):
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
