"""Routes about the server itself: the health check and what the page needs to know (version,
the orchestrator UIs it may link to)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from rundossier.read.models import About, Health

router = APIRouter(tags=["meta"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    return Health(status="ok")


@router.get("/api/about", summary="The server's version and the orchestrator UIs it can link to", response_model=About)
def get_about(request: Request) -> About:
    return request.app.state.about  # type: ignore[no-any-return]


__all__ = ["router"]
