"""Security headers on every answer: a Content-Security-Policy without inline script, and the usual.

The page loads only its own files (no inline `<script>`, no `style="..."` attributes, no CDN):
even text that slipped past the UI's `h()` (which never parses HTML) could not run as script.
Framing is allowed from the same origin only, which is how Airflow shows the page: its UI frames
`/rundossier/` from the same server. FastAPI's `/docs` page is the one exception: it is
FastAPI's Swagger UI, which starts with an inline script and sets inline styles, so it gets a
policy that allows exactly that (nothing of the run history is shown there). Its script and
stylesheet are packaged files served by this app (fastapi-offline): nothing loads from elsewhere.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ]
)
#: FastAPI's Swagger UI (`/docs`): its bundle and stylesheet from this server, its inline start script
#: and the inline styles its components set, its icons as data: URLs
DOCS_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'self'",
    ]
)
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "SAMEORIGIN",  # browsers without frame-ancestors
    "Cross-Origin-Resource-Policy": "same-origin",  # no <script src> / <img src> reads from other sites
}


#: what other sites may embed: the logo Prefect's UI shows on the RunDossier block's catalog card
#: (an `<img>` on Prefect's origin, see `integrations.prefect.block.logo_url`); no run history
EMBEDDABLE_PATHS = ("/static/logo.png",)


def headers_for(path: str) -> dict[str, str]:
    """The security headers of an answer at `path` (relative to where the app is mounted)."""
    headers = {"Content-Security-Policy": DOCS_CSP if path in DOCS_PATHS else CSP, **SECURITY_HEADERS}
    if path in EMBEDDABLE_PATHS:
        headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return headers


class SecurityHeaders:
    """ASGI middleware adding `headers_for(path)` to every HTTP answer (a route's own value wins)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root = str(scope.get("root_path", ""))
        path = str(scope.get("path", ""))
        wanted = headers_for(path[len(root) :] if root and path.startswith(root) else path)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in wanted.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, sending)


__all__ = ["SecurityHeaders", "headers_for", "CSP", "DOCS_CSP", "EMBEDDABLE_PATHS", "SECURITY_HEADERS"]
