"""The Prefect scale deployment: a Prefect server, a process work pool with 4 workers, PostgreSQL + S3.

Everything runs on loopback and in temporary directories: Prefect's server (its own home; its own
database in a throwaway PostgreSQL database, since SQLite locks up under 4 workers) on a free port,
4 `prefect worker start --type process` processes, rundossier's
run history in a throwaway PostgreSQL database (tests/pgdb.py), its traces and logs in a bucket of
a moto S3 server (tests/s3server.py), and the RunDossier Block saved in that Prefect server.

These run in `.venv-prefect` (scripts/test-scale-prefect.sh); the core environment has no Prefect
and skips this folder.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from tests.s3server import free_port

if importlib.util.find_spec("prefect") is None:  # the core environment: scripts/test-scale-prefect.sh runs these
    collect_ignore_glob = ["test_*.py"]
else:
    # before Prefect is imported: its settings are read from the environment once
    _PREFECT_HOME = tempfile.mkdtemp(prefix="rd-scale-prefect-home-")
    _PORT = free_port()
    os.environ["PREFECT_HOME"] = _PREFECT_HOME
    os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{_PORT}/api"
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "WARNING"
    os.environ["RD_SCALE_BLOCK"] = "rd-scale"  # the flow loads its Block when the test loads it to deploy it
    for var in ("PREFECT_API_KEY", "PREFECT_PROFILE"):
        os.environ.pop(var, None)

FLOW_SRC = Path(__file__).with_name("flowsrc")
POOL = "rd-scale-pool"
BLOCK = "rd-scale"
WORKERS = 4
#: flow-run processes one worker runs at a time (4 workers x 2 on a 2-core machine)
WORKER_LIMIT = int(os.environ.get("RD_SCALE_WORKER_LIMIT", "2"))


def wait_for(probe: Any, timeout_s: float, what: str, interval: float = 0.25) -> Any:
    """Poll `probe` until it returns something truthy, at most `timeout_s` seconds."""
    end = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what} after {timeout_s:.0f} s")
        time.sleep(interval)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""


def _start(name: str, args: list[str], env: dict[str, str], logs: Path) -> Proc:
    log = logs / f"{name}.log"
    out: IO[bytes] = log.open("wb")
    popen = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    out.close()
    return Proc(name, popen, log)


def _stop(procs: list[Proc]) -> None:
    for p in procs:
        if p.popen.poll() is None:
            p.popen.terminate()
    for p in procs:
        try:
            p.popen.wait(20)
        except subprocess.TimeoutExpired:
            p.popen.kill()
            p.popen.wait(10)


def _prefect() -> str:
    return str(Path(sys.executable).with_name("prefect"))


@dataclass
class Deployment:
    """What the tests need to reach the deployment and its recordings."""

    name: str
    db_url: str
    storage_url: str
    storage_options: dict[str, Any]
    home: Path
    markers: Path
    workers: list[Proc]
    server: Proc


@pytest.fixture(scope="module")
def prefect_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The whole deployment, up and ready to take flow runs; stopped and removed afterwards."""
    from tests.pgdb import pg_unavailable_reason, temporary_database
    from tests.s3server import create_bucket, moto_s3_server, storage_options

    reason = pg_unavailable_reason()
    if reason is not None:
        pytest.fail(reason)
    base = tmp_path_factory.mktemp("scale-prefect")
    logs, markers, home, src = base / "logs", base / "markers", base / "rdhome", base / "flowsrc"
    for d in (logs, markers, home):
        d.mkdir()
    shutil.copytree(FLOW_SRC, src, ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ)
    env.pop("PGAPPNAME", None)
    procs: list[Proc] = []
    with moto_s3_server() as endpoint, temporary_database() as db_url, temporary_database() as prefect_db:
        bucket = create_bucket(endpoint)
        options = storage_options(endpoint)
        storage_url = f"s3://{bucket}/dossiers"
        try:
            # Prefect's own database on PostgreSQL too: its SQLite locks up under 4 workers' state updates
            server_env = dict(
                env,
                PREFECT_UI_ENABLED="false",
                PREFECT_SERVER_LOGGING_LEVEL="WARNING",
                PREFECT_API_DATABASE_CONNECTION_URL=prefect_db.replace(
                    "postgresql+psycopg://", "postgresql+asyncpg://"
                ),
                PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE="4",
                PREFECT_SERVER_DATABASE_SQLALCHEMY_MAX_OVERFLOW="4",
            )
            server = _start(
                "server",
                [_prefect(), "server", "start", "--host", "127.0.0.1", "--port", str(_PORT), "--no-ui"],
                server_env,
                logs,
            )
            procs.append(server)
            health = os.environ["PREFECT_API_URL"] + "/health"
            try:
                wait_for(lambda: server.popen.poll() is not None or _answers(health), 120, "the Prefect server")
            except AssertionError:
                raise AssertionError(f"the Prefect server did not start:\n{server.tail()}") from None
            assert server.popen.poll() is None, server.tail()

            from rundossier.prefect import RunDossier

            RunDossier(
                storage_url=storage_url, storage_options=options, db_url=db_url, home=str(home), keep_days=30
            ).save(BLOCK, overwrite=True)
            subprocess.run(
                [_prefect(), "work-pool", "create", POOL, "--type", "process", "--overwrite"],
                env=env,
                check=True,
                capture_output=True,
                timeout=120,
            )
            name = _deploy(src)
            worker_env = dict(
                env,
                RD_SCALE_BLOCK=BLOCK,
                RD_SCALE_MARKERS=str(markers),
                PREFECT_WORKER_QUERY_SECONDS="1",
                PREFECT_WORKER_PREFETCH_SECONDS="5",
                PYTHONUNBUFFERED="1",
            )
            for i in range(WORKERS):
                procs.append(
                    _start(
                        f"worker-{i}",
                        [
                            _prefect(),
                            "worker",
                            "start",
                            "--pool",
                            POOL,
                            "--type",
                            "process",
                            "--name",
                            f"rd-scale-worker-{i}",
                            "--limit",
                            str(WORKER_LIMIT),
                        ],
                        worker_env,
                        logs,
                    )
                )
            yield Deployment(
                name=name,
                db_url=db_url,
                storage_url=storage_url,
                storage_options=options,
                home=home,
                markers=markers,
                workers=procs[1:],
                server=server,
            )
        finally:
            _stop(procs[1:])
            _stop(procs[:1])
            kept = Path("test-artifacts") / "scale-prefect-logs"  # the workers' and flow runs' output
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(logs, kept, dirs_exist_ok=True)
    shutil.rmtree(os.environ.get("PREFECT_HOME", ""), ignore_errors=True)


def _deploy(src: Path) -> str:
    """Deploy the flow from its source folder (a process pool runs it from there) and return its name."""
    from prefect import Flow

    fl = Flow.from_source(source=str(src), entrypoint="scale_flow.py:scale")
    deployment = fl.to_deployment(name="scale", work_pool_name=POOL)
    deployment.apply(work_pool_name=POOL)
    return f"{fl.name}/scale"
