"""`rundossier doctor`: is this installation ready to record and show runs? Each check says what it
found and, for a problem, how to fix it; exit 1 on any problem.

    settings   the effective settings (secrets masked) and where each came from
    database   reachable, schema at this version's revision (else `rundossier db upgrade`)
    storage    a probe object written, read back and deleted through the BlobStore
    spool      items waiting for delivery (`rundossier flush`), the oldest's age
    airflow    when installed: Airflow's plugins manager loads the rundossier plugin
    prefect    when installed: the RunDossier Block imports and, with a Prefect API, is registered

The Airflow and Prefect checks run in a subprocess with a time limit, so a broken or hanging
orchestrator install cannot hang the doctor.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from rich.table import Table
from rich.text import Text

from rundossier import __version__
from rundossier.cli.text import visible
from rundossier.core.timefmt import duration_text
from rundossier.errors import RundossierError
from rundossier.settings import ENV_VARS, PROCESS_ENV_VARS, Settings, environment

#: seconds an orchestrator check may take (importing Airflow alone takes several)
ORCHESTRATOR_TIMEOUT_S = 120.0
#: storage_options keys whose values are never printed
_SECRET_WORDS = ("secret", "password", "token", "key", "credential", "session", "auth")

Status = Literal["ok", "problem", "skipped"]


class Check(BaseModel):
    """One check's outcome: what was looked at, what was found, how to fix a problem."""

    name: str
    status: Status
    detail: str
    fix: str = ""


class Report(BaseModel):
    """`rundossier doctor --json`."""

    ok: bool
    version: str
    settings: dict[str, dict[str, Any]]
    checks: list[Check]


def ok(name: str, detail: str) -> Check:
    return Check(name=name, status="ok", detail=detail)


def problem(name: str, detail: str, fix: str) -> Check:
    return Check(name=name, status="problem", detail=detail, fix=fix)


def skipped(name: str, detail: str) -> Check:
    return Check(name=name, status="skipped", detail=detail)


# -- the checks --------------------------------------------------------------------------------


def check_settings() -> tuple[Settings | None, Check]:
    try:
        settings = Settings.resolve()
    except RundossierError as exc:
        return None, problem("settings", str(exc), "correct the RUNDOSSIER_* variable the message names")
    return settings, ok("settings", f"valid; {settings.where()}")


def shown_settings(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every setting's effective value (secrets masked) and its source (a variable or the default)."""
    given = environment()
    values = settings.model_dump(mode="json")
    values["db_url"] = _masked_db_url(settings.db_url)
    values["storage_options"] = _masked_options(settings.storage_options)
    if settings.api_token is not None:
        values["api_token"] = "***"
    variables = {**ENV_VARS, **PROCESS_ENV_VARS}
    return {
        name: {"value": values[name], "source": variables[name] if name in given else "default"} for name in variables
    }


def check_database(settings: Settings) -> Check:
    from sqlalchemy.exc import SQLAlchemyError

    from rundossier.storage.db.engine import make_engine, normalize_url
    from rundossier.storage.db.schema import alembic_config, current_revision, head_revision

    fix_url = "check RUNDOSSIER_DB_URL and that the database server is up and reachable from here"
    try:
        url = normalize_url(settings.db_url)
    except RundossierError as exc:
        return problem("database", str(exc), "set RUNDOSSIER_DB_URL to sqlite:////abs/path.db or postgresql://...")
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return ok("database", f"{shown}: not created yet; the first recorded run or `rundossier db upgrade` creates it")
    try:
        engine = make_engine(settings.db_url, timeout=settings.db_timeout, write=False)
    except RundossierError as exc:
        return problem("database", str(exc), "install the driver the message names")
    try:
        with engine.connect() as conn:
            current = current_revision(conn)
            from sqlalchemy import inspect

            tables = [n for n in inspect(conn).get_table_names() if n.startswith("rd_")]
    except SQLAlchemyError as exc:
        first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]
        return problem(
            "database",
            f"{shown} did not answer: {type(exc).__name__}: {first} (waited up to {settings.db_timeout:g}s)",
            f"{fix_url} (RUNDOSSIER_DB_TIMEOUT bounds the wait)",
        )
    finally:
        engine.dispose()
    head = head_revision()
    if current == head:
        return ok("database", f"{shown}: reachable, schema at revision {head} (current)")
    if current is None and not tables:
        return ok("database", f"{shown}: reachable and empty; the first use creates the schema")
    from alembic.script import ScriptDirectory

    known = {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if current is not None and current not in known:
        return problem(
            "database",
            f"{shown}: schema at revision {current}, unknown to rundossier {__version__} (needs {head})",
            "a newer rundossier wrote it: upgrade rundossier here",
        )
    return problem(
        "database",
        f"{shown}: schema at revision {current or 'none (tables without a version)'}, this version needs {head}",
        "run `rundossier db upgrade` (back up the database first)",
    )


def check_storage(settings: Settings) -> Check:
    from rundossier.storage.blobs import BlobStore

    try:
        blobs = BlobStore(settings.storage_url, settings.storage_options)
    except RundossierError as exc:
        return problem("storage", str(exc), "set RUNDOSSIER_STORAGE_URL to file:///abs/dir or s3://bucket/prefix")
    key = f"doctor-probe-{uuid.uuid4().hex}"  # at the root: no folder is left behind
    data = b"rundossier doctor probe\n"
    uri = blobs.uri_for(key)
    step = "write"
    try:
        blobs.put(key, data)
        step = "read"
        if blobs.get(uri) != data:
            return problem("storage", f"{blobs.url}: the probe read back differs", "check the storage backend")
        step = "delete"
        blobs.delete([uri])
    except RundossierError as exc:
        return problem(
            "storage",
            f"{blobs.url}: could not {step} a probe object: {exc}",
            "check RUNDOSSIER_STORAGE_URL, RUNDOSSIER_STORAGE_OPTIONS and the credentials",
        )
    return ok("storage", f"{blobs.url}: a probe object was written, read back and deleted")


def check_spool(settings: Settings, now: datetime | None = None) -> Check:
    from rundossier.storage.spool import ITEM_FILE, Spool

    spool = Spool(settings.spool_dir)
    pending = spool.pending()
    if not pending:
        return ok("spool", f"{spool.directory}: nothing waiting")
    try:
        oldest = datetime.fromtimestamp((pending[0] / ITEM_FILE).stat().st_mtime, UTC)
        age = f", the oldest from {oldest:%Y-%m-%d %H:%M:%S} UTC ({_ago(oldest, now)} ago)"
    except OSError:
        age = ""
    return problem(
        "spool",
        f"{spool.directory}: {len(pending)} item(s) waiting for delivery{age}",
        "make the database and storage reachable (see above), then run `rundossier flush`",
    )


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


# -- the command -------------------------------------------------------------------------------


def diagnose() -> Report:
    settings, first = check_settings()
    checks = [first]
    if settings is None:
        checks += [skipped(n, "needs valid settings") for n in ("database", "storage", "spool")]
    else:
        checks += [check_database(settings), check_storage(settings), check_spool(settings)]
    checks += [check_airflow(), check_prefect()]
    return Report(
        ok=all(c.status != "problem" for c in checks),
        version=__version__,
        settings=shown_settings(settings) if settings is not None else {},
        checks=checks,
    )


def doctor(args: argparse.Namespace) -> int:
    from rundossier.cli.commands import _print_json, out

    report = diagnose()
    if args.json:
        _print_json(report)
        return 0 if report.ok else 1
    if report.settings:
        table = Table(title=f"rundossier {report.version}: settings", title_justify="left", box=None, pad_edge=False)
        for col in ("setting", "value", "from"):
            table.add_column(col, overflow="fold")
        for name, s in report.settings.items():
            value = s["value"]
            text = json.dumps(value) if isinstance(value, dict | list) else "-" if value is None else str(value)
            table.add_row(name, visible(text), s["source"])
        out.print(table)
        out.print()
    table = Table(title="checks", title_justify="left", box=None, pad_edge=False)
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("found", overflow="fold", ratio=3)
    table.add_column("fix", overflow="fold", ratio=2)
    style = {"ok": "green", "problem": "red", "skipped": "grey50"}
    for c in report.checks:
        table.add_row(c.name, Text(c.status, style=style[c.status]), visible(c.detail), visible(c.fix))
    out.print(table)
    problems = sum(c.status == "problem" for c in report.checks)
    out.print("no problems found" if report.ok else f"{problems} problem(s): see the fix column")
    return 0 if report.ok else 1


def register(sub: Any) -> None:
    p = sub.add_parser(
        "doctor",
        help="check settings, database, storage, spool and the Airflow/Prefect integrations",
        description="Check this installation; a fix for each problem; exit code 1 on any problem.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=doctor)


# -- helpers -----------------------------------------------------------------------------------


def _masked_db_url(url: str) -> str:
    from rundossier.storage.db.engine import normalize_url

    try:
        return normalize_url(url).render_as_string(hide_password=True)
    except RundossierError:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}" if "@" in rest else url


def _masked_options(options: dict[str, Any]) -> dict[str, Any]:
    def mask(key: str, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: mask(str(k), v) for k, v in value.items()}
        return "***" if any(w in key.lower() for w in _SECRET_WORDS) else value

    return {k: mask(str(k), v) for k, v in options.items()}


def _ago(when: datetime, now: datetime | None) -> str:
    seconds = max(0.0, ((now or datetime.now(UTC)) - when).total_seconds())
    return duration_text(seconds * 1000)


__all__ = ["doctor", "register", "diagnose", "Check", "Report", "airflow_outcome", "prefect_outcome"]
