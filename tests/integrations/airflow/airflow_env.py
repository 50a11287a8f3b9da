"""Test helpers: a throwaway AIRFLOW_HOME, `airflow dags test` in a subprocess, a real api-server.

Every Airflow command runs as a subprocess of this venv's `airflow` script with an environment
built here (no RUNDOSSIER_* or AIRFLOW__* of the developer's shell leak in), on SQLite, with the
example DAGs of `dags_example/` and the plugin loaded through its entry point (plus the drop-in
file in `$AIRFLOW_HOME/plugins`, which must then define nothing).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.s3server import free_port

REPO = Path(__file__).resolve().parents[3]
EXAMPLE_DAGS = REPO / "dags_example"
DROP_IN = REPO / "plugins" / "rundossier_plugin.py"
AIRFLOW = Path(sys.executable).with_name("airflow")
EXAMPLE_PASSWORD = "Sup3rSecretPw-7781"
EXAMPLE_CONN = f"postgresql://etl_user:{EXAMPLE_PASSWORD}@db.example.internal:5432/warehouse"
ADMIN_PASSWORD = "rd-admin-pw-5521"
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


@dataclass
class AirflowHome:
    """An AIRFLOW_HOME with a migrated SQLite metadata database, and the env to run Airflow in it."""

    path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def rundossier_home(self) -> Path:
        return self.path / "rundossier"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.rundossier_home / 'rundossier.db'}"

    def with_env(self, **extra: str) -> dict[str, str]:
        return {**self.env, **extra}

    def airflow(self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 240) -> Run:
        started = time.monotonic()
        proc = subprocess.run(
            [str(AIRFLOW), *args],
            env=dict(env or self.env),
            cwd=self.path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Run(args, proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started)


@dataclass
class Run:
    args: tuple[str, ...]
    returncode: int
    output: str
    seconds: float

    def airflow_tracebacks(self) -> list[str]:
        """The tracebacks Airflow itself logged with "Task failed with exception", in order."""
        return airflow_tracebacks(self.output)


def code_under_test() -> dict[str, str]:
    """PYTHONPATH for Airflow's subprocesses: the rundossier this test process imported.

    The venv's rundossier may be an editable install of another checkout (a git worktree runs its
    tests with its own `src/` first on PYTHONPATH); the DAGs and the api-server must run that code too.
    """
    import rundossier

    src = Path(rundossier.__file__).resolve().parents[1]
    return {"PYTHONPATH": str(src)} if src == REPO / "src" else {}


def base_env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RUNDOSSIER_", "AIRFLOW", "AWS_")) and k not in ("PYTHONPATH",)
    }
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(EXAMPLE_DAGS),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(home / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin,viewer:viewer",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="False",
        AIRFLOW__API_AUTH__JWT_SECRET="rundossier-test-jwt-secret-0123456789abcdef",
        AIRFLOW__API__SECRET_KEY="rundossier-test-secret-key-0123456789",
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
        AIRFLOW_CONN_RD_EXAMPLE_DB=EXAMPLE_CONN,
        PYTHONUNBUFFERED="1",
        **code_under_test(),
    )
    return env


def make_home(path: Path, *, drop_in: bool = True) -> AirflowHome:
    """A fresh AIRFLOW_HOME at `path`: migrated metadata DB, the drop-in plugin file, known passwords."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "plugins").mkdir(exist_ok=True)
    if drop_in:
        shutil.copy(DROP_IN, path / "plugins" / DROP_IN.name)
    (path / "simple_auth_manager_passwords.json.generated").write_text(
        json.dumps({"admin": ADMIN_PASSWORD, "viewer": ADMIN_PASSWORD}) + "\n"
    )
    home = AirflowHome(path, base_env(path))
    result = home.airflow("db", "migrate", timeout=180)
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{result.output[-4000:]}")
    return home


def airflow_tracebacks(output: str) -> list[str]:
    """Tracebacks Airflow logged after "Task failed with exception" (its console task log)."""
    blocks: list[str] = []
    lines = output.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        if "Task failed with exception" in lines[i]:
            j = i + 1
            block: list[str] = []
            while j < len(lines) and not _TIMESTAMP.match(lines[j]):
                block.append(lines[j])
                j += 1
            blocks.append("".join(block))
            i = j
        else:
            i += 1
    return blocks


def traceback_section(trace_text: str) -> str:
    """The traceback part of a rundossier trace: between the header and the log tail."""
    _, _, body = trace_text.partition("\n\n")
    section, _, _ = body.partition("\n--- last ")
    return section if section.endswith("\n") else section + "\n"


class Daemon:
    """A long-running `airflow <component>` (scheduler, dag-processor, ...) for the life of a `with` block."""

    def __init__(
        self, home: AirflowHome, component: str, env: Mapping[str, str] | None = None, *, args: tuple[str, ...] = ()
    ) -> None:
        self.home = home
        self.component = component
        self.args = args
        self.env = dict(env or home.env)
        self.log_path = home.path / f"{component}-{id(self):x}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Daemon:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [str(AIRFLOW), self.component, *self.args],
                env=self.env,
                cwd=self.home.path,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def check(self) -> None:
        """Raise with the component's log if it has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"airflow {self.component} exited with {self.proc.returncode}:\n{self.log()[-4000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __exit__(self, *exc: object) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)  # the component and the processes it started
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            proc.wait(timeout=10)


class ApiServer(Daemon):
    """`airflow api-server` on a free loopback port, answering, for the life of a `with` block."""

    def __init__(self, home: AirflowHome, env: Mapping[str, str] | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        args = ("--host", "127.0.0.1", "--port", str(self.port), "--workers", "1")
        super().__init__(home, "api-server", env, args=args)

    def __enter__(self) -> ApiServer:
        super().__enter__()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            self.check()
            if self._answers():
                return self
            time.sleep(0.5)
        self.__exit__(None, None, None)
        raise RuntimeError(f"airflow api-server did not answer on {self.base} within 90 s:\n{self.log()[-4000:]}")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.base + "/api/v2/version", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    def token(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> str:
        body = json.dumps({"username": username, "password": password}).encode()
        req = urllib.request.Request(
            self.base + "/auth/token", data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())["access_token"]

    def get(
        self, path: str, *, token: str | None = None, method: str = "GET", json_body: object = None
    ) -> tuple[int, bytes, dict[str, str]]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = None
        if json_body is not None:
            data = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=20) as resp:
                return resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as err:
            return err.code, err.read(), dict(err.headers)


@contextlib.contextmanager
def api_server(home: AirflowHome, env: Mapping[str, str] | None = None) -> Iterator[ApiServer]:
    with ApiServer(home, env) as server:
        yield server


__all__ = [
    "AirflowHome",
    "ApiServer",
    "api_server",
    "airflow_tracebacks",
    "make_home",
    "traceback_section",
    "EXAMPLE_PASSWORD",
    "ADMIN_PASSWORD",
    "REPO",
]
