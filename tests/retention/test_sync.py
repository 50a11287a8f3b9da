"""Policies from airflow.cfg and from the Prefect Block: written with their source; a person's rules win."""

from __future__ import annotations

import pytest

from rundossier.core.retention.policy import Rule
from rundossier.retention.sync import apply_airflow_config, apply_block_defaults, sync_rules
from rundossier.storage.db import RunStore


def _rules(store: RunStore) -> dict[str, tuple[object, ...]]:
    return {r.flow_pattern: (r.keep_days, r.keep_last, r.blob_days, r.source) for r in store.list_policies()}


def test_airflow_cfg_writes_updates_and_removes_its_own_rules(store: RunStore) -> None:
    section = {"retention_keep_days": "14", "retention_overrides": '{"fin_*": {"keep_days": 7}, "x": {"keep_last": 5}}'}
    result = apply_airflow_config(store, section)
    assert sorted(result.written) == ["*", "fin_*", "x"]
    assert _rules(store)["fin_*"] == (7, None, None, "airflow.cfg")
    again = apply_airflow_config(store, section)
    assert not again.written and sorted(again.unchanged) == ["*", "fin_*", "x"]
    changed = apply_airflow_config(store, {"retention_keep_days": "10", "retention_overrides": '{"fin_*": {}}'})
    assert sorted(changed.written) == ["*", "fin_*"] and changed.removed == ["x"]
    assert _rules(store) == {"*": (10, None, None, "airflow.cfg"), "fin_*": (None, None, None, "airflow.cfg")}


def test_a_persons_rule_is_never_overwritten_by_configuration(store: RunStore) -> None:
    store.set_policy("fin_*", keep_days=90, keep_last=None, blob_days=None, source="cli")
    store.set_policy("old", keep_days=1, keep_last=None, blob_days=None)  # no source: set before 0004
    result = apply_airflow_config(store, {"retention_overrides": {"fin_*": {"keep_days": 7}, "old": {"keep_days": 2}}})
    assert sorted(result.kept) == ["fin_*", "old"] and not result.written
    assert _rules(store)["fin_*"] == (90, None, None, "cli")
    apply_airflow_config(store, {})
    assert set(_rules(store)) == {"fin_*", "old"}  # pruning only removes airflow.cfg's own rules


def test_malformed_airflow_cfg_changes_nothing(store: RunStore) -> None:
    apply_airflow_config(store, {"retention_keep_days": "14"})
    with pytest.raises(ValueError, match="retention_keep_last"):
        apply_airflow_config(store, {"retention_keep_last": "lots"})
    assert _rules(store) == {"*": (14, None, None, "airflow.cfg")}


def test_configuration_sources_cannot_pose_as_a_person(store: RunStore) -> None:
    with pytest.raises(ValueError, match="configuration sources"):
        sync_rules(store, [Rule("x", keep_days=1)], source="cli")


def test_block_defaults_apply_to_a_flow_unless_a_persons_rule_decides(store: RunStore) -> None:
    r = apply_block_defaults(store, "etl", keep_days=5, keep_last=None, blob_days=1, block_name="prod")
    assert r.written == ["etl"] and _rules(store)["etl"] == (5, None, 1, "prefect-block:prod")
    assert apply_block_defaults(store, "etl", keep_days=5, blob_days=1, block_name="prod").unchanged == ["etl"]
    apply_block_defaults(store, "etl", keep_days=6, blob_days=1, block_name="prod")
    assert _rules(store)["etl"][0] == 6
    # the default rule "*" set by a person does not stop a Block: the Block is about this flow
    store.set_policy("*", keep_days=60, keep_last=None, blob_days=None, source="cli")
    assert apply_block_defaults(store, "ml", keep_last=9, block_name="prod").written == ["ml"]
    # a person's glob does
    store.set_policy("fin_*", keep_days=90, keep_last=None, blob_days=None, source="api")
    assert apply_block_defaults(store, "fin_x", keep_days=1, block_name="prod").kept == ["fin_*"]
    assert "fin_x" not in _rules(store)


def test_a_block_without_retention_settings_removes_its_rule(store: RunStore) -> None:
    apply_block_defaults(store, "etl", keep_days=5, block_name="b")
    assert apply_block_defaults(store, "etl", block_name="b").removed == ["etl"]
    assert "etl" not in _rules(store)


def test_block_values_are_validated(store: RunStore) -> None:
    with pytest.raises(ValueError, match="keep_days must be"):
        apply_block_defaults(store, "etl", keep_days=-5, block_name="b2")
