"""A loopback TCP proxy for fault tests: forward, cut every connection, refuse, or stall.

    with TcpProxy(target_port) as proxy:      # 127.0.0.1:proxy.port -> 127.0.0.1:target_port
        proxy.cut()        # close every open connection and refuse new ones (a server gone away)
        proxy.stall()      # accept and forward nothing (a server that never answers)
        proxy.slow(1.0)    # forward every chunk after a delay (a server that answers, slowly)
        proxy.heal()       # forward again

Threads only; every wait is bounded, and closing the proxy ends every thread.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType

_MODES = ("forward", "refuse", "stall", "slow")


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(128)
        self._server.settimeout(0.1)
        self.port: int = self._server.getsockname()[1]
        self.mode = "forward"
        self.delay = 0.0
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="tcpproxy", daemon=True)
        self._thread.start()

    # -- faults ---------------------------------------------------------------------------------
    def cut(self) -> None:
        """Close every connection through the proxy and refuse new ones."""
        self._set("refuse")
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            _close(c)

    def stall(self) -> None:
        """Accept connections, forward nothing either way (open ones hang too)."""
        self._set("stall")

    def slow(self, delay: float) -> None:
        """Forward every chunk, either way, `delay` seconds after it arrived."""
        self.delay = delay
        self._set("slow")

    def heal(self) -> None:
        self._set("forward")

    def _set(self, mode: str) -> None:
        assert mode in _MODES
        self.mode = mode

    # -- plumbing -------------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                continue
            self.accepted += 1
            if self.mode == "refuse":
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        src.settimeout(0.1)
        while not self._closed.is_set():
            try:
                data = src.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            while self.mode == "stall" and not self._closed.is_set():
                self._closed.wait(0.05)
            if self.mode == "slow":
                self._closed.wait(self.delay)
            try:
                dst.sendall(data)
            except OSError:
                break
        _close(src)
        _close(dst)

    def close(self) -> None:
        self._closed.set()
        self.cut()
        _close(self._server)
        self._thread.join(timeout=5)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


__all__ = ["TcpProxy"]
