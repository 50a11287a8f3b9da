"""Sweeps while four writer processes record runs: no writer errors, and the end state is the policy's."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest

from rundossier import Recorder
from rundossier.core.retention.plan import Action, RunFacts, ended_at
from rundossier.retention import PolicySet, Rule, plan_flow, sweep
from rundossier.settings import Settings
from rundossier.storage.blobs import BlobStore
from rundossier.storage.db import RunStore
from tests.retention.helpers import all_keys, make_run, runs_of

WRITERS = 4
RUNS_EACH = 40
KEEP_LAST = 15
RULES = [Rule("*", keep_days=10, keep_last=KEEP_LAST, blob_days=5)]


class JobError(Exception):
    pass


def _wait_for(paths: list[Path], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not all(p.exists() for p in paths):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still waiting for {[str(p) for p in paths if not p.exists()]}")
        time.sleep(0.01)


def _writer(args: tuple[int, str, str, str]) -> tuple[int, int, float]:
    """Record RUNS_EACH runs (every other one failing, with a trace and a log).

    Says it is ready (a file), waits for the go file the sweeper writes just before its first
    sweep, so the writes and the sweeps overlap. Returns (errors, spooled, when it finished).
    """
    n, db_url, storage, home = args
    warnings: list[str] = []
    rec = Recorder(
        Settings.resolve(explicit={"db_url": db_url, "storage_url": storage, "home": home, "db_timeout": 30}),
        warn=warnings.append,
    )
    Path(home).mkdir(parents=True, exist_ok=True)
    (Path(home) / "ready").touch()
    _wait_for([Path(home).parent / "go"], 60)
    errors = 0
    for i in range(RUNS_EACH):
        try:
            with rec.run(f"writer_{n % 2}", run_key=f"w{n}-{i}") as run, run.step("work"):
                if i % 2:
                    raise JobError(f"run {i} of writer {n}")
        except JobError:
            pass
        except Exception:  # noqa: BLE001 - anything else reaching the task is a failure
            errors += 1
    rec.close()
    spool = Path(home) / "spool"
    spooled = len(list(spool.rglob("*"))) if spool.exists() else 0
    return errors + len(warnings), spooled, time.time()


def _now() -> object:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _check_policy(store: RunStore, blobs: BlobStore) -> None:
    policies = PolicySet(RULES)
    now = _now()
    present = all_keys(blobs)
    kept_keys: set[str] = set()
    for flow in ("old", "writer_0", "writer_1"):
        runs = sorted(runs_of(store, flow), key=lambda r: r.run_id, reverse=True)
        facts = [
            RunFacts(
                r.run_id,
                r.status,
                ended_at(r.finished_at, r.started_at, r.created_at),
                r.blobs_expired,
                r.blobs_expired_at,
            )
            for r in runs
        ]
        decisions = plan_flow(facts, policies.resolve(flow).policy, now)
        assert [d.action for d in decisions] == [Action.KEEP] * len(decisions), flow
        assert sum(1 for r in runs if r.status in ("success", "failed")) <= KEEP_LAST
        for r in runs:
            if not r.blobs_expired:
                for s in store.list_steps(r.run_id):
                    for uri in (s.trace_uri, s.log_uri):
                        if uri:
                            kept_keys.add(blobs.key_for(uri))
                            if uri.endswith("trace.txt.gz"):
                                kept_keys.add(blobs.key_for(uri).replace("trace.txt", "trace.json"))
    assert present == kept_keys  # nothing dangling, nothing orphaned


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_sweeps_while_four_writers_record(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if backend == "sqlite":
        db_url = f"sqlite:///{tmp_path}/runs.db"
        store = RunStore(db_url, timeout=30)
    else:
        from tests.retention.conftest import empty_pg

        store = empty_pg(request.getfixturevalue("_pg_store"))
        db_url = store.url
    storage = f"file://{tmp_path}/blobs"
    blobs = BlobStore(storage)
    for r in RULES:
        store.set_policy(r.pattern, **r.limits())
    now = _now()
    for i in range(300):  # old runs of three flows: 300 to delete, in small batches, while writers write
        flow = ("old", "writer_0", "writer_1")[i % 3]
        make_run(store, blobs, flow, age_days=11 + i / 100, failed_step=i % 4 == 0, now=now, seq=i)  # type: ignore[arg-type]

    ctx = mp.get_context("spawn")
    sweeps = []
    homes = [tmp_path / f"home{n}" for n in range(WRITERS)]
    with ctx.Pool(WRITERS) as pool:
        result = pool.map_async(_writer, [(n, db_url, storage, str(homes[n])) for n in range(WRITERS)])
        _wait_for([h / "ready" for h in homes], 120)
        (tmp_path / "go").touch()  # writers start now, as the first sweep does
        deadline = time.monotonic() + 120
        while not result.ready() and time.monotonic() < deadline:
            sweeps.append(sweep(store, blobs, batch_size=10))
        outcomes = result.get(timeout=max(1.0, deadline - time.monotonic()))
    assert [o[:2] for o in outcomes] == [(0, 0)] * WRITERS, "writers saw errors or had to spool"
    assert sweeps and sweeps[0].started_at.timestamp() < max(o[2] for o in outcomes)  # sweeps overlapped writes
    assert all(s.complete for s in sweeps), [s.error for s in sweeps if not s.complete]
    final = sweep(store, blobs)  # quiet now: the end state must be exactly the policy's
    assert final.complete
    assert sum(s.totals()["runs_removed"] for s in [*sweeps, final]) >= 300
    _check_policy(store, blobs)
    assert sum(1 for _ in runs_of(store, "writer_0")) == KEEP_LAST
