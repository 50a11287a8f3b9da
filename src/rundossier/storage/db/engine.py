"""SQLAlchemy engines for the run history: SQLite (WAL, busy timeout, BEGIN IMMEDIATE) or PostgreSQL."""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import NoSuchModuleError

from rundossier.errors import ConfigError


def normalize_url(url: str) -> URL:
    """Parse a database URL; bare `postgresql://` uses psycopg 3 (what `rundossier[postgres]` installs)."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"RUNDOSSIER_DB_URL {url!r} is not a valid SQLAlchemy URL: {exc}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"RUNDOSSIER_DB_URL uses {parsed.get_backend_name()!r}; rundossier supports sqlite and postgresql"
        )
    return parsed


#: PostgreSQL connections an engine keeps open, and how many more it may open at busy moments
POOL_SIZE = 2
MAX_OVERFLOW = 4


def make_engine(
    url: str, *, timeout: float = 10.0, write: bool = True, pool: tuple[int, int] = (POOL_SIZE, MAX_OVERFLOW)
) -> Engine:
    """An engine for reads or writes. On SQLite, write transactions take the lock up front
    (BEGIN IMMEDIATE) so concurrent writers queue on the busy timeout instead of failing.
    `pool`: (connections kept, extra ones at busy moments) on PostgreSQL."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, timeout=timeout, write=write)
    return _postgres_engine(parsed, timeout=timeout, pool=pool)


def _sqlite_engine(url: URL, *, timeout: float, write: bool) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = _create(url, connect_args={"timeout": timeout, "check_same_thread": False})
    begin = "BEGIN IMMEDIATE" if write else "BEGIN"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            if database and database != ":memory:":
                cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    _dispose_after_fork(engine)
    return engine


def _postgres_engine(url: URL, *, timeout: float, pool: tuple[int, int]) -> Engine:
    ms = int(timeout * 1000)
    engine = _create(
        url,
        pool_pre_ping=True,
        pool_size=pool[0],
        max_overflow=pool[1],
        pool_timeout=max(1.0, timeout),
        connect_args={
            "connect_timeout": max(1, int(timeout)),
            "options": f"-c lock_timeout={ms} -c statement_timeout={ms * 6}",
        },
    )
    _dispose_after_fork(engine)
    return engine


def _create(url: URL, **kwargs: Any) -> Engine:
    """`create_engine`, with a missing driver (the DBAPI module a URL names) as a ConfigError."""
    try:
        return create_engine(url, **kwargs)
    except (ImportError, NoSuchModuleError) as exc:
        shown = url.render_as_string(hide_password=True)
        raise ConfigError(
            f"RUNDOSSIER_DB_URL {shown} needs a database driver that is not installed ({exc}); "
            "use postgresql://... with pip install 'rundossier[postgres]' (psycopg 3), sqlite:///..., "
            f"or install the driver {url.drivername!r} names"
        ) from None


_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for engine in list(_ENGINES):
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _dispose_after_fork(engine: Engine) -> None:
    """A forked child (Airflow's task runner forks) must not reuse the parent's connections."""
    _ENGINES.add(engine)


__all__ = ["make_engine", "normalize_url", "POOL_SIZE", "MAX_OVERFLOW"]
