"""A sweep SIGKILLed at random points, then run again: nothing orphaned, nothing dangling, the policy holds."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rundossier.core.retention.plan import Action, RunFacts, ended_at
from rundossier.retention import PolicySet, Rule, plan_flow, sweep
from rundossier.storage.blobs import BlobStore
from rundossier.storage.db import RunStore
from tests.retention.helpers import NOW, all_keys, make_run, runs_of

ROOT = Path(__file__).resolve().parents[2]
RULES = [Rule("*", keep_days=20, keep_last=40, blob_days=8)]
KILLS = 3


def referenced(store: RunStore, blobs: BlobStore) -> dict[str, set[str]]:
    """run id -> keys its rows point at (trace text and JSON, logs)."""
    out: dict[str, set[str]] = {}
    for run in runs_of(store):
        keys: set[str] = set()
        uris = [run.trace_uri] + [u for s in store.list_steps(run.run_id) for u in (s.trace_uri, s.log_uri)]
        for uri in uris:
            if uri:
                key = blobs.key_for(uri)
                keys.add(key)
                if key.endswith("trace.txt.gz"):
                    keys.add(key.replace("trace.txt.gz", "trace.json.gz"))
                if key.endswith("log.jsonl.gz"):
                    keys.add(key.replace("log.jsonl.gz", "log.index.json"))
        out[run.run_id] = keys
    return out


def check_nothing_dangles(store: RunStore, blobs: BlobStore) -> None:
    """Any moment: a row not marked expired points only at blobs that exist."""
    present = all_keys(blobs)
    expired = {r.run_id for r in runs_of(store) if r.blobs_expired}
    for run_id, keys in referenced(store, blobs).items():
        if run_id not in expired:
            assert keys <= present, f"{run_id} points at missing blobs {sorted(keys - present)}"


def check_final(store: RunStore, blobs: BlobStore) -> None:
    """After a completed sweep: no orphans, no interrupted expiry, and what remains is what the policy keeps."""
    refs = referenced(store, blobs)
    runs = {r.run_id: r for r in runs_of(store)}
    live_keys = set().union(*(refs[r] for r in runs if not runs[r].blobs_expired)) if runs else set()
    assert all_keys(blobs) == live_keys, "orphaned blobs left behind"
    assert not [r for r in runs.values() if r.blobs_expired and r.blobs_expired_at is None]
    facts = [
        RunFacts(
            r.run_id, r.status, ended_at(r.finished_at, r.started_at, r.created_at), r.blobs_expired, r.blobs_expired_at
        )
        for r in sorted(runs.values(), key=lambda r: r.run_id, reverse=True)
    ]
    policy = PolicySet(RULES).resolve("etl").policy
    assert all(d.action is Action.KEEP for d in plan_flow(facts, policy, NOW))


def _seed(store: RunStore, blobs: BlobStore) -> None:
    for r in RULES:
        store.set_policy(r.pattern, **r.limits())
    for i in range(160):
        status = "running" if i % 37 == 0 else ("failed" if i % 3 == 0 else "success")
        make_run(store, blobs, "etl", age_days=i * 0.25, status=status, failed_step=i % 3 == 0, seq=i)


def _kill_at_random_points(db_url: str, storage: str, seed: int) -> int:
    rng = random.Random(seed)
    kills = 0
    for _ in range(KILLS):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.retention.sweep_child", db_url, storage, "2"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
            # the first kill comes early, so even a fast machine cannot finish before any kill
            time.sleep(rng.uniform(0.0, 0.25 if kills else 0.02))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
        finally:
            proc.wait(timeout=60)
        if proc.returncode == 0:
            break
    return kills


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_killed_sweep_is_finished_by_the_next_one(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        db_url = f"sqlite:///{tmp_path}/runs.db"
        store = RunStore(db_url)
    else:
        from tests.retention.conftest import empty_pg

        store = empty_pg(request.getfixturevalue("_pg_store"))
        db_url = store.url
    storage = f"file://{tmp_path}/blobs"
    blobs = BlobStore(storage)
    _seed(store, blobs)
    seed = random.randrange(1 << 30)
    kills = _kill_at_random_points(db_url, storage, seed)
    check_nothing_dangles(store, blobs)  # true at every kill point, before any re-run
    report = sweep(store, blobs, now=NOW)
    assert report.complete, report.error
    check_final(store, blobs)
    assert kills >= 1, f"the child finished before any kill (seed {seed})"
