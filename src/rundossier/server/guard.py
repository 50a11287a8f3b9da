"""What the server refuses before any route runs: a foreign Host, a cross-origin write, a NUL.

- **Host** (DNS rebinding): a page on `evil.example` whose name the attacker re-points at
  127.0.0.1 is same-origin with itself, so the browser lets it read this server's answers; only
  the `Host: evil.example` it sends gives it away. A server without a token accepts only the names
  it is served under: `127.0.0.1`, `localhost`, `[::1]` (any port), plus the names it was given
  (`serve --allowed-host`, `RUNDOSSIER_ALLOWED_HOSTS`). With a token the check is off: a rebound
  page has neither the token nor the cookie, which belongs to the real name.
- **Cross-origin writes** (CSRF): a state-changing request (anything but GET, HEAD, OPTIONS) is
  refused when the browser says it comes from another origin: `Sec-Fetch-Site` other than
  `same-origin`/`none`, or, from browsers that do not send that, an `Origin` whose host differs
  from `Host`. Scripts and curl send neither and pass (the token, where set, guards them).
- **NUL** in the path or a query value: no stored id or text holds one (PostgreSQL refuses them),
  so the path is answered 404 and the query value 422 before either reaches a query.

The decisions are pure functions; `RequestGuard` is the ASGI middleware that applies them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from rundossier.server.errors import error_response

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
ANY_HOST = "*"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SAME_ORIGIN_FETCH = frozenset({"same-origin", "none"})  # "none": typed in the address bar, a bookmark

_HOST = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9._-]+))(?::(?P<port>[0-9]{1,5}))?")


def host_name(header: str | None) -> str | None:
    """The name in a Host header, lowercased, without port or brackets (`[::1]:8765` -> `::1`);
    None when the header is missing or is not a plain host[:port]."""
    if not header:
        return None
    m = _HOST.fullmatch(header.strip())
    if m is None:
        return None
    return (m.group("v6") or m.group("name") or "").lower().rstrip(".") or None


def allowed_host_names(extra: Iterable[str] = ()) -> frozenset[str]:
    """Loopback names plus `extra` (names or addresses, with or without a port; `*` for any)."""
    names = set(LOOPBACK_HOSTS)
    for item in extra:
        item = item.strip()
        if not item:
            continue
        if item == ANY_HOST:
            names.add(ANY_HOST)
            continue
        name = host_name(item) or host_name(f"[{item}]")  # a bare IPv6 address
        if name is None:
            raise ValueError(f"{item!r} is not a host name or address (use e.g. rundossier.internal or 10.0.0.5)")
        names.add(name)
    return frozenset(names)


def host_refusal(header: str | None, allowed: frozenset[str]) -> str | None:
    """Why this Host is refused, or None when it is one the server answers to."""
    if ANY_HOST in allowed:
        return None
    name = host_name(header)
    if name is not None and name in allowed:
        return None
    shown = ", ".join(f"[{n}]" if ":" in n else n for n in sorted(allowed))
    return (
        f"Host {header!r} is not a name this server answers to ({shown}): a page on another site may be "
        "trying to reach it through its own name (DNS rebinding). To serve under another name, start it "
        "with `rundossier serve --allowed-host NAME` or set RUNDOSSIER_ALLOWED_HOSTS=NAME,..."
    )


def cross_origin_refusal(method: str, host: str | None, origin: str | None, fetch_site: str | None) -> str | None:
    """Why a state-changing request from another origin is refused, or None to let it through."""
    if method.upper() in SAFE_METHODS:
        return None
    if fetch_site is not None:
        if fetch_site.strip().lower() in SAME_ORIGIN_FETCH:
            return None
        return (
            f"{method} refused: the browser sent it from another site (Sec-Fetch-Site: {fetch_site}); "
            "changes are accepted from this server's own page or from scripts, not from other pages"
        )
    if origin is None:
        return None  # not a browser (curl, scripts): nothing to compare
    netloc = urlsplit(origin).netloc.lower() if origin != "null" else ""
    if netloc and host is not None and netloc == host.strip().lower():
        return None
    return (
        f"{method} refused: it comes from {origin!r}, not from this server ({host!r}); changes are "
        "accepted from this server's own page or from scripts, not from other pages"
    )


def nul_refusal(path: str, query_string: bytes) -> tuple[int, str, str] | None:
    """The answer to a request whose path (404: no id holds one) or query (422) has a NUL, or None."""
    if "\x00" in path:
        return 404, "not_found", "nothing here has a NUL character in its address (no run, step or flow id holds one)"
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            why = f"query parameter {name!r} contains a NUL character, which no stored value holds"
            return 422, "invalid_request", why
    return None


class RequestGuard:
    """ASGI middleware applying the checks above; refusals use the one error shape.

    `allowed_hosts` None turns the Host check off (a server with a token, or inside Airflow)."""

    def __init__(self, app: ASGIApp, allowed_hosts: frozenset[str] | None = None) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # the app has no websockets; lifespan passes
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        host = headers.get("host")
        refusal: tuple[int, str, str] | None = None
        if self.allowed_hosts is not None and (why := host_refusal(host, self.allowed_hosts)):
            refusal = (400, "host_not_allowed", why)
        elif why := cross_origin_refusal(scope["method"], host, headers.get("origin"), headers.get("sec-fetch-site")):
            refusal = (403, "cross_origin_refused", why)
        else:
            refusal = nul_refusal(scope.get("path", ""), scope.get("query_string", b""))
        if refusal is None:
            await self.app(scope, receive, send)
        else:
            await error_response(*refusal)(scope, receive, send)


__all__ = [
    "RequestGuard",
    "LOOPBACK_HOSTS",
    "allowed_host_names",
    "host_name",
    "host_refusal",
    "cross_origin_refusal",
    "nul_refusal",
]
