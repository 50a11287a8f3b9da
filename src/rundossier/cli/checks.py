"""The checks of `rundossier doctor` on this machine's rundossier: the settings, the database, the
storage and the spool. Each returns a `Check`: what was looked at, what was found and, for a
problem, how to fix it. They only read, except the storage probe, which writes one object and
deletes it again.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from rundossier import __version__
from rundossier.core.timefmt import duration_text
from rundossier.errors import RundossierError
from rundossier.settings import ENV_VARS, PROCESS_ENV_VARS, Settings, environment

#: storage_options keys whose values are never printed
_SECRET_WORDS = ("secret", "password", "token", "key", "credential", "session", "auth")

Status = Literal["ok", "problem", "skipped"]


class Check(BaseModel):
    """One check's outcome: what was looked at, what was found, how to fix a problem."""

    name: str
    status: Status
    detail: str
    fix: str = ""


def ok(name: str, detail: str) -> Check:
    return Check(name=name, status="ok", detail=detail)


def problem(name: str, detail: str, fix: str) -> Check:
    return Check(name=name, status="problem", detail=detail, fix=fix)


def skipped(name: str, detail: str) -> Check:
    return Check(name=name, status="skipped", detail=detail)


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


__all__ = [
    "Check",
    "ok",
    "problem",
    "skipped",
    "check_settings",
    "shown_settings",
    "check_database",
    "check_storage",
    "check_spool",
]
