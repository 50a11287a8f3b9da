"""`RunDossierPlugin`: the listeners, the rundossier app at `/rundossier` and the UI tabs, for Airflow 3.

Airflow loads it through the `airflow.plugins` entry point of the rundossier package (or the
drop-in `plugins/rundossier_plugin.py`, which defines nothing when the entry point is there, so
the plugin is never registered twice). It is built in every Airflow process; what it costs there
is kept small: the listener imports the recorder on its first event, and the FastAPI app is
built only when the API server asks for `fastapi_apps`.

`[rundossier] enabled = False` (or `AIRFLOW__RUNDOSSIER__ENABLED=False`) keeps it loaded but inert.
"""

from __future__ import annotations

import logging
from importlib import metadata
from typing import Any

from rundossier.integrations.airflow import config as airflow_config
from rundossier.integrations.airflow.listener import listener
from rundossier.integrations.airflow.views import AIRFLOW_UI, URL_PREFIX, external_views

try:  # the Task SDK's base class (workers); Airflow accepts it in every process
    from airflow.sdk.plugins_manager import AirflowPlugin
except ImportError:  # pragma: no cover - Airflow without the Task SDK's plugins manager
    from airflow.plugins_manager import AirflowPlugin

log = logging.getLogger("rundossier.airflow")

PLUGIN_NAME = "rundossier"
ENTRY_POINT_GROUP = "airflow.plugins"
ENTRY_POINT_VALUE = "rundossier.integrations.airflow.plugin:RunDossierPlugin"


def build_app() -> Any:
    """The rundossier API and UI with Airflow's auth on every route (see `auth`)."""
    from rundossier.errors import ConfigError
    from rundossier.integrations.airflow import auth
    from rundossier.server import create_app

    try:
        cfg = airflow_config.load()
    except ConfigError as exc:
        log.warning("rundossier: the Run History app cannot start: %s", exc)
        return _config_error_app(str(exc))
    app = create_app(
        cfg.settings,
        dependencies=auth.route_dependencies(),
        access=auth.AirflowAccess(),
        orchestrator_urls={"airflow": AIRFLOW_UI},
    )
    auth.install(app)
    return app


def _config_error_app(message: str) -> Any:
    """An app that says what is wrong with the configuration, to signed-in users only."""
    from fastapi import FastAPI

    from rundossier.integrations.airflow import auth
    from rundossier.server.errors import error_response

    app = FastAPI(title="rundossier", dependencies=auth.route_dependencies(), docs_url=None, openapi_url=None)

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE"], include_in_schema=False)
    def _misconfigured(path: str) -> Any:
        return error_response(503, "config_error", f"rundossier is misconfigured: {message}")

    auth.install(app)
    return app


class RunDossierPlugin(AirflowPlugin):
    """rundossier for Airflow: run history, failure traces and step logs, in Airflow's UI."""

    name = PLUGIN_NAME

    def __init__(self) -> None:
        self._enabled = airflow_config.enabled()
        self._apps: list[dict[str, Any]] | None = None
        self.external_views = external_views() if self._enabled else []

    @property  # type: ignore[override]
    def listeners(self) -> list[Any]:
        return [listener] if self._enabled else []

    @property  # type: ignore[override]
    def fastapi_apps(self) -> list[dict[str, Any]]:
        if not self._enabled:
            return []
        if self._apps is None:
            self._apps = [{"app": build_app(), "url_prefix": URL_PREFIX, "name": "rundossier"}]
        return self._apps


def registered_by_entry_point() -> bool:
    """True when this environment's rundossier package declares the `airflow.plugins` entry point
    (Airflow then loads the plugin from there, and the drop-in file must not define it again)."""
    try:
        points = metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # noqa: BLE001 - broken metadata: let the drop-in register the plugin
        return False
    return any(ep.value.replace(" ", "") == ENTRY_POINT_VALUE for ep in points)


__all__ = ["RunDossierPlugin", "build_app", "registered_by_entry_point", "PLUGIN_NAME"]
