"""What the routes depend on: the Reader, the backends, the access policy, and the checks every
read of one run makes. The app puts them on `app.state`; the routes take them as dependencies, so
no route module imports the app."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query, Request

from rundossier.core.status import Status
from rundossier.core.timeparse import MAX_LENGTH, parse_time
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


def time_param(name: str, text: str | None) -> datetime | None:
    """A time parameter (`6h`, `3d`, an ISO-8601 date or time) in UTC, read by the one parser the
    CLI uses too; InvalidInput (422) naming the accepted forms otherwise."""
    if text is None or text == "":
        return None
    return parse_time(text, now=datetime.now(UTC), name=name)


#: the longest time parameter accepted
TIME_MAX = MAX_LENGTH
#: the OpenAPI description of a time parameter
TIME_FORMS = "a span back from now (90m, 6h, 3d, 2w) or an ISO-8601 date or time (UTC when it has no zone)"


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
    "time_param",
    "TIME_FORMS",
    "TIME_MAX",
]
