"""Policies from configuration: airflow.cfg's `[rundossier]` section and the Prefect Block (I/O).

Configuration writes rules into the store (so the CLI, the API, the UI and every sweep see the
same policies), marked with where they came from. Rules set by a person (CLI, API, UI) always win:

* `apply_airflow_config(store, conf.getsection("rundossier"))` writes the `retention_*` settings
  as rules with source `airflow.cfg`, updates them when the file changes and removes the ones the
  file no longer has; a pattern a person already set is left as the person set it.
* `apply_block_defaults(store, flow_id, keep_days=..., block_name=...)` gives a flow that uses a
  RunDossier Block the Block's retention defaults (an exact rule, source `prefect-block:NAME`),
  unless a person's rule (an exact id or a glob) already decides for that flow. It is cheap to call
  on every flow run: it remembers what it wrote in this process.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rundossier.core.retention.policy import FIELDS, PolicySet, Rule, policies_from_mapping
from rundossier.storage.db import RunStore

AIRFLOW_SOURCE = "airflow.cfg"
BLOCK_SOURCE_PREFIX = "prefect-block:"
#: sources a person uses; configuration never overwrites their rules (None: set before sources existed)
PERSON_SOURCES = frozenset({None, "cli", "api", "ui"})


@dataclass
class SyncResult:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    #: patterns left alone because a person (or another configuration) owns them
    kept: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"written": self.written, "unchanged": self.unchanged, "removed": self.removed, "kept": self.kept}


def sync_rules(store: RunStore, rules: Sequence[Rule], *, source: str, prune: bool = True) -> SyncResult:
    """Make the store hold `rules` for `source`; never touch rules owned by anyone else."""
    if source in PERSON_SOURCES:
        raise ValueError(f"sync_rules is for configuration sources, not {source!r}")
    existing = {r.flow_pattern: Rule.from_row(r) for r in store.list_policies()}
    result = SyncResult()
    wanted = set()
    for rule in rules:
        wanted.add(rule.pattern)
        current = existing.get(rule.pattern)
        if current is not None and current.source != source:
            result.kept.append(rule.pattern)
        elif current is not None and current.limits() == rule.limits():
            result.unchanged.append(rule.pattern)
        else:
            store.set_policy(rule.pattern, **rule.limits(), source=source)
            result.written.append(rule.pattern)
    if prune:
        for pattern, current in existing.items():
            if current.source == source and pattern not in wanted:
                store.delete_policy(pattern)
                result.removed.append(pattern)
    return result


def apply_airflow_config(store: RunStore, section: Mapping[str, Any]) -> SyncResult:
    """Apply airflow.cfg's `[rundossier]` section (`retention_keep_days`, `retention_keep_last`,
    `retention_blob_days`, `retention_overrides`); ValueError names a malformed key."""
    return sync_rules(store, policies_from_mapping(section, source=AIRFLOW_SOURCE), source=AIRFLOW_SOURCE)


_applied: dict[tuple[str, str, str], tuple[int | None, ...]] = {}
_applied_lock = threading.Lock()


def apply_block_defaults(
    store: RunStore,
    flow_id: str,
    *,
    keep_days: int | None = None,
    keep_last: int | None = None,
    blob_days: int | None = None,
    block_name: str = "default",
) -> SyncResult:
    """Give `flow_id` the Block's retention defaults unless a person's rule already decides for it."""
    source = f"{BLOCK_SOURCE_PREFIX}{block_name}"[:80]
    rule = Rule(flow_id, keep_days=keep_days, keep_last=keep_last, blob_days=blob_days, source=source)
    limits = tuple(getattr(rule, name) for name in FIELDS)
    memo = (store.url, flow_id, source)
    with _applied_lock:
        if _applied.get(memo) == limits:
            return SyncResult(unchanged=[flow_id])
    existing = [Rule.from_row(r) for r in store.list_policies()]
    chosen, _ = PolicySet(existing).choose(flow_id)
    result = SyncResult()
    if chosen is not None and chosen.kind != "default" and chosen.source != source:
        result.kept.append(chosen.pattern)  # a person's (or airflow.cfg's) rule decides for this flow
    elif all(v is None for v in limits):
        if chosen is not None and chosen.source == source:
            store.delete_policy(flow_id)
            result.removed.append(flow_id)
    elif chosen is not None and chosen.source == source and chosen.limits() == rule.limits():
        result.unchanged.append(flow_id)
    else:
        store.set_policy(flow_id, **rule.limits(), source=source)
        result.written.append(flow_id)
    with _applied_lock:
        _applied[memo] = limits
    return result


__all__ = [
    "sync_rules",
    "apply_airflow_config",
    "apply_block_defaults",
    "SyncResult",
    "AIRFLOW_SOURCE",
    "BLOCK_SOURCE_PREFIX",
    "PERSON_SOURCES",
]
