"""The web UI: one page and its static assets, shipped in the wheel (no CDN, no build step)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

STATIC = Path(__file__).with_name("static")


class Assets(StaticFiles):
    """Static files the browser revalidates (ETag) on each load: an upgrade never runs stale modules."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response: Response = await super().get_response(path, scope)
        response.headers.setdefault("Cache-Control", "no-cache")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response


def install(app: FastAPI) -> None:
    index = STATIC / "index.html"

    @app.get("/", include_in_schema=False, response_model=None)
    def page() -> FileResponse | HTMLResponse:
        if index.exists():
            return FileResponse(index, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})
        return HTMLResponse("<h1>rundossier</h1><p>The UI assets are missing from this install.</p>", status_code=500)

    app.mount("/static", Assets(directory=STATIC, check_dir=False), name="static")


__all__ = ["install", "STATIC", "Assets"]
