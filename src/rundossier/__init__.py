"""rundossier: a run debugger for Airflow, Prefect and plain Python.

from rundossier import Recorder
rec = Recorder.from_env()
with rec.run(flow_id="nightly_etl") as run:
    with run.step("extract"):
        ...
"""

from typing import TYPE_CHECKING, Any

from rundossier.core.status import Status
from rundossier.errors import RundossierError
from rundossier.settings import Settings

if TYPE_CHECKING:
    from rundossier.record.recorder import Recorder, RunHandle, StepHandle, artifact

__all__ = [
    "Recorder",
    "RunHandle",
    "StepHandle",
    "Settings",
    "Status",
    "RundossierError",
    "artifact",
    "__version__",
]

_LAZY = ("Recorder", "RunHandle", "StepHandle", "artifact")


def __getattr__(name: str) -> Any:
    # the recorder pulls in SQLAlchemy, SQLModel and fsspec: only when asked for, so an Airflow
    # plugin or a CLI that never records does not pay for them in every process
    if name == "__version__":
        return _version()
    if name in _LAZY:
        from rundossier.record import recorder

        return getattr(recorder, name)
    raise AttributeError(f"module 'rundossier' has no attribute {name!r}")


def _version() -> str:
    """One version source: the installed distribution's metadata (pyproject.toml's version), read
    when asked for, not at every import (an Airflow worker imports rundossier in each process)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rundossier")
    except PackageNotFoundError:  # a source tree on sys.path that was never installed
        return "0+unknown"
