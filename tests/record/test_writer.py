"""The one writer: outages open once and end when the backend answers, a task waits one budget at
most, nothing is lost (spool, then memory), and the delivered history does not depend on faults."""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rundossier import Recorder
from rundossier.errors import SpoolError, StorageError, StoreUnavailable
from rundossier.record.writer import Budget, Unavailable, Writer, _NetworkCalls
from rundossier.settings import Settings
from rundossier.storage.blobs import BlobStore
from rundossier.storage.db import RunStore, WriteBatch
from rundossier.storage.spool import Spool


class FlakyStore:
    """A RunStore whose writes fail while `down` is set (and counts what reached it)."""

    def __init__(self, store: RunStore) -> None:
        self._store = store
        self.down = False
        self.calls = 0
        #: fail after the write committed (a crash between the commit and the spool's clean-up)
        self.fail_after_commit = False

    def write(self, batch: WriteBatch, **kwargs: Any) -> Any:
        self.calls += 1
        if self.down:
            raise StoreUnavailable("could not record a batch: database is locked (test)")
        result = self._store.write(batch, **kwargs)
        if self.fail_after_commit:
            raise StoreUnavailable("connection lost after the commit (test)")
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def _writer(tmp_path: Path, store: Any, **kw: Any) -> tuple[Writer, list[str]]:
    warnings: list[str] = []
    blobs = BlobStore(f"file://{tmp_path}/blobs")
    writer = Writer(lambda: blobs, lambda: store, Spool(tmp_path / "spool"), warn=warnings.append, **kw)
    return writer, warnings


def _run_batch(key: str) -> WriteBatch:
    return WriteBatch().run({"orchestrator": "python", "flow_id": "f", "run_key": key, "status": "running"})


def _wait(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_an_outage_warns_once_spools_everything_and_ends_when_the_database_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyStore(RunStore(f"sqlite:///{tmp_path}/r.db"))
    writer, warnings = _writer(tmp_path, store)
    store.down = True
    for i in range(20):
        result = writer.write([], _run_batch(f"k{i}"))
        assert result.spooled and not result.held
    assert store.calls == 1  # the outage was found once; the other 19 writes did not wait on it
    assert len(warnings) == 1 and "database is unavailable" in warnings[0]
    assert len(writer.spool.pending()) == 20
    store.down = False
    with caplog.at_level(logging.INFO, logger="rundossier"):
        assert _wait(lambda: not writer.store_down and not writer.spool.pending())
    assert store.count_runs() == 20
    assert any("answers again; 20 spooled item(s) delivered" in r.getMessage() for r in caplog.records)
    assert not writer.write([], _run_batch("after")).spooled


def test_a_write_during_an_outage_goes_after_what_waits(tmp_path: Path) -> None:
    store = FlakyStore(RunStore(f"sqlite:///{tmp_path}/r.db"))
    writer, _ = _writer(tmp_path, store)
    store.down = True
    writer.write([], WriteBatch().run({"orchestrator": "python", "flow_id": "f", "run_key": "k", "status": "running"}))
    # while the outage is open even a write the database would take waits its turn in the spool
    store.down = False
    done = WriteBatch().run({"orchestrator": "python", "flow_id": "f", "run_key": "k", "status": "success"})
    assert writer.store_down and writer.write([], done).spooled
    assert _wait(lambda: not writer.spool.pending())
    assert store.find_run("python", "f", "k").status == "success"


def test_a_delivery_cut_after_its_commit_is_replayed_without_duplicates(tmp_path: Path) -> None:
    store = FlakyStore(RunStore(f"sqlite:///{tmp_path}/r.db"))
    writer, _ = _writer(tmp_path, store)
    rid = store.upsert_run({"orchestrator": "python", "flow_id": "f", "run_key": "k", "status": "running"})
    store.fail_after_commit = True
    batch = WriteBatch().event({"run_id": rid, "kind": "first_work", "ts": datetime.now(UTC), "summary": "x"})
    assert writer.write([], batch).spooled  # committed, but the writer could not know
    store.fail_after_commit = False
    assert _wait(lambda: not writer.spool.pending())
    assert [e.kind for e in store.list_events(rid)] == ["first_work"]


def test_a_full_spool_disk_holds_items_in_memory_until_it_takes_them(tmp_path: Path) -> None:
    store = FlakyStore(RunStore(f"sqlite:///{tmp_path}/r.db"))
    writer, warnings = _writer(tmp_path, store)
    refuse = threading.Event()
    refuse.set()
    real_put = writer.spool.put

    def put(item: Any) -> Path:
        if refuse.is_set():
            raise SpoolError("could not spool: [Errno 28] No space left on device (test)")
        return real_put(item)

    writer.spool.put = put  # type: ignore[method-assign]
    store.down = True
    result = writer.write([("python/f/run_x/s.1.trace.txt.gz", b"trace")], _run_batch("k"))
    assert result.spooled and result.held and writer.held == 1
    assert any("could not spool" in w for w in warnings)
    refuse.clear()  # the disk has room again; the database is still down
    assert _wait(lambda: writer.held == 0 and len(writer.spool.pending()) == 1)
    store.down = False
    assert _wait(lambda: not writer.spool.pending())
    assert store.find_run("python", "f", "k") is not None


def test_what_is_still_held_at_exit_is_said_to_be_lost(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = FlakyStore(RunStore(f"sqlite:///{tmp_path}/r.db"))
    writer, _ = _writer(tmp_path, store)
    writer.spool.put = lambda item: (_ for _ in ()).throw(SpoolError("disk full (test)"))  # type: ignore[method-assign]
    store.down = True
    writer.write([], _run_batch("k"))
    with caplog.at_level(logging.ERROR, logger="rundossier"):
        writer.close()
    assert any("lost 1 record(s) at exit" in r.getMessage() for r in caplog.records)


def test_a_spent_budget_spools_network_writes_without_trying() -> None:
    writer = Writer(lambda: None, lambda: None, Spool(tempfile.mkdtemp()), local_store=False)  # type: ignore[arg-type,return-value]
    tried: list[int] = []
    with pytest.raises(Unavailable):
        writer.bounded("store", lambda: tried.append(1), Budget(0.0))
    assert tried == []


def test_a_network_call_that_hangs_costs_its_timeout_and_blocks_the_next_until_it_returns() -> None:
    calls = _NetworkCalls("database")
    release = threading.Event()
    start = time.monotonic()
    with pytest.raises(Unavailable, match="did not answer within 0.2s"):
        calls.call(release.wait, 0.2)
    assert time.monotonic() - start < 2
    with pytest.raises(Unavailable, match="has not answered an earlier call"):
        calls.call(lambda: 1, 5)
    release.set()
    assert _wait(lambda: _answers(calls))


def _answers(calls: _NetworkCalls) -> bool:
    try:
        return calls.call(lambda: 42, 1) == 42
    except Unavailable:
        return False


def test_a_network_call_s_own_error_reaches_the_caller() -> None:
    def boom() -> None:
        raise StoreUnavailable("refused")

    with pytest.raises(StoreUnavailable, match="refused"):
        _NetworkCalls("database").call(boom, 1)


# -- the delivered history does not depend on faults ---------------------------------------------

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

# one operation of a pipeline: (what, run number, step number, outcome)
OPS = st.lists(
    st.tuples(
        st.sampled_from(["start_step", "finish_step", "event", "finish_run"]),
        st.integers(0, 1),
        st.integers(0, 2),
        st.sampled_from(["success", "failed"]),
    ),
    min_size=1,
    max_size=25,
)


def _play(rec: Recorder, ops: list[tuple[str, int, int, str]], faults: Callable[[int], None]) -> None:
    runs = {n: rec.start_run(f"flow{n}", f"key{n}", started_at=T0, lease=False) for n in (0, 1)}
    steps: dict[tuple[int, int], Any] = {}
    ended: set[int] = set()
    for i, (op, r, s, outcome) in enumerate(ops):
        faults(i)
        ts = T0 + timedelta(seconds=i + 1)
        if r in ended:
            continue
        if op == "start_step" and (r, s) not in steps:
            steps[r, s] = rec.start_step(runs[r], f"step{s}", started_at=ts, upstream=[f"step{s - 1}"] if s else None)
        elif op == "finish_step" and (r, s) in steps and not steps[r, s].finished:
            error = ValueError(f"step {s} of run {r} failed") if outcome == "failed" else None
            steps[r, s].finish(outcome, error, finished_at=ts)
        elif op == "event":
            rec.record_event(runs[r], "first_work", f"op {i}", step_id=f"step{s}", try_number=1, ts=ts)
        elif op == "finish_run":
            rec.finish_run(runs[r], outcome, f"run {r} failed" if outcome == "failed" else None, finished_at=ts)
            ended.add(r)


def _history(store: RunStore) -> dict[str, Any]:
    """Everything recorded, keyed by what is stable across two recordings (not ids or write times)."""
    out: dict[str, Any] = {}
    for key in ("key0", "key1"):
        run = store.find_run("python", key.replace("key", "flow"), key)
        if run is None:
            out[key] = None
            continue
        cols = ("status", "started_at", "finished_at", "duration_ms", "error_type", "error_message", "root_step_id")
        out[key] = {
            "run": tuple(getattr(run, c) for c in cols),
            "steps": sorted(
                (s.step_id, s.try_number, s.status, s.started_at, s.finished_at, s.error_type, str(s.upstream))
                for s in store.list_steps(run.run_id)
            ),
            "events": sorted((e.kind, e.step_id or "", e.ts, e.summary) for e in store.list_events(run.run_id)),
        }
    return out


def _recorder(home: Path) -> tuple[Recorder, FlakyStore]:
    settings = Settings.resolve(explicit={"home": str(home), "write_budget": 1})
    flaky = FlakyStore(RunStore(settings.db_url))
    return Recorder(settings, store=flaky, live_log_interval=None), flaky  # type: ignore[arg-type]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, down=st.sets(st.integers(0, 25)), cut=st.sets(st.integers(0, 25)))
def test_history_after_faults_and_flush_equals_history_without_faults(
    ops: list[tuple[str, int, int, str]], down: set[int], cut: set[int]
) -> None:
    with tempfile.TemporaryDirectory() as clean_dir, tempfile.TemporaryDirectory() as faulty_dir:
        clean, _ = _recorder(Path(clean_dir))
        _play(clean, ops, lambda i: None)

        faulty, flaky = _recorder(Path(faulty_dir))

        def faults(i: int) -> None:
            flaky.down = i in down
            flaky.fail_after_commit = i in cut

        _play(faulty, ops, faults)
        flaky.down = flaky.fail_after_commit = False
        assert _wait(lambda: faulty.flush().remaining == 0 and not faulty.spool.pending())
        faulty.writer.close()
        assert _history(flaky) == _history(clean.store)
        clean.close()
        faulty.close()


class DownBlobs:
    """Blob storage that refuses everything until `up` is set."""

    def __init__(self) -> None:
        self.up = False
        self.puts: list[str] = []

    def put(self, key: str, data: bytes) -> str:
        if not self.up:
            raise StorageError("blob store put failed: connection refused (test)")
        self.puts.append(key)
        return key

    def uri_for(self, key: str) -> str:
        return "s3://b/" + key

    def exists(self, uri: str) -> bool:
        if not self.up:
            raise StorageError("blob store lookup failed: connection refused (test)")
        return False


def test_an_empty_spool_does_not_end_an_outage_before_the_backend_answers(tmp_path: Path) -> None:
    # the recovery may run before the write that found the outage has spooled anything
    blobs = DownBlobs()
    writer = Writer(lambda: blobs, lambda: None, Spool(tmp_path / "spool"), warn=lambda m: None, local_blobs=False)  # type: ignore[arg-type,return-value]
    writer._open("blobs", "connection refused (test)")
    assert not writer.try_recover() and writer.blobs_down
    blobs.up = True
    assert writer.try_recover() and not writer.blobs_down


def test_calls_one_at_a_time_use_one_thread_and_side_by_side_calls_use_more() -> None:
    """Each network thread may hold a database connection: one is started only when none is idle."""
    calls = _NetworkCalls("database")
    for i in range(50):
        assert calls.call(lambda i=i: i, 5) == i
    assert calls.threads == 1
    release, started = threading.Event(), threading.Semaphore(0)

    def slow() -> int:
        started.release()
        release.wait(10)
        return 1

    waiters = [threading.Thread(target=calls.call, args=(slow, 10)) for _ in range(3)]
    for t in waiters:
        t.start()
    for _ in waiters:
        assert started.acquire(timeout=5)  # three calls run side by side, each on its own thread
    release.set()
    for t in waiters:
        t.join(10)
    assert calls.threads == 3
    assert [calls.call(lambda: 7, 5) for _ in range(20)] == [7] * 20
    assert calls.threads == 3
