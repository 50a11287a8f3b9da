"""The live log publisher: snapshots of growing logs only, no snapshot outliving its step, faults kept away."""

from __future__ import annotations

import threading
import time

from rundossier.core.logs import decode_live
from rundossier.record.livelog import LivePublisher
from rundossier.record.steplog import StepLog


class Storage:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.puts = 0
        self.fail = False
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    def put(self, key: str, data: bytes) -> None:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(5)
        if self.fail:
            raise OSError("storage down")
        self.puts += 1
        self.blobs[key] = data

    def delete(self, key: str) -> None:
        self.blobs.pop(key, None)


def test_publishes_only_logs_that_grew() -> None:
    s = Storage()
    pub = LivePublisher(s.put, s.delete, interval=60)
    log = StepLog()
    pub.watch("k", log)
    assert pub.publish_once() == 0  # nothing written yet
    log.write("stdout", "one")
    assert pub.publish_once() == 1
    assert pub.publish_once() == 0
    log.write("stdout", "two")
    assert pub.publish_once() == 1
    snap = decode_live(s.blobs["k"])
    assert [x.message for x in snap.lines] == ["one", "two"] and snap.parts == 0
    assert pub.unwatch(log) == "k"
    assert pub.unwatch(log) is None


def test_unwatched_before_any_snapshot_leaves_nothing_to_delete() -> None:
    s = Storage()
    pub = LivePublisher(s.put, s.delete, interval=60)
    log = StepLog()
    pub.watch("k", log)
    log.write("stdout", "x")
    assert pub.unwatch(log) is None
    assert pub.publish_once() == 0 and s.blobs == {}


def test_a_snapshot_in_flight_when_the_step_ends_is_deleted_by_the_publisher() -> None:
    s = Storage()
    s.gate = threading.Event()
    pub = LivePublisher(s.put, s.delete, interval=60)
    log = StepLog()
    pub.watch("k", log)
    log.write("stdout", "x")
    worker = threading.Thread(target=pub.publish_once)
    worker.start()
    assert s.entered.wait(5)
    assert pub.unwatch(log) is None  # never waits on storage
    s.gate.set()
    worker.join(5)
    assert s.puts == 1 and s.blobs == {}


def test_failing_storage_warns_once_and_never_raises() -> None:
    s = Storage()
    s.fail = True
    warnings: list[str] = []
    pub = LivePublisher(s.put, s.delete, interval=60, warn=warnings.append)
    log = StepLog()
    pub.watch("k", log)
    for i in range(3):
        log.write("stdout", f"line {i}")
        assert pub.publish_once() == 0
    assert len(warnings) == 1 and "storage down" in warnings[0]
    s.fail = False
    assert pub.publish_once() == 1
    assert pub.unwatch(log) == "k"


def test_the_thread_publishes_periodically_and_ends_when_idle() -> None:
    s = Storage()
    pub = LivePublisher(s.put, s.delete, interval=0.05, linger=0.2)
    log = StepLog()
    pub.watch("k", log)
    log.write("stdout", "tick")
    deadline = time.monotonic() + 5
    while "k" not in s.blobs and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "k" in s.blobs
    thread = pub._thread
    assert thread is not None and thread.is_alive()
    pub.unwatch(log)
    thread.join(5)
    assert not thread.is_alive()
    # a new step starts a new thread
    log2 = StepLog()
    pub.watch("k2", log2)
    log2.write("stdout", "again")
    deadline = time.monotonic() + 5
    while "k2" not in s.blobs and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "k2" in s.blobs
    pub.unwatch(log2)


def test_interval_must_be_positive() -> None:
    import pytest

    with pytest.raises(ValueError):
        LivePublisher(lambda k, d: None, lambda k: None, interval=0)


def test_a_key_function_is_called_once_and_only_when_a_snapshot_is_written() -> None:
    s = Storage()
    pub = LivePublisher(s.put, s.delete, interval=60)
    calls: list[int] = []

    def key() -> str:
        calls.append(1)
        return "lazy"

    quiet, chatty = StepLog(), StepLog()
    pub.watch(key, quiet)
    assert pub.unwatch(quiet) is None and calls == []  # a step that never published never made its key
    pub.watch(key, chatty)
    chatty.write("stdout", "one")
    assert pub.publish_once() == 1
    chatty.write("stdout", "two")
    assert pub.publish_once() == 1
    assert calls == [1] and set(s.blobs) == {"lazy"}
    assert pub.unwatch(chatty) == "lazy"


def test_a_failing_key_function_warns_and_never_raises() -> None:
    s = Storage()
    warnings: list[str] = []
    pub = LivePublisher(s.put, s.delete, interval=60, warn=warnings.append)

    def key() -> str:
        raise ValueError("bad step id")

    log = StepLog()
    pub.watch(key, log)
    log.write("stdout", "x")
    assert pub.publish_once() == 0
    assert len(warnings) == 1 and "bad step id" in warnings[0] and s.blobs == {}
    assert pub.unwatch(log) is None
