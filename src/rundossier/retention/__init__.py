"""Retention per flow: policies (exact id > longest glob > default), a safe batched sweep, orphan cleanup.

    from rundossier.retention import sweep
    report = sweep(store, blobs, dry_run=True)      # what a real sweep would remove, per flow

`policy` and `plan` are pure (rules, resolution, per-run decisions); `sweep`, `orphans`, `cap`
and `sync` do the I/O.
"""

from __future__ import annotations

from rundossier.core.retention.plan import Action, Because, Decision, FlowPlanner, RunFacts, plan_flow
from rundossier.core.retention.policy import (
    BUILTIN_POLICY,
    DEFAULT_PATTERN,
    Policy,
    PolicySet,
    Resolution,
    Rule,
    policies_from_mapping,
)
from rundossier.retention.orphans import OrphanReport, sweep_orphans
from rundossier.retention.sweep import FlowReport, SweepReport, preview, sweep

__all__ = [
    "Policy",
    "Rule",
    "PolicySet",
    "Resolution",
    "BUILTIN_POLICY",
    "DEFAULT_PATTERN",
    "policies_from_mapping",
    "Action",
    "Because",
    "Decision",
    "RunFacts",
    "FlowPlanner",
    "plan_flow",
    "sweep",
    "preview",
    "SweepReport",
    "FlowReport",
    "sweep_orphans",
    "OrphanReport",
]
