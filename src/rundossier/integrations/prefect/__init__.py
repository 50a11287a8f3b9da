"""Prefect 3 integration: the RunDossier Block and the flow and task state hooks it hands out.

`rundossier.prefect` re-exports it (that is the import path users and Prefect's `prefect.collections`
entry point use). Modules: `block` (the Block), `hooks` (what each hook does, bounded and never
raising), `session` (one flow run's recorder calls), `capture` (task logs and live failures from
Prefect's run loggers), `states` and `summary` (pure), `api` (Prefect API calls), `workers`
(its two background workers).
"""

from __future__ import annotations

from rundossier.integrations.prefect.block import RunDossier
from rundossier.integrations.prefect.hooks import wait

__all__ = ["RunDossier", "wait"]
