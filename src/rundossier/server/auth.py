"""The standalone server's token: `Authorization: Bearer <token>`, or the `rundossier_token`
cookie the page sets once the user has entered it. Airflow uses its own auth instead.

The comparison takes the same time whatever the guess: both sides are hashed to 32 bytes and
compared with `hmac.compare_digest`, so neither the position of the first wrong character nor
the token's length shows in the response time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

from fastapi import FastAPI, Request, Response

from rundossier.errors import ConfigError
from rundossier.server.errors import error_response

COOKIE = "rundossier_token"
#: reachable without the token: the page itself asks for it
OPEN_PATHS = ("/", "/healthz", "/favicon.ico")
OPEN_PREFIXES = ("/static/",)


class TokenAuth:
    def __init__(self, token: str) -> None:
        if len(token) < 16:
            raise ConfigError(
                "RUNDOSSIER_API_TOKEN must be at least 16 characters; make one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(24))'"
            )
        self._digest = _digest(token)

    def allowed(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return self._matches(header[7:].strip())
        cookie = request.cookies.get(COOKIE, "")
        # the page stores the token percent-encoded (cookie values cannot hold every character)
        return self._matches(cookie) or self._matches(unquote(cookie))

    def _matches(self, given: str) -> bool:
        return hmac.compare_digest(_digest(given), self._digest) and bool(given)

    def install(self, app: FastAPI) -> None:
        @app.middleware("http")
        async def _token(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
            path = request.url.path[len(request.scope.get("root_path", "")) :] or "/"
            if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES) or self.allowed(request):
                return await call_next(request)
            return error_response(
                401,
                "unauthorized",
                "this server needs its token: send `Authorization: Bearer <RUNDOSSIER_API_TOKEN>` "
                "or enter it in the page",
                headers={"WWW-Authenticate": "Bearer"},
            )


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


__all__ = ["TokenAuth", "COOKIE"]
