"""The FastAPI app with its `/docs` page (Swagger UI) served from packaged files: no CDN.

fastapi-offline ships Swagger UI's script and stylesheet; the `server` and `airflow` extras install
it. Without it (rundossier installed bare into an environment that has FastAPI, such as Airflow's)
the app still starts, and `/docs` says what to install; `/openapi.json` is served either way.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from rundossier.server.errors import error_response

#: where Swagger UI's own files are served: under /static/, which is open without the token, and
#: mounted before the UI's /static, so it wins
DOCS_ASSETS = "/static/docs"
DOCS_URL = "/docs"
MISSING = "the API docs page needs the fastapi-offline package: pip install 'rundossier[server]'"


def app_with_docs(**kwargs: Any) -> FastAPI:
    """`FastAPI(**kwargs)` with `/docs` from packaged assets (or a 404 naming the missing package)."""
    try:
        from fastapi_offline import FastAPIOffline
    except ModuleNotFoundError:
        app = FastAPI(docs_url=None, redoc_url=None, **kwargs)

        @app.get(DOCS_URL, include_in_schema=False)
        def _no_docs() -> JSONResponse:
            return error_response(404, "docs_unavailable", MISSING)

        return app
    return FastAPIOffline(docs_url=DOCS_URL, redoc_url=None, static_url=DOCS_ASSETS, **kwargs)


__all__ = ["app_with_docs", "DOCS_ASSETS", "DOCS_URL"]
