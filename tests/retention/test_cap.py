"""The write-time cap: with RUNDOSSIER_RETENTION_CAP on, a finished run trims its flow to the newest K."""

from __future__ import annotations

from pathlib import Path

import pytest

from rundossier import Recorder
from rundossier.errors import ConfigError
from rundossier.retention.cap import MAX_TRIM, RetentionCap
from rundossier.settings import Settings
from tests.retention.helpers import all_keys, make_run, runs_of


class Boom(Exception):
    pass


def _recorder(home: Path, cap: str) -> Recorder:
    return Recorder(Settings.resolve(explicit={"home": str(home), "retention_cap": cap}))


def _record(rec: Recorder, flow: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        try:
            with rec.run(flow) as run, run.step("s"):
                print("line")
                if i % 2:
                    raise Boom("x")
        except Boom:
            pass
        ids.append(run.run_id)
    return ids


def test_the_cap_keeps_the_newest_k_runs_of_the_flow(tmp_path: Path) -> None:
    rec = _recorder(tmp_path, "on")
    rec.store.set_policy("capped", keep_days=None, keep_last=3, blob_days=None)
    ids = _record(rec, "capped", 7)
    other = _record(rec, "other", 4)  # the built-in default: last 100
    assert [r.run_id for r in runs_of(rec.store, "capped")] == ids[::-1][:3]
    assert len(list(runs_of(rec.store, "other"))) == 4 and other
    keys = all_keys(rec.blobs)
    assert not [k for k in keys if any(rid in k for rid in ids[:4])]  # their blobs went with them
    assert [k for k in keys if ids[-1] in k]


def test_the_cap_is_off_by_default(tmp_path: Path) -> None:
    rec = Recorder(Settings.resolve(explicit={"home": str(tmp_path)}))
    assert rec.settings.retention_cap is False
    rec.store.set_policy("capped", keep_days=None, keep_last=1, blob_days=None)
    _record(rec, "capped", 3)
    assert len(list(runs_of(rec.store, "capped"))) == 3


@pytest.mark.parametrize(("value", "on"), [("on", True), ("1", True), ("TRUE", True), ("off", False), ("", False)])
def test_the_setting(value: str, on: bool) -> None:
    assert Settings.resolve(environ={"RUNDOSSIER_RETENTION_CAP": value}).retention_cap is on


def test_a_bad_setting_says_which() -> None:
    with pytest.raises(ConfigError, match="RUNDOSSIER_RETENTION_CAP must be on or off"):
        Settings.resolve(environ={"RUNDOSSIER_RETENTION_CAP": "sometimes"})


def test_a_cap_failure_never_reaches_the_task(tmp_path: Path) -> None:
    warnings: list[str] = []
    rec = Recorder(Settings.resolve(explicit={"home": str(tmp_path), "retention_cap": "on"}), warn=warnings.append)

    class Broken:
        def after_finish(self, flow_id: str) -> None:
            raise RuntimeError("cap bug")

    rec._cap = Broken()
    with rec.run("f") as run, run.step("s"):
        pass
    assert rec.store.get_run(run.run_id).status == "success"
    assert any("could not apply the retention cap" in w and "cap bug" in w for w in warnings)


def test_one_finish_trims_a_bounded_number_of_runs(tmp_path: Path) -> None:
    from rundossier.storage.blobs import BlobStore
    from rundossier.storage.db import RunStore

    store = RunStore(f"sqlite:///{tmp_path}/r.db")
    blobs = BlobStore(f"file://{tmp_path}/b")
    for i in range(MAX_TRIM + 12):
        make_run(store, blobs, "big", age_days=i / 1000, seq=i)
    store.set_policy("big", keep_days=None, keep_last=2, blob_days=None)
    cap = RetentionCap(store, blobs)
    first = cap.after_finish("big")
    assert first is not None and first.runs_removed == MAX_TRIM
    second = cap.after_finish("big")
    assert second is not None and second.runs_removed == 10
    assert cap.after_finish("big") is None
    store.set_policy("big", keep_days=None, keep_last=0, blob_days=None)
    assert RetentionCap(store, blobs).after_finish("big") is None  # no limit, nothing to do
