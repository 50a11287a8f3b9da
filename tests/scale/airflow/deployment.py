"""A production-shaped Airflow 3 on loopback: scheduler, dag-processor, api-server, and either the
LocalExecutor or the CeleryExecutor with its Celery workers (Redis as the broker, the Celery
result backend in a PostgreSQL database of its own).

Airflow's metadata lives in a throwaway PostgreSQL database of its own; rundossier records into
another one and into S3 (moto's server). Every component is a real subprocess of this venv's
`airflow`; the plugin is loaded through its entry point. The REST API (v2) triggers and reads
the dag runs, with a token from the simple auth manager.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.integrations.airflow.airflow_env import AirflowHome, ApiServer, Daemon, base_env
from tests.pgdb import temporary_database
from tests.s3server import FAKE_KEY, FAKE_SECRET, REGION, create_bucket, moto_s3_server, storage_options

DAGS = Path(__file__).resolve().parent / "dags"
DAG_ID = "rd_scale"
TERMINAL = {"success", "failed"}
RUNDOSSIER = Path(sys.executable).with_name("rundossier")
EXECUTORS = ("local", "celery")
#: the Celery case's broker: a Redis database of this test's own (flushed before and after)
REDIS_URL = os.environ.get("RUNDOSSIER_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
#: the Celery case: workers on this machine, and task slots each
CELERY_WORKERS = 2
CELERY_CONCURRENCY = 4


@dataclass
class Deployment:
    home: AirflowHome
    env: dict[str, str]
    api: ApiServer
    daemons: list[Daemon]
    rd_db_url: str
    storage_url: str
    storage_opts: dict[str, Any]
    token: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    # -- the REST API ------------------------------------------------------------------------------
    def rest(self, method: str, path: str, body: object = None) -> Any:
        if not self.token:
            self.token = self.api.token()
        status, data, _ = self.api.get(path, token=self.token, method=method, json_body=body)
        if status == 401:  # the token expired: one more with a new one
            self.token = self.api.token()
            status, data, _ = self.api.get(path, token=self.token, method=method, json_body=body)
        if status >= 300:
            raise AssertionError(f"{method} {path} answered {status}: {data[:2000]!r}")
        return json.loads(data) if data else None

    def check(self) -> None:
        for d in self.daemons:
            d.check()

    def wait_parsed(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            status, _, _ = self.api.get(f"/api/v2/dags/{DAG_ID}", token=self.token or self._token())
            if status == 200:
                return
            time.sleep(1)
        raise AssertionError(
            f"the dag-processor did not parse {DAG_ID} in {timeout:.0f} s:\n{self.daemons[0].log()[-3000:]}"
        )

    def _token(self) -> str:
        self.token = self.api.token()
        return self.token

    def trigger(self, run_id: str, conf: dict[str, Any]) -> None:
        self.rest("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"dag_run_id": run_id, "logical_date": None, "conf": conf})

    def run_states(self) -> dict[str, str]:
        data = self.rest("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?limit=1000")
        return {r["dag_run_id"]: r["state"] for r in data["dag_runs"]}

    def task_instances(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            data = self.rest("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/~/taskInstances?limit=100&offset={offset}")
            out.extend(data["task_instances"])
            offset += len(data["task_instances"])
            if not data["task_instances"] or offset >= data["total_entries"]:
                return out

    def wait_finished(self, run_ids: list[str], timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            self.check()
            states = self.run_states()
            if all(states.get(r) in TERMINAL for r in run_ids):
                return states
            time.sleep(2)
        pending = {r: states.get(r) for r in run_ids if states.get(r) not in TERMINAL}
        raise AssertionError(f"dag runs not finished in {timeout:.0f} s: {pending}\n{self.daemons[-1].log()[-4000:]}")

    # -- rundossier's CLI, as an operator runs it on a worker host -----------------------------------
    def rundossier(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(RUNDOSSIER), *args],
            env=self.env,
            cwd=self.home.path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def rundossier_popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(RUNDOSSIER), *args],
            env=self.env,
            cwd=self.home.path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def deployment_env(home: Path, af_db: str, rd_db: str, endpoint: str, bucket: str, parallelism: int) -> dict[str, str]:
    env = base_env(home)
    env.update(
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__PARALLELISM=str(parallelism),
        AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG=str(parallelism),
        # psycopg 3 (what rundossier[postgres] installs) for both of Airflow's engines
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=af_db,
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC=af_db,
        # Airflow's own pools: scheduler, dag-processor and api-server each hold at most 2 + 3
        AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE="2",
        AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW="3",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="600",
        AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME="0.2",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="False",
        RUNDOSSIER_HOME=str(home / "rundossier"),
        RUNDOSSIER_DB_URL=rd_db,
        RUNDOSSIER_STORAGE_URL=f"s3://{bucket}/rundossier",
        RUNDOSSIER_STORAGE_OPTIONS=json.dumps(storage_options(endpoint)),
        AWS_ACCESS_KEY_ID=FAKE_KEY,
        AWS_SECRET_ACCESS_KEY=FAKE_SECRET,
        AWS_DEFAULT_REGION=REGION,
    )
    return env


def redis_unavailable_reason(url: str = REDIS_URL) -> str | None:
    """None if the Celery case's Redis answers (and its client is installed), else why not."""
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
        return None
    except Exception as exc:  # noqa: BLE001
        return f"Redis at {url} is not usable for the Celery case: {type(exc).__name__}: {exc}"


@contextmanager
def redis_database(url: str = REDIS_URL) -> Iterator[str]:
    """The broker's Redis database, empty before and flushed after (only this one database)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


def celery_env(broker: str, result_db: str) -> dict[str, str]:
    """The `[celery]` section for the scheduler and every worker: the broker, the result backend
    (SQLAlchemy's URL behind Celery's `db+`) and each worker's task slots."""
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{result_db}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(CELERY_CONCURRENCY),
        "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
        "AIRFLOW__CELERY__OPERATION_TIMEOUT": "10",
    }


def celery_workers(stack: ExitStack, home: AirflowHome, env: dict[str, str]) -> list[Daemon]:
    """`airflow celery worker` x CELERY_WORKERS on this machine, each with its own Celery
    hostname, no log server (the task logs are on this machine's disk for the test to read)."""
    workers = []
    for i in range(CELERY_WORKERS):
        args = ("worker", "--concurrency", str(CELERY_CONCURRENCY), "--celery-hostname", f"rd-scale-{i}@%h")
        args += ("--skip-serve-logs", "--without-gossip", "--without-mingle")
        workers.append(stack.enter_context(Daemon(home, "celery", env, args=args)))
    return workers


@contextmanager
def airflow_deployment(
    tmp: Path, *, parallelism: int = 8, executor: str = "local", listener_timeout: float | None = None
) -> Iterator[tuple[Deployment, ExitStack]]:
    """Everything up and DAG parsed; yields the deployment (and the stack its parts live on)."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, not {executor!r}")
    with ExitStack() as stack:
        started = time.monotonic()
        af_db = stack.enter_context(temporary_database())
        rd_db = stack.enter_context(temporary_database())
        endpoint = stack.enter_context(moto_s3_server())
        bucket = create_bucket(endpoint, "rd-scale")
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "plugins").mkdir(exist_ok=True)
        env = deployment_env(tmp, af_db, rd_db, endpoint, bucket, parallelism)
        if executor == "celery":
            broker = stack.enter_context(redis_database())
            env.update(celery_env(broker, stack.enter_context(temporary_database())))
        else:
            env["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
        if listener_timeout is not None:
            env["AIRFLOW__RUNDOSSIER__LISTENER_TIMEOUT"] = str(listener_timeout)
        from tests.integrations.airflow.airflow_env import ADMIN_PASSWORD

        (tmp / "simple_auth_manager_passwords.json.generated").write_text(
            json.dumps({"admin": ADMIN_PASSWORD, "viewer": ADMIN_PASSWORD}) + "\n"
        )
        home = AirflowHome(tmp, env)
        migrated = home.airflow("db", "migrate", timeout=300)
        if migrated.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{migrated.output[-4000:]}")
        timings = {"migrate_s": time.monotonic() - started}
        api = stack.enter_context(ApiServer(home, env))
        env = {**env, "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api.base}/execution/"}
        api_env_fixed = env  # the api-server itself does not need its own URL
        parser = stack.enter_context(Daemon(home, "dag-processor", api_env_fixed))
        workers = celery_workers(stack, home, api_env_fixed) if executor == "celery" else []
        scheduler = stack.enter_context(Daemon(home, "scheduler", api_env_fixed))
        dep = Deployment(
            home,
            env,
            api,
            [parser, *workers, scheduler],
            rd_db,
            f"s3://{bucket}/rundossier",
            storage_options(endpoint),
            timings=timings,
        )
        dep.wait_parsed()
        dep.timings["up_s"] = time.monotonic() - started
        yield dep, stack


def env_flag(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


__all__ = ["Deployment", "airflow_deployment", "DAG_ID", "EXECUTORS", "env_flag", "redis_unavailable_reason"]
