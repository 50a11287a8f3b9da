"""The retention overview: rules, each flow's effective policy and why, and what a sweep would remove.

One JSON shape for `GET /api/retention`, `rundossier retention show --json` and the UI's Retention page:

    {"builtin": {...}, "cap": {"enabled": false},
     "rules": [{"flow_pattern", "kind", "keep_days", "keep_last", "blob_days", "source", "updated_at", "flows"}],
     "flows": [{"flow_id", "runs", "policy", "describe", "rule", "rule_kind", "rule_source", "reason",
                "fields_from", "would_remove": {"runs", "runs_expired", "steps", "events", "blobs", "bytes",
                "by_rule"} | null}],
     "preview": {"computed_at", "complete", "error", "totals"} | null}
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from rundossier.core.retention.policy import BUILTIN_POLICY, PolicySet
from rundossier.retention.sweep import flow_counts, load_rules, preview
from rundossier.storage.blobs import BlobStore
from rundossier.storage.db import RunStore


def overview(
    store: RunStore,
    blobs: BlobStore,
    *,
    with_preview: bool = True,
    cap_enabled: bool = False,
    flows: Collection[str] | None = None,
) -> dict[str, Any]:
    """Everything a platform team needs to review retention; `flows` limits it to those flows."""
    rules = load_rules(store)
    policies = PolicySet(rules)
    counts = [(f, n) for f, n in flow_counts(store) if flows is None or f in flows]
    report = preview(store, blobs, rules=rules, flows=[f for f, _ in counts]) if with_preview else None
    decided: dict[str, list[str]] = {r.pattern: [] for r in rules}
    out_flows = []
    for flow_id, n in counts:
        res = policies.resolve(flow_id)
        if res.rule is not None:
            decided[res.rule.pattern].append(flow_id)
        item: dict[str, Any] = {
            "flow_id": flow_id,
            "runs": n,
            "policy": res.policy.to_json(),
            "describe": res.policy.describe(),
            "rule": res.rule.pattern if res.rule is not None else None,
            "rule_kind": res.rule.kind if res.rule is not None else "built-in",
            "rule_source": res.rule.source if res.rule is not None else None,
            "reason": res.reason,
            "fields_from": dict(res.fields_from),
            "would_remove": None,
        }
        fr = report.flow(flow_id) if report is not None else None
        if fr is not None:
            item["would_remove"] = {
                "runs": fr.runs_removed,
                "runs_expired": fr.runs_expired,
                "steps": fr.steps_removed,
                "events": fr.events_removed,
                "blobs": fr.blobs_removed,
                "bytes": fr.bytes_removed,
                "by_rule": dict(sorted(fr.by_rule.items())),
            }
        out_flows.append(item)
    return {
        "builtin": {**BUILTIN_POLICY.to_json(), "describe": BUILTIN_POLICY.describe()},
        "cap": {"enabled": cap_enabled},
        "rules": [{**r.to_json(), "flows": decided.get(r.pattern, [])} for r in policies.rules],
        "flows": out_flows,
        "preview": None
        if report is None
        else {
            "computed_at": report.to_json()["now"],
            "complete": report.complete,
            "error": report.error,
            "totals": {
                k: v
                for k, v in report.totals().items()
                if k not in ("runs_scanned", "active_runs", "foreign_blobs", "flows")
            },
        },
    }


__all__ = ["overview"]
