"""The package as users get it: the wheel built with `python -m build` from a copy of the source
tree, installed with its `server` extra into a fresh venv, and run from a folder with no source
tree on the path. It must hold the web UI's files, the migrations and `py.typed`; its demo records
runs, and its server serves the page, the API and the API docs.

Time: one isolated build and one venv filled from pip's cache / the local index (about a minute).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import venv
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.s3server import free_port

ROOT = Path(__file__).resolve().parents[1]
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv*", "test-artifacts", "site", "build", "dist", "*.egg-info", "__pycache__", ".rundossier", ".*cache"
)
START_TIMEOUT_S = 60.0

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src") / "rundossier"
    shutil.copytree(ROOT, src, ignore=NOT_SOURCE)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(src)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (found,) = out.glob("rundossier-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel and its `server` extra; its bin/ folder."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=False)  # this venv's pip installs into it (`pip --python`): no ensurepip
    bin_dir = env_dir / "bin"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "install", "-q"]
        + ["--disable-pip-version-check", f"{wheel}[server]"],
        check=True,
        capture_output=True,
        timeout=600,
        env=clean_env(),
    )
    return bin_dir


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything that points at the source tree or a store."""
    env = {
        k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith(("RUNDOSSIER_", "VIRTUAL_ENV"))
    }
    return {**env, **extra}


def test_the_wheel_holds_the_ui_the_migrations_py_typed_and_the_license(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "rundossier/py.typed",
        "rundossier/server/static/index.html",
        "rundossier/server/static/app.css",
        "rundossier/server/static/logo.png",
        "rundossier/storage/db/migrations/env.py",
        "rundossier/storage/db/migrations/script.py.mako",
    ):
        assert needed in names, needed
    ui_files = [p.relative_to(ROOT / "src") for p in (ROOT / "src/rundossier/server/static").rglob("*") if p.is_file()]
    assert {str(p) for p in ui_files} <= set(names)
    versions = [n for n in names if n.startswith("rundossier/storage/db/migrations/versions/") and n.endswith(".py")]
    assert len(versions) == len(list((ROOT / "src/rundossier/storage/db/migrations/versions").glob("*.py")))
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not [n for n in names if n.startswith("tests/")]


def test_the_installed_package_runs_the_demo_and_serves_the_page_and_the_api(installed: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = clean_env(RUNDOSSIER_HOME=str(home))
    where = subprocess.run(
        [str(installed / "python"), "-c", "import rundossier; print(rundossier.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(installed.parent)) and not where.startswith(str(ROOT)), where

    demo = subprocess.run(
        [str(installed / "rundossier"), "demo", "--no-serve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert demo.returncode == 0, demo.stderr
    runs = subprocess.run(
        [str(installed / "rundossier"), "runs", "--json"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert runs.returncode == 0, runs.stderr
    listed = json.loads(runs.stdout)
    assert any(r["status"] == "failed" for r in listed.get("items", listed))
    doctor = subprocess.run(
        [str(installed / "rundossier"), "doctor", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    version = subprocess.run(
        [str(installed / "rundossier"), "--version"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert version.returncode == 0 and version.stdout.split()[-1][0].isdigit(), version.stdout

    with served(installed, tmp_path, env) as url:
        page = httpx.get(url + "/")
        assert page.status_code == 200 and "<script" in page.text and 'src="static/' in page.text
        assert httpx.get(url + "/static/app.css").status_code == 200
        api = httpx.get(url + "/api/runs")
        assert api.status_code == 200 and api.json()["items"], api.text
        assert httpx.get(url + "/docs").status_code == 200
        assert httpx.get(url + "/static/docs/swagger-ui-bundle.js").status_code == 200


class served:
    """`rundossier serve` of the installed package on 127.0.0.1 and a free port (bounded start and stop)."""

    def __init__(self, bin_dir: Path, cwd: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.args = [str(bin_dir / "rundossier"), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.cwd, self.env = cwd, env
        self.log = cwd / "serve.log"

    def __enter__(self) -> str:
        url = f"http://127.0.0.1:{self.port}"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(self.args, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}: {self.log.read_text()}")
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise AssertionError(f"serve did not answer within {START_TIMEOUT_S} s: {self.log.read_text()}")

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
