"""Prefect 3 integration (needs `pip install rundossier[prefect]`).

    from rundossier.prefect import RunDossier

    dossier = RunDossier.load("prod")

    @flow(**dossier.hooks())
    def nightly(): ...

Prefect imports this module through the `prefect.collections` entry point, which registers the
RunDossier Block type with the server (it then appears in the UI's block catalog).
"""

from __future__ import annotations

try:
    from rundossier.integrations.prefect import RunDossier, wait
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
    if exc.name != "prefect":
        raise
    raise ModuleNotFoundError(
        "rundossier.prefect needs Prefect 3: pip install 'rundossier[prefect]'", name="prefect"
    ) from exc

__all__ = ["RunDossier", "wait"]
