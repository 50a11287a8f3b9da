"""Every error the API returns has one shape: {"error": {"type": ..., "message": ...}}.

Only rundossier's own errors choose their status: `InvalidInput` (and FastAPI's validation of
declared parameters) is 422, a missing run or trace 404, an expired one 410, a store or storage
that does not answer 503, a corrupted blob 500 naming it. Any other exception is a bug: it answers
500 in the same shape with an error id, and the server log has the traceback under that id. (A
`ValueError` from deep inside a handler is not the caller's fault, so it is no longer a 422.)
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rundossier.errors import (
    BlobCorrupt,
    ConfigError,
    InvalidInput,
    RundossierError,
    RunNotFound,
    SchemaOutdated,
    StorageError,
    StoreError,
    TraceExpired,
    TraceNotFound,
)

log = logging.getLogger("rundossier")

STATUS_FOR: list[tuple[type[BaseException], int, str]] = [
    (InvalidInput, 422, "invalid_request"),
    (RunNotFound, 404, "run_not_found"),
    (TraceExpired, 410, "trace_expired"),
    (TraceNotFound, 404, "trace_not_found"),
    (ConfigError, 500, "config_error"),
    (BlobCorrupt, 500, "blob_corrupt"),
    (StorageError, 503, "storage_unavailable"),
    (SchemaOutdated, 503, "schema_outdated"),
    (StoreError, 503, "database_unavailable"),
    (RundossierError, 500, "error"),
]
HTTP_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    410: "gone",
    422: "invalid_request",
}


#: the JSON Schema of the one error shape (some errors add fields beside `error`, e.g. a
#: stopped sweep's `report`)
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
#: an error answer is JSON, also on routes whose success is text/plain (a trace download)
ERROR_CONTENT = {"application/json": {"schema": ERROR_SCHEMA}}


def error_doc(description: str) -> dict[str, Any]:
    """An OpenAPI response entry for an error answer."""
    return {"description": description, "content": ERROR_CONTENT}


#: documented on every operation: what any error answer looks like (also replaces FastAPI's own 422)
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: error_doc("a parameter is outside what the API accepts"),
    "default": error_doc("an error, in the one error shape"),
}


def error_body(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}


def error_response(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(kind, message), status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(RundossierError)
    async def _ours(request: Request, exc: RundossierError) -> JSONResponse:
        for cls, status, kind in STATUS_FOR:
            if isinstance(exc, cls):
                return error_response(status, kind, str(exc))
        return error_response(500, "error", str(exc))  # pragma: no cover

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such route: {request.url.path}"
        return error_response(
            exc.status_code, HTTP_TYPES.get(exc.status_code, "error"), message, getattr(exc, "headers", None)
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body"))
            parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid")))
        return error_response(422, "invalid_request", "; ".join(parts) or "invalid request")


class Unexpected:
    """ASGI middleware: an exception no handler claimed becomes a 500 in the error shape with an
    error id, logged once with its traceback on the `rundossier` logger under that id.

    This is the HTTP host boundary, so it catches `Exception`: the bug is reported (log and id)
    rather than hidden, and the client still gets the one error shape. When the response had
    already started (a streamed download), the connection is cut after the log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:  # noqa: BLE001 - the HTTP boundary: logged with an id, answered in shape
            error_id = uuid.uuid4().hex[:16]
            log.error(
                "rundossier: %s %s failed with an unexpected %s (error id %s)",
                scope.get("method", "?"),
                scope.get("path", "?"),
                type(exc).__name__,
                error_id,
                exc_info=exc,
            )
            if started:
                return
            response = error_response(
                500,
                "internal_error",
                f"rundossier failed unexpectedly ({type(exc).__name__}); the server log has the traceback "
                f"under error id {error_id} (please include it when you report this)",
            )
            response.headers["X-Error-Id"] = error_id
            await response(scope, receive, send)


__all__ = ["install", "error_body", "error_response", "error_doc", "ERROR_RESPONSES", "Unexpected", "STATUS_FOR"]
