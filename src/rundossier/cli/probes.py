"""The orchestrator checks of `rundossier doctor`: when Airflow is installed, does Airflow's own
plugins manager load the rundossier plugin (and read its [rundossier] section)? When Prefect is,
does the RunDossier Block import and does the Prefect API know its block type?

Each probe runs in a fresh interpreter of this environment with a time limit, so a broken or
hanging orchestrator install cannot hang the doctor; its last stdout line is JSON, which
`airflow_outcome` / `prefect_outcome` turn into a `Check`.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from typing import Any

from rundossier.cli.checks import Check, ok, problem, skipped

#: seconds an orchestrator probe may take (importing Airflow alone takes several)
ORCHESTRATOR_TIMEOUT_S = 120.0

_AIRFLOW_PROBE = """
import json
from airflow import plugins_manager
from rundossier.integrations.airflow import config
from rundossier.integrations.airflow.plugin import PLUGIN_NAME
plugins_manager.ensure_plugins_loaded()
names = [p["name"] for p in plugins_manager.get_plugin_info()]
errors = plugins_manager.get_import_errors()
try:
    home = str(config.load().settings.home)
except Exception as exc:
    home = None
    errors = {**errors, "[rundossier] in airflow.cfg": str(exc)}
print(json.dumps({"loaded": PLUGIN_NAME in names, "errors": errors, "home": home}))
"""

_PREFECT_PROBE = """
import asyncio, json
from importlib.metadata import entry_points
from prefect.settings import PREFECT_API_URL
from rundossier.integrations.prefect.block import RunDossier
slug = RunDossier.get_block_type_slug()
collections = [e.value for e in entry_points(group="prefect.collections") if e.name == "rundossier"]
api = PREFECT_API_URL.value()
registered = None
if api:
    from prefect.client.orchestration import get_client
    async def read():
        async with get_client() as client:
            try:
                await client.read_block_type_by_slug(slug)
                return True
            except Exception as exc:
                if type(exc).__name__ == "ObjectNotFound":
                    return False
                raise
    registered = asyncio.run(read())
print(json.dumps({"slug": slug, "collections": collections, "api": api, "registered": registered}))
"""


def check_airflow() -> Check:
    if importlib.util.find_spec("airflow") is None:
        return skipped("airflow", "Airflow is not installed here")
    return airflow_outcome(_probe_or_failure(_AIRFLOW_PROBE))


def check_prefect() -> Check:
    if importlib.util.find_spec("prefect") is None:
        return skipped("prefect", "Prefect is not installed here")
    return prefect_outcome(_probe_or_failure(_PREFECT_PROBE))


def airflow_outcome(found: dict[str, Any] | ProbeFailed) -> Check:
    """What the Airflow probe found, as a check."""
    if isinstance(found, ProbeFailed):
        return problem("airflow", f"loading Airflow's plugins failed: {found}", "run `airflow plugins` for details")
    # the same plugin found twice (an entry point and a drop-in file) loads once: not a problem
    errors = {
        k: v for k, v in found["errors"].items() if "rundossier" in (k + v).lower() and "already registered" not in v
    }
    if not found["loaded"] or errors:
        detail = "; ".join(f"{k}: {v}" for k, v in errors.items()) or "the rundossier plugin is not among the loaded"
        return problem(
            "airflow",
            detail,
            "install rundossier into Airflow's environment (pip install 'rundossier[airflow]') and restart Airflow",
        )
    return ok("airflow", f"the rundossier plugin loads; its home is {found['home']}")


def prefect_outcome(found: dict[str, Any] | ProbeFailed) -> Check:
    """What the Prefect probe found, as a check."""
    if isinstance(found, ProbeFailed):
        return problem("prefect", f"the RunDossier Block does not import: {found}", "pip install 'rundossier[prefect]'")
    if not found["collections"]:
        return problem(
            "prefect",
            "the prefect.collections entry point of rundossier is missing: Prefect will not register the Block",
            "reinstall rundossier (pip install 'rundossier[prefect]')",
        )
    if found["registered"] is False:
        return problem(
            "prefect",
            f"block type {found['slug']!r} is not registered with {found['api']}",
            "run `prefect block register -m rundossier.prefect`",
        )
    where = f"registered with {found['api']}" if found["registered"] else "no PREFECT_API_URL to ask"
    return ok("prefect", f"block type {found['slug']!r} imports; {where}")


class ProbeFailed(Exception):
    """An orchestrator probe subprocess failed, timed out or printed no answer."""


def _probe_or_failure(code: str) -> dict[str, Any] | ProbeFailed:
    try:
        return _probe(code)
    except ProbeFailed as exc:
        return exc


def _probe(code: str) -> dict[str, Any]:
    """Run `code` in a fresh interpreter of this environment; its last stdout line is JSON."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=ORCHESTRATOR_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise ProbeFailed(f"no answer within {ORCHESTRATOR_TIMEOUT_S:g}s") from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ProbeFailed(f"exit code {done.returncode}: {tail}")
    try:
        return dict(json.loads(lines[-1]))
    except ValueError:
        raise ProbeFailed(f"unexpected output: {lines[-1][:200]}") from None


__all__ = ["check_airflow", "check_prefect", "airflow_outcome", "prefect_outcome", "ProbeFailed"]
