"""Never break the host, never lose the trace: storage down and database locked during a failure."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from rundossier import Recorder
from rundossier.read.reader import run_trace
from rundossier.settings import Settings
from tests.s3server import free_port
from tests.tcpproxy import TcpProxy


class PipelineError(RuntimeError):
    pass


def _fail() -> None:
    raise PipelineError("the step's own error")


def _settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings.resolve(explicit={"home": str(tmp_path / "home"), **extra})


def test_storage_unreachable_keeps_the_exception_and_spools_the_trace(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    down = _settings(
        tmp_path,
        storage_url="s3://rundossier-test/blobs",
        storage_options={
            "key": "k",
            "secret": "s",
            "client_kwargs": {"endpoint_url": dead, "region_name": "us-east-1"},
        },
    )
    rec = Recorder(down)
    with caplog.at_level(logging.WARNING, logger="rundossier"), pytest.raises(PipelineError) as excinfo:
        with rec.run("f") as run, run.step("s"):
            print("some output")
            _fail()
    assert str(excinfo.value) == "the step's own error"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "blob storage is unavailable" in warnings[0] and "spool" in warnings[0]
    row = rec.store.get_run(run.run_id)
    assert row.status == "failed" and row.spooled and row.error_type.endswith("PipelineError")
    assert len(rec.spool.pending()) == 1

    # storage comes back (here: the same settings with local storage), `flush` delivers it
    up = Recorder(_settings(tmp_path))
    report = up.flush()
    assert (report.delivered, report.failed, report.remaining) == (1, 0, 0)
    assert up.spool.pending() == []
    row = up.store.get_run(run.run_id)
    assert not row.spooled and not up.store.get_step(run.run_id, "s").spooled
    # the URI recorded while storage was down is the one the trace now lives at
    assert row.trace_uri.startswith("s3://rundossier-test/blobs/")


def test_spooled_trace_is_delivered_to_the_uri_the_row_points_at(tmp_path: Path) -> None:
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the storage directory should be")
    rec = Recorder(_settings(tmp_path, storage_url=f"file://{blocker}/blobs"))
    with pytest.raises(PipelineError):
        with rec.run("f") as run, run.step("s"):
            _fail()
    assert rec.store.get_run(run.run_id).spooled
    blocker.unlink()  # storage is fixed
    assert rec.flush().delivered == 1
    text = run_trace(rec.store, rec.blobs, run.run_id).text
    assert "PipelineError: the step's own error" in text


def test_database_locked_keeps_the_exception_and_flush_delivers_rows_and_trace(tmp_path: Path) -> None:
    settings = _settings(tmp_path, db_timeout=0.2)
    rec = Recorder(settings)
    _ = rec.store  # create the schema before locking
    db = settings.db_url.removeprefix("sqlite:///")
    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(PipelineError) as excinfo:
            with rec.run("locked_flow", run_key="k1") as run, run.step("s"):
                _fail()
        assert str(excinfo.value) == "the step's own error"
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert rec.store.find_run("python", "locked_flow", "k1") is None
    assert len(rec.spool.pending()) >= 1
    report = rec.flush()
    assert report.failed == 0 and rec.spool.pending() == []
    row = rec.store.find_run("python", "locked_flow", "k1")
    assert row is not None and row.status == "failed" and not row.spooled
    assert "PipelineError" in run_trace(rec.store, rec.blobs, row.run_id).text
    assert rec.store.get_step(row.run_id, "s").status == "failed"


def test_the_next_successful_write_flushes_the_spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rundossier.record import recorder as recorder_module

    monkeypatch.setattr(recorder_module, "SPOOL_CHECK_EVERY_S", 0.0)
    blocker = tmp_path / "blocked"
    blocker.write_text("x")
    rec = Recorder(_settings(tmp_path, storage_url=f"file://{blocker}/b"))
    with pytest.raises(PipelineError):
        with rec.run("f") as run, run.step("s"):
            _fail()
    assert rec.spool.pending()
    blocker.unlink()
    with rec.run("g") as ok, ok.step("t"):
        pass
    assert rec.spool.pending() == []
    assert not rec.store.get_run(run.run_id).spooled


def test_a_broken_recorder_never_changes_the_outcome(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(_settings(tmp_path))

    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("bug inside rundossier")

    monkeypatch.setattr(rec.store, "upsert_step", boom)
    monkeypatch.setattr(rec.writer, "write", boom)
    with rec.run("f") as run, run.step("s"):
        value = 42
    assert value == 42
    with pytest.raises(PipelineError):
        with rec.run("f") as run, run.step("s"):
            _fail()


def test_an_unwritable_home_still_lets_the_exception_through(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    home = tmp_path / "ro"
    home.mkdir()
    blocker = tmp_path / "blocked"
    blocker.write_text("x")
    settings = Settings.resolve(explicit={"home": str(home), "storage_url": f"file://{blocker}/b"})
    rec = Recorder(settings)
    _ = rec.store
    (home / "spool").write_text("not a directory")  # the spool cannot be created
    with caplog.at_level(logging.WARNING, logger="rundossier"), pytest.raises(PipelineError):
        with rec.run("f") as run, run.step("s"):
            _fail()
    assert any("could not" in r.getMessage() for r in caplog.records)


# -- the one writer: nothing lost, bounded delay, one warning ------------------------------------

LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()  # hold the lock until the test closes our stdin
conn.execute("ROLLBACK")
"""


@contextmanager
def _locked_by_another_process(db: str) -> Iterator[None]:
    proc = subprocess.Popen([sys.executable, "-c", LOCKER, db], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"locked"
        yield
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def _four_steps(rec: Recorder) -> str:
    with pytest.raises(PipelineError) as excinfo:
        with rec.run("locked_flow", run_key="k4") as run:
            for name, upstream in (("a", []), ("b", ["a"]), ("c", ["b"])):
                with run.step(name, upstream=upstream):
                    print(f"step {name} did its work")
            with run.step("d", upstream=["c"]):
                _fail()
    assert str(excinfo.value) == "the step's own error"
    return run.run_id


def test_a_locked_database_loses_no_step_and_flush_delivers_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path, write_budget=0.5)
    rec = Recorder(settings)
    _ = rec.store  # the schema exists before the lock
    db = settings.db_url.removeprefix("sqlite:///")
    with caplog.at_level(logging.WARNING, logger="rundossier"), _locked_by_another_process(db):
        _four_steps(rec)
        assert rec.store.find_run("python", "locked_flow", "k4") is None  # nothing got through
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "database is unavailable" in warnings[0]
    # the lock is gone: `rundossier flush` (the command) delivers everything, in order
    from rundossier.cli.main import main

    monkeypatch.setenv("RUNDOSSIER_HOME", str(settings.home))
    assert main(["flush"]) == 0
    row = rec.store.find_run("python", "locked_flow", "k4")
    assert row is not None and row.status == "failed" and row.root_step_id == "d" and not row.spooled
    steps = {s.step_id: s for s in rec.store.list_steps(row.run_id)}
    assert sorted(steps) == ["a", "b", "c", "d"]
    assert [steps[n].status for n in "abcd"] == ["success", "success", "success", "failed"]
    assert all(s.started_at is not None and s.finished_at is not None for s in steps.values())
    assert [steps[n].upstream for n in "bcd"] == [["a"], ["b"], ["c"]]
    assert all(s.log_lines_stdout == 1 for n, s in steps.items() if n != "d")
    assert "PipelineError: the step's own error" in run_trace(rec.store, rec.blobs, row.run_id).text
    assert rec.spool.pending() == []


def test_a_locked_database_delays_a_task_by_one_budget_at_most(tmp_path: Path) -> None:
    # the old behaviour: every write waited the 10 s timeout in turn (50 s for one step)
    settings = _settings(tmp_path, write_budget=1, db_timeout=10)
    rec = Recorder(settings)
    _ = rec.store
    db = settings.db_url.removeprefix("sqlite:///")
    with _locked_by_another_process(db):
        start = time.monotonic()
        with pytest.raises(PipelineError):
            with rec.run("slow_flow") as run, run.step("only"):
                _fail()
        elapsed = time.monotonic() - start
    assert elapsed < 5, f"the task waited {elapsed:.1f}s on a locked database (budget 1s)"
    assert rec.flush().failed == 0
    assert rec.store.get_run(run.run_id).status == "failed"


@contextmanager
def _black_hole() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung database or S3 endpoint)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()


@pytest.mark.postgres
def test_a_database_that_never_answers_costs_one_budget_and_loses_nothing(tmp_path: Path, pg_url: str) -> None:
    with _black_hole() as port:
        hung = Recorder(_settings(tmp_path, db_url=f"postgresql+psycopg://rd@127.0.0.1:{port}/rd", write_budget=1))
        start = time.monotonic()
        with pytest.raises(PipelineError) as excinfo:
            with hung.run("hung_db", run_key="h1") as run, run.step("s"):
                print("output before the failure")
                _fail()
        elapsed = time.monotonic() - start
        assert str(excinfo.value) == "the step's own error"
        assert elapsed < 5, f"the task waited {elapsed:.1f}s on a database that never answers (budget 1s)"
        assert hung.spool.pending()
    # the database is back (here: the real one): what waited is delivered there
    back = Recorder(_settings(tmp_path, db_url=pg_url))
    report = back.flush()
    assert (report.failed, report.remaining) == (0, 0)
    row = back.store.find_run("python", "hung_db", "h1")
    assert row is not None and row.status == "failed" and row.root_step_id == "s"
    step = back.store.get_step(row.run_id, "s")
    assert step.status == "failed" and step.started_at is not None and step.log_lines_stdout == 1
    assert "PipelineError" in run_trace(back.store, back.blobs, row.run_id).text
    assert run.run_id  # the handle the task got is a valid run id either way


def test_storage_that_never_answers_costs_one_budget_and_loses_no_trace(tmp_path: Path) -> None:
    with _black_hole() as port:
        settings = _settings(
            tmp_path,
            storage_url="s3://rd-hung/blobs",
            storage_options={"key": "k", "secret": "s", "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}"}},
            write_budget=1,
        )
        rec = Recorder(settings)
        start = time.monotonic()
        with pytest.raises(PipelineError):
            with rec.run("hung_storage") as run, run.step("s"):
                _fail()
        elapsed = time.monotonic() - start
        assert elapsed < 5, f"the task waited {elapsed:.1f}s on storage that never answers (budget 1s)"
    row = rec.store.get_run(run.run_id)
    assert row.status == "failed" and row.spooled and row.trace_uri.startswith("s3://rd-hung/blobs/")
    items = [rec.spool.load(p).item for p in rec.spool.pending()]
    keys = [key for item in items for key, _ in item.blobs]
    assert any(k.endswith("s.1.trace.txt.gz") for k in keys)


# -- a killed process: its run and step end as crashed ------------------------------------------

DOOMED = """
import os, signal, sys
from rundossier import Recorder
from rundossier.settings import Settings

rec = Recorder(Settings.resolve(explicit={"home": sys.argv[1], "heartbeat": 0.2}))
with rec.run("doomed", run_key="k") as run:
    with run.step("extract"):
        pass
    with run.step("transform", upstream=["extract"]):
        print(run.run_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_run_is_shown_as_crashed_with_its_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    proc = subprocess.run([sys.executable, "-c", DOOMED, str(home)], capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    run_id = proc.stdout.decode().split()[0]
    reader = Recorder(Settings.resolve(explicit={"home": str(home)}))
    # read through the CLI as a user would, until the lease (4 x 0.2 s) has run out
    from rundossier.cli.main import main

    monkeypatch.setenv("RUNDOSSIER_HOME", str(home))
    deadline = time.monotonic() + 30
    while reader.store.get_run(run_id).status == "running" and time.monotonic() < deadline:
        assert main(["runs", "--json"]) == 0
        time.sleep(0.2)
    row = reader.store.get_run(run_id)
    assert row.status == "crashed" and row.error_type == "Crashed (no heartbeat)"
    assert "no heartbeat since" in (row.error_message or "")
    assert (row.root_step_id, row.failure_class) == ("transform", "killed")
    assert row.finished_at is not None and row.finished_at >= row.started_at
    steps = {s.step_id: s.status for s in reader.store.list_steps(run_id)}
    assert steps == {"extract": "success", "transform": "crashed"}
    kinds = [e.kind for e in reader.store.list_events(run_id)]
    assert kinds.count("heartbeat_lost") == 2  # the step and the run, once each
    # reaping again changes nothing
    assert not reader.store.reap_expired()
    assert [e.kind for e in reader.store.list_events(run_id)].count("heartbeat_lost") == 2


def test_a_running_run_is_never_reaped_while_its_process_lives(tmp_path: Path) -> None:
    rec = Recorder(_settings(tmp_path, heartbeat=0.1))
    with rec.run("alive") as run, run.step("long"):
        time.sleep(1.0)  # ten heartbeats, two and a half leases
        assert not rec.store.reap_expired()
        assert rec.store.get_run(run.run_id).status == "running"
    assert rec.store.get_run(run.run_id).status == "success"


TORN = """
import os, signal, sys
from rundossier import Recorder
from rundossier.storage.blobs import blobstore
from rundossier.settings import Settings

real_put = blobstore._put_local

def torn(path, data):
    if path.endswith("trace.txt.gz"):
        # die half way through writing the trace
        import pathlib
        pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(pathlib.Path(path).with_name(".tmp-torn"), "wb") as f:
            f.write(data[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    return real_put(path, data)

blobstore._put_local = torn
rec = Recorder(Settings.resolve(explicit={"home": sys.argv[1], "heartbeat": 0.2}))
with rec.run("torn", run_key="k") as run, run.step("s"):
    print(run.run_id, flush=True)
    raise RuntimeError("the failure whose trace was being written")
"""


def test_a_worker_killed_while_writing_a_trace_leaves_no_torn_blob(tmp_path: Path) -> None:
    from rundossier.retention.orphans import sweep_orphans

    home = tmp_path / "home"
    proc = subprocess.run([sys.executable, "-c", TORN, str(home)], capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    run_id = proc.stdout.decode().split()[0]
    rec = Recorder(Settings.resolve(explicit={"home": str(home)}))
    keys = [b.key for b in rec.blobs.iter_blobs("python/torn")]
    assert not any(k.endswith("trace.txt.gz") for k in keys)  # no half-written trace under its name
    time.sleep(1.0)  # the lease (4 x 0.2 s) runs out
    rec.store.reap_expired()
    row = rec.store.get_run(run_id)
    assert row.status == "crashed" and rec.store.get_step(run_id, "s").status == "crashed"
    report = sweep_orphans(rec.store, rec.blobs, grace=timedelta(0))
    assert report.complete
    assert not [b.key for b in rec.blobs.iter_blobs("python/torn") if ".tmp-" in b.key]


# -- faults of real backends mid-run: PostgreSQL cut, S3 stopped and slow, a read-only SQLite -----


def _one_warning(caplog: pytest.LogCaptureFixture, what: str) -> None:
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name == "rundossier"]
    assert len(warnings) == 1 and what in warnings[0], warnings


def _ok_then_fail(rec: Recorder, key: str, fault: Callable[[], None]) -> tuple[str, float]:
    """Step `a` succeeds, the fault happens, step `b` fails; the task's own error passes through."""
    start = time.monotonic()
    with pytest.raises(PipelineError) as excinfo:
        with rec.run("faulty", run_key=key) as run:
            with run.step("a"):
                print("a did its work")
            fault()
            with run.step("b", upstream=["a"]):
                print("b is about to fail")
                _fail()
    assert str(excinfo.value) == "the step's own error"
    return run.run_id, time.monotonic() - start


def _delivered_once(rec: Recorder, key: str) -> None:
    row = rec.store.find_run("python", "faulty", key)
    assert row is not None and row.status == "failed" and row.root_step_id == "b" and not row.spooled
    steps = rec.store.list_steps(row.run_id)
    assert sorted((s.step_id, s.status) for s in steps) == [("a", "success"), ("b", "failed")]
    assert all(s.started_at and s.finished_at and s.log_lines_stdout == 1 and not s.spooled for s in steps)
    events = [e.kind for e in rec.store.list_events(row.run_id)]
    assert sorted(events) == ["run_finished", "step_failed"]
    text = run_trace(rec.store, rec.blobs, row.run_id).text
    assert "Error: the step's own error" in text and "b is about to fail" in text


@pytest.mark.postgres
def test_postgres_connections_cut_mid_run(tmp_path: Path, pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(pg_url)
    with TcpProxy(url.port or 5432) as proxy:
        through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        rec = Recorder(_settings(tmp_path, db_url=through, write_budget=2))
        _ = rec.store  # connected through the proxy before the cut
        with caplog.at_level(logging.WARNING, logger="rundossier"):
            _, elapsed = _ok_then_fail(rec, "pg-cut", proxy.cut)
        assert elapsed < 8, f"the task waited {elapsed:.1f}s (budget 2s)"
        _one_warning(caplog, "database is unavailable")
        assert rec.spool.pending()
        proxy.heal()  # the database is reachable again: the process's own recovery delivers
        assert _wait_for(lambda: not rec.spool.pending() and not rec.writer.store_down)
        _delivered_once(rec, "pg-cut")


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from tests.s3server import moto_s3_server

    with moto_s3_server() as endpoint:
        yield endpoint


@pytest.mark.s3
@pytest.mark.parametrize("fault", ["stopped", "slow"])
def test_s3_stopped_or_slow_during_a_failure(
    tmp_path: Path, moto_endpoint: str, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.s3server import create_bucket, storage_options

    bucket = create_bucket(moto_endpoint)
    with TcpProxy(int(moto_endpoint.rsplit(":", 1)[1])) as proxy:
        settings = _settings(
            tmp_path,
            storage_url=f"s3://{bucket}/rd",
            storage_options=storage_options(f"http://127.0.0.1:{proxy.port}"),
            write_budget=2,
        )
        rec = Recorder(settings, live_log_interval=None)
        with caplog.at_level(logging.WARNING, logger="rundossier"):
            _, elapsed = _ok_then_fail(rec, f"s3-{fault}", proxy.cut if fault == "stopped" else proxy.stall)
        assert elapsed < 8, f"the task waited {elapsed:.1f}s (budget 2s)"
        _one_warning(caplog, "blob storage is unavailable")
        row = rec.store.find_run("python", "faulty", f"s3-{fault}")
        assert row.status == "failed" and row.spooled  # the rows are there; the trace waits
        proxy.heal()
        assert _wait_for(lambda: not rec.spool.pending() and not rec.writer.blobs_down, timeout=60)
        _delivered_once(rec, f"s3-{fault}")


@pytest.mark.s3
def test_a_deadline_spools_what_slow_storage_has_not_taken_by_then(tmp_path: Path, moto_endpoint: str) -> None:
    """Storage answers every call, slowly, well within the write budget: without a deadline the end
    of a failed step takes as long as its calls do. Airflow's end hook sets one (it has only so long
    before the task's process is ended): past it, what is left waits in the spool, and is
    delivered, whole, when storage is fast again."""
    from tests.s3server import create_bucket, storage_options

    bucket = create_bucket(moto_endpoint)
    with TcpProxy(int(moto_endpoint.rsplit(":", 1)[1])) as proxy:
        settings = _settings(
            tmp_path,
            storage_url=f"s3://{bucket}/rd",
            storage_options=storage_options(f"http://127.0.0.1:{proxy.port}"),
            write_budget=60,
        )
        rec = Recorder(settings, live_log_interval=None)
        run = rec.start_run("faulty", "slow-deadline")
        step = rec.start_step(run, "b")
        print("b is about to fail")
        proxy.slow(1.0)
        step.budget.until(time.monotonic() + 2.0)
        start = time.monotonic()
        try:
            _fail()
        except PipelineError as exc:
            step.finish("failed", exc)
        elapsed = time.monotonic() - start
        assert elapsed < 4.5, f"the end of the step took {elapsed:.1f}s (deadline 2s)"
        assert rec.spool.pending(), "nothing was spooled"
        proxy.heal()
        rec.finish_run(run, "failed", None)
        assert _wait_for(lambda: not rec.spool.pending() and not rec.writer.blobs_down, timeout=60)
        row = rec.store.find_run("python", "faulty", "slow-deadline")
        (b,) = rec.store.list_steps(row.run_id)
        assert (b.status, b.spooled) == ("failed", False) and b.trace_uri
        text = run_trace(rec.store, rec.blobs, row.run_id).text
        assert "PipelineError: the step's own error" in text
        rec.close()


def test_a_read_only_sqlite_directory(tmp_path: Path) -> None:
    """The database and its directory are read-only for the user the task runs as."""
    shared = tmp_path / "shared"
    (shared / "db").mkdir(parents=True)
    shared.chmod(0o777)
    (shared / "db").chmod(0o777)
    # root ignores permissions: the child runs without the capabilities that let it (util-linux's setpriv)
    unprivileged = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    proc = subprocess.run(
        [*unprivileged, sys.executable, "-c", READ_ONLY_DB, str(shared)], capture_output=True, timeout=120
    )
    out = proc.stdout.decode()
    assert proc.returncode == 0, out + proc.stderr.decode()
    assert "task error passed through" in out and "spooled while read-only" in out
    warnings = [ln for ln in proc.stderr.decode().splitlines() if "unavailable" in ln]
    assert len(warnings) == 1 and "database is unavailable" in warnings[0]
    rec = Recorder(
        Settings.resolve(explicit={"home": str(shared / "home"), "db_url": f"sqlite:///{shared}/db/runs.db"})
    )
    _delivered_once(rec, "ro")


READ_ONLY_DB = """
import logging, os, stat, sys, time
from pathlib import Path
from rundossier import Recorder
from rundossier.settings import Settings

logging.basicConfig(level=logging.WARNING)
shared = Path(sys.argv[1])
db_dir = shared / "db"
rec = Recorder(Settings.resolve(explicit={
    "home": str(shared / "home"), "db_url": f"sqlite:///{db_dir}/runs.db", "write_budget": 1}), live_log_interval=None)
_ = rec.store
rec.store.close()  # (an open connection keeps writing through its open files: the fault is at open)
for p in [db_dir, *db_dir.iterdir()]:
    p.chmod(0o555 if p.is_dir() else 0o444)
try:
    with rec.run("faulty", run_key="ro") as run:
        with run.step("a"):
            print("a did its work")
        with run.step("b", upstream=["a"]):
            print("b is about to fail")
            raise RuntimeError("the step's own error")
except RuntimeError as exc:
    assert str(exc) == "the step's own error"
    print("task error passed through")
if rec.spool.pending():
    print("spooled while read-only")
for p in [db_dir, *db_dir.iterdir()]:
    p.chmod(0o777 if p.is_dir() else 0o666)
deadline = time.monotonic() + 60
while (rec.spool.pending() or rec.writer.store_down) and time.monotonic() < deadline:
    time.sleep(0.1)
print("delivered" if not rec.spool.pending() else "NOT delivered")
"""


FULL_SPOOL_DISK = """
import os, resource, sys, time
from pathlib import Path
from rundossier import Recorder
from rundossier.settings import Settings

home, blocker = Path(sys.argv[1]), Path(sys.argv[2])
rec = Recorder(Settings.resolve(explicit={
    "home": str(home), "storage_url": f"file://{blocker}/blobs"}), live_log_interval=None)
_ = rec.store
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, hard))  # no file may grow past 256 KiB
try:
    with rec.run("faulty", run_key="full") as run:
        with run.step("a"):
            print("a did its work")
        with run.step("b", upstream=["a"]):
            print("b is about to fail")
            # a trace bigger than the limit even gzipped (random bytes do not compress)
            raise RuntimeError("the step's own error: " + os.urandom(400_000).hex())
except RuntimeError:
    print("task error passed through")
print("held", rec.writer.held)
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # the disk has room again
blocker.unlink()  # and storage is back
deadline = time.monotonic() + 60
while (rec.writer.held or rec.spool.pending() or rec.writer.blobs_down) and time.monotonic() < deadline:
    time.sleep(0.1)
print("delivered" if not (rec.writer.held or rec.spool.pending()) else "NOT delivered")
"""


def test_a_full_disk_under_the_spool_holds_records_until_it_has_room(tmp_path: Path) -> None:
    home, blocker = tmp_path / "home", tmp_path / "blocked"
    blocker.write_text("a file where the storage directory should be")
    proc = subprocess.run(
        [sys.executable, "-c", FULL_SPOOL_DISK, str(home), str(blocker)], capture_output=True, timeout=120
    )
    out = proc.stdout.decode()
    assert proc.returncode == 0, out + proc.stderr.decode()
    lines = out.splitlines()
    assert "task error passed through" in lines and "delivered" in lines
    assert int(next(ln for ln in lines if ln.startswith("held ")).split()[1]) >= 1
    rec = Recorder(Settings.resolve(explicit={"home": str(home), "storage_url": f"file://{blocker}/blobs"}))
    row = rec.store.find_run("python", "faulty", "full")
    assert row is not None and row.status == "failed" and not row.spooled
    assert "the step's own error" in run_trace(rec.store, rec.blobs, row.run_id).text


def _wait_for(cond: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()
