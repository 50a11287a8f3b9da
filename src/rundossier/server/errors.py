"""Every error the API returns has one shape: {"error": {"type": ..., "message": ...}}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import ConfigError, RundossierError, RunNotFound, StorageError, StoreError, TraceExpired, TraceNotFound

STATUS_FOR: list[tuple[type[BaseException], int, str]] = [
    (RunNotFound, 404, "run_not_found"),
    (TraceExpired, 410, "trace_expired"),
    (TraceNotFound, 404, "trace_not_found"),
    (ConfigError, 500, "config_error"),
    (StorageError, 503, "storage_unavailable"),
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

    @app.exception_handler(ValueError)
    async def _value(request: Request, exc: ValueError) -> JSONResponse:
        return error_response(422, "invalid_request", str(exc))


__all__ = ["install", "error_body", "error_response"]
