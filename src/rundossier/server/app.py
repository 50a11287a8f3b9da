"""The FastAPI app: builds the backends once and mounts the API routes and the UI.

    app = create_app()                       # standalone (`rundossier serve`)
    app = create_app(dependencies=[...],      # inside Airflow: every route behind Airflow's auth
                     access=AirflowAccess())

The app works at `/` and under any prefix (Airflow mounts it at `/rundossier`): the UI builds
every URL relative to the page, and the API never emits absolute links.

Every answer passes, from the outside in: the security headers (`headers`), the catch-all that
turns a bug into a 500 with an error id (`errors.Unexpected`), the Host / cross-origin / NUL checks
(`guard`), the token (`auth`, standalone serve only), then FastAPI's routes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI

from rundossier.read.models import About
from rundossier.read.reader import Reader
from rundossier.server import errors
from rundossier.server.access import Access, AllowAll
from rundossier.server.apidocs import app_with_docs
from rundossier.server.auth import TokenAuth
from rundossier.server.guard import RequestGuard, allowed_host_names
from rundossier.server.headers import SecurityHeaders
from rundossier.server.routes import about, artifacts, failures, retention, runs, steps, stream
from rundossier.server.ui import install as install_ui
from rundossier.settings import Settings
from rundossier.storage.backends import Backends
from rundossier.storage.blobs import BlobStore
from rundossier.storage.db import RunStore


def create_app(
    settings: Settings | None = None,
    *,
    store: RunStore | None = None,
    blobs: BlobStore | None = None,
    dependencies: Sequence[Any] = (),
    access: Access | None = None,
    api_token: str | None = None,
    allowed_hosts: Iterable[str] | None = None,
    ui: bool = True,
    orchestrator_urls: Mapping[str, str] | None = None,
) -> FastAPI:
    """Build the app. `dependencies` guard every route (Airflow passes its auth); `access` decides
    per-flow reads; `api_token` requires `Authorization: Bearer <token>` (standalone serve);
    `allowed_hosts` turns the Host check on: loopback names plus these (`serve` without a token);
    `orchestrator_urls` maps an orchestrator to its own UI's root, relative to the page
    (`{"airflow": "../"}` inside Airflow), so the page can link a run to the orchestrator's pages."""
    settings = settings or Settings.resolve()
    # `/docs`: Swagger UI from packaged files (see `apidocs`), no request leaves the machine
    app = app_with_docs(
        title="rundossier",
        description="Run history, failure traces and step logs.",
        version=_version(),
        dependencies=list(dependencies),
        responses=errors.ERROR_RESPONSES,
    )
    app.state.reader = Reader(Backends(settings, store, blobs))
    app.state.about = About(version=_version(), orchestrator_urls=dict(orchestrator_urls or {}))
    app.state.access = access or AllowAll()
    app.state.stopping = threading.Event()  # set by `serve` on SIGINT/SIGTERM: live streams end
    errors.install(app)
    if api_token:
        TokenAuth(api_token).install(app)

    for routes in (about, runs, steps, artifacts, failures, retention, stream):
        app.include_router(routes.router)
    if ui:
        install_ui(app)
    # the last added is the outermost
    app.add_middleware(RequestGuard, allowed_hosts=None if allowed_hosts is None else allowed_host_names(allowed_hosts))
    app.add_middleware(errors.Unexpected)
    app.add_middleware(SecurityHeaders)
    return app


def _version() -> str:
    from rundossier import __version__

    return __version__


__all__ = ["create_app"]
