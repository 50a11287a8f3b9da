"""Prefect integration tests: one temporary Prefect server for the session (prefect_test_harness).

These run in `.venv-prefect` (scripts/test-prefect.sh); the core environment has no Prefect and
skips this folder. Prefect's home, database and settings live in a temporary directory: nothing
touches ~/.prefect, and the server listens on loopback only.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("prefect") is None:  # the core environment: scripts/test-prefect.sh runs these
    collect_ignore_glob = ["test_*.py"]
else:
    _PREFECT_HOME = tempfile.mkdtemp(prefix="rd-test-prefect-home-")
    os.environ["PREFECT_HOME"] = _PREFECT_HOME
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "WARNING"
    for var in ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILE"):
        os.environ.pop(var, None)

BLOCK_NAME = "dossier-example"
UI_BASE_URL = "http://127.0.0.1:8799/rd"


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """A temporary Prefect server (SQLite, loopback) for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield
    shutil.rmtree(os.environ.get("PREFECT_HOME", ""), ignore_errors=True)


@pytest.fixture(scope="session")
def example_store(prefect_server: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Where the example flows record: a SQLite file and local storage, in a saved Block."""
    from rundossier.prefect import RunDossier

    base = tmp_path_factory.mktemp("examples")
    values = {
        "storage_url": f"file://{base / 'blobs'}",
        "db_url": f"sqlite:///{base / 'rundossier.db'}",
        "home": str(base / "home"),
    }
    RunDossier(**values, ui_base_url=UI_BASE_URL, keep_days=30).save(BLOCK_NAME, overwrite=True)
    return values


@pytest.fixture(scope="session")
def examples(example_store: dict[str, str]) -> Any:
    """The example flows module, imported once its Block is saved (it loads the Block by name)."""
    from flows_example import flows

    assert flows.BLOCK_NAME == BLOCK_NAME and flows.dossier.ui_base_url == UI_BASE_URL

    return flows


@pytest.fixture()
def example_recorder(example_store: dict[str, str]) -> Any:
    from rundossier import Recorder
    from rundossier.settings import Settings

    return Recorder(Settings.resolve(explicit=example_store))


def home_of(values: dict[str, str]) -> Path:
    return Path(values["home"])
