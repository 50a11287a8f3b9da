"""Who may read which flows: the seam the Airflow plugin fills with Airflow's own DAG permissions."""

from __future__ import annotations

from fastapi import Request


class Access:
    """Decides read access per flow. The default allows everything (standalone `serve` guards the
    whole app with its token instead); the Airflow integration subclasses it."""

    def check_flow(self, request: Request, flow_id: str) -> None:
        """Raise `fastapi.HTTPException(403)` when the caller may not read this flow."""

    def readable_flows(self, request: Request) -> set[str] | None:
        """The flows the caller may list, or None for all of them."""
        return None

    def check_manage(self, request: Request) -> None:
        """Raise `fastapi.HTTPException(403)` when the caller may not change retention rules or sweep."""


class AllowAll(Access):
    pass


__all__ = ["Access", "AllowAll"]
