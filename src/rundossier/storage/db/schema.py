"""Schema management: Alembic migrations, applied by `rundossier db upgrade` only.

A store's first use on an empty database creates the schema (at the head revision); on an existing
database at another revision it raises SchemaOutdated naming the command: migrations never run
implicitly on a database that holds data.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from rundossier.errors import SchemaOutdated

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "rd_alembic_version"
_PG_LOCK_KEY = 0x72646F73  # "rdos": one advisory lock for rundossier migrations


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Apply migrations up to `revision`; safe when many processes call it at once."""
    with _migration_lock(engine):
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            return current_revision(conn) or ""


def ensure_schema(engine: Engine, where: str = "the database") -> None:
    """Create the schema in an empty database; raise SchemaOutdated for one at another revision
    (one cheap query when it is current)."""
    head = head_revision()
    with engine.connect() as conn:
        current = current_revision(conn)
        if current == head:
            return
        empty = current is None and not any(n.startswith("rd_") for n in inspect(conn).get_table_names())
    if empty:
        upgrade(engine)
        return
    known = {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if current is not None and current not in known:
        raise SchemaOutdated(
            f"{where} is at schema revision {current}, which this rundossier does not know "
            f"(it needs {head}): a newer rundossier wrote it; upgrade rundossier"
        )
    raise SchemaOutdated(
        f"{where} is at schema revision {current or 'none (tables without a version)'}; this rundossier "
        f"needs {head}: run `rundossier db upgrade` (back up the database first)"
    )


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    lock_path = Path(database).expanduser().with_name(Path(database).name + ".migrate.lock")
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


__all__ = ["upgrade", "ensure_schema", "head_revision", "current_revision", "alembic_config"]
