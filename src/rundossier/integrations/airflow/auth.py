"""Airflow's own auth in front of the rundossier app, and DAG-level read access per flow.

Airflow mounts a plugin's FastAPI app without any of its own dependencies, so the plugin brings
them itself, from `airflow.api_fastapi.core_api.security`:

- every API route depends on `get_user` (a JWT from `Authorization: Bearer` or the UI's `_token`
  cookie): anonymous callers get 401, bad tokens 403;
- a middleware runs the same `get_user` for what is not an API route (the page's static files,
  `/docs`, `/openapi.json`), so nothing under `/rundossier` answers an anonymous caller;
- `AirflowAccess` asks Airflow's auth manager whether the user may read a DAG's task logs
  (traces and step logs are task logs) before a run of that DAG is shown, and lists only such DAGs.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials

from rundossier.server.access import Access
from rundossier.server.errors import HTTP_TYPES, error_response

USER_STATE = "rundossier_user"
READABLE_STATE = "rundossier_readable_flows"


def _security() -> Any:
    from airflow.api_fastapi.core_api import security

    return security


def route_dependencies() -> list[Any]:
    """The dependencies every rundossier route gets inside Airflow: Airflow's `get_user`."""
    get_user = _security().get_user

    # a default, not Annotated[...]: with postponed annotations FastAPI could not see the local `get_user`
    async def current_user(request: Request, user: Any = Depends(get_user)) -> Any:  # noqa: B008
        setattr(request.state, USER_STATE, user)  # for AirflowAccess
        return user

    return [Depends(current_user)]


async def authenticate(request: Request) -> Any:
    """Run Airflow's `get_user` outside FastAPI's dependency injection (for the middleware)."""
    get_user = _security().get_user
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    credentials = HTTPAuthorizationCredentials(scheme=scheme, credentials=token) if scheme and token else None
    kwargs: dict[str, Any] = {}
    for name in inspect.signature(get_user).parameters:
        if name == "request":
            kwargs[name] = request
        elif "credential" in name:
            kwargs[name] = credentials
        elif "token" in name:  # the OAuth2 form of the same header
            kwargs[name] = token if scheme.lower() == "bearer" and token else None
    return await get_user(**kwargs)


def install(app: FastAPI) -> None:
    """Refuse every request under the app that Airflow's auth does not accept (401/403)."""

    @app.middleware("http")
    async def _airflow_auth(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        try:
            user = await authenticate(request)
        except HTTPException as exc:
            message = exc.detail if isinstance(exc.detail, str) else "not authenticated"
            return error_response(
                exc.status_code,
                HTTP_TYPES.get(exc.status_code, "unauthorized"),
                f"{message}: sign in to Airflow (the UI's session cookie) or send `Authorization: Bearer <JWT>`",
                headers=getattr(exc, "headers", None),
            )
        setattr(request.state, USER_STATE, user)
        return await call_next(request)


class AirflowAccess(Access):
    """Reads of a flow (DAG) need the user's permission to read that DAG's task logs."""

    def __init__(self, access_entity: Any = None) -> None:
        from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity

        self.access_entity = access_entity if access_entity is not None else DagAccessEntity.TASK_LOGS

    @staticmethod
    def _user(request: Request) -> Any:
        user = getattr(request.state, USER_STATE, None)
        if user is None:
            raise HTTPException(status_code=401, detail="Not authenticated")
        return user

    def _allowed(self, user: Any, flow_id: str) -> bool:
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

        return bool(
            get_auth_manager().is_authorized_dag(
                method="GET", access_entity=self.access_entity, details=DagDetails(id=flow_id), user=user
            )
        )

    def check_flow(self, request: Request, flow_id: str) -> None:
        if not self._allowed(self._user(request), flow_id):
            raise HTTPException(status_code=403, detail=f"you may not read the task logs of DAG {flow_id!r}")

    def readable_flows(self, request: Request) -> set[str] | None:
        cached = getattr(request.state, READABLE_STATE, None)
        if cached is not None:
            return set(cached)
        from airflow.api_fastapi.app import get_auth_manager

        user = self._user(request)
        dag_ids = get_auth_manager().get_authorized_dag_ids(user=user, method="GET")
        readable = {d for d in dag_ids if self._allowed(user, d)}
        setattr(request.state, READABLE_STATE, frozenset(readable))
        return readable


__all__ = ["AirflowAccess", "authenticate", "install", "route_dependencies", "USER_STATE"]
