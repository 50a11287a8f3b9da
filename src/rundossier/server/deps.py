"""What the routes depend on: the Reader, the backends, the access policy, and the checks every
read of one run makes. The app puts them on `app.state`; the routes take them as dependencies, so
no route module imports the app."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query, Request

from rundossier.core.status import Status
from rundossier.errors import InvalidInput, RunNotFound
from rundossier.read.reader import Reader
from rundossier.server.access import Access
from rundossier.storage.backends import Backends
from rundossier.storage.db import Run
from rundossier.storage.db.models import MAX_TRY


def reader(request: Request) -> Reader:
    return request.app.state.reader  # type: ignore[no-any-return]


def backends(request: Request) -> Backends:
    return request.app.state.reader.backends  # type: ignore[no-any-return]


def access(request: Request) -> Access:
    return request.app.state.access  # type: ignore[no-any-return]


ReaderDep = Annotated[Reader, Depends(reader)]
BackendsDep = Annotated[Backends, Depends(backends)]
AccessDep = Annotated[Access, Depends(access)]

TryNumber = Annotated[int | None, Query(alias="try", ge=1, le=MAX_TRY, description="the try (latest when omitted)")]


def base(request: Request) -> str:
    """Where this app is mounted ("" standalone, "/rundossier" inside Airflow): links stay correct."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def readable_run(request: Request, reader: Reader, acc: Access, run_id: str) -> Run:
    """The run, if it exists and the caller may read its flow (404 otherwise, never 403: the
    existence of a run in a flow one cannot read is not disclosed)."""
    run = reader.run(run_id)
    try:
        acc.check_flow(request, run.flow_id)
    except Exception:  # an access policy refuses in its own way (an HTTPException, its own error)
        raise RunNotFound(f"no run with id {run_id!r}") from None
    return run


def utc_param(name: str, ts: datetime | None) -> datetime | None:
    """A time parameter in UTC (naive times are UTC); InvalidInput when UTC cannot hold it
    (`0001-01-01T00:00:00+14:00` is a time before year 1 in UTC)."""
    if ts is None:
        return None
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    try:
        return ts.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(
            f"{name}: {ts.isoformat()} is outside the times rundossier can compare (years 1 to 9999 in UTC)"
        ) from None


def statuses(values: list[str] | None) -> tuple[str, ...]:
    """`status` parameters (repeated or comma-separated) as status values; InvalidInput naming an unknown one."""
    out: list[str] = []
    for value in values or []:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                out.append(Status(part).value)
            except ValueError:
                known = ", ".join(s.value for s in Status)
                raise InvalidInput(f"status: unknown status {part!r}; use one of {known}") from None
    return tuple(out)


__all__ = [
    "AccessDep",
    "BackendsDep",
    "ReaderDep",
    "TryNumber",
    "access",
    "backends",
    "base",
    "reader",
    "readable_run",
    "statuses",
    "utc_param",
]
