"""Light rows read in bulk: the columns selected untyped, converted here once per row.

A dossier reads thousands of events and steps; SQLAlchemy's per-value result processing (a
regex per SQLite datetime, then the UTC type's own step, a JSON decode per value) cost several
times the query itself. So these selects coerce every column to a type without result
processing and `LightSelect.rows` converts the few typed columns the way their column types do:
UTC datetimes, JSON, SQLite's 0/1 booleans. Still one Core statement, no SQL written by hand.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Table, select, type_coerce
from sqlalchemy.types import NullType

from rundossier.core.timefmt import utc
from rundossier.storage.db.types import UTCDateTime

Convert = Callable[[Any], Any]


def _sqlite_datetime(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite keeps UTC text without an offset (UTCDateTime): read it as UTC
        try:
            return datetime.fromisoformat(value + "+00:00")
        except ValueError:  # text that carries its own offset
            return utc(datetime.fromisoformat(value))
    return utc(value)


def _json_text(value: Any) -> Any:
    if value == "null":  # how the JSON type stores None: most events carry no data
        return None
    return json.loads(value) if isinstance(value, str | bytes) else value


def _converter(col_type: Any, dialect: str) -> Convert | None:
    if isinstance(col_type, UTCDateTime):
        return _sqlite_datetime if dialect == "sqlite" else utc
    if isinstance(col_type, JSON):
        return _json_text  # PostgreSQL's driver hands JSON decoded already; SQLite hands text
    if isinstance(col_type, Boolean) and dialect == "sqlite":
        return bool
    return None


class LightSelect:
    """`select` of `fields` of `table` without result processing; `rows` makes `record`s of its rows."""

    def __init__(self, table: Table, fields: Sequence[str], record: Callable[[Iterable[Any]], Any]) -> None:
        self.table, self.fields, self.record = table, tuple(fields), record
        # built once: SQLAlchemy caches compiled statements by their elements' identity of shape
        self.select = select(*(type_coerce(table.c[f], NullType()).label(f) for f in self.fields))

    def rows(self, rows: Iterable[Sequence[Any]], dialect: str) -> list[Any]:
        convert = [
            (i, fn) for i, f in enumerate(self.fields) if (fn := _converter(self.table.c[f].type, dialect)) is not None
        ]
        make = self.record
        out = []
        for r in rows:
            values = list(r)
            for i, fn in convert:
                v = values[i]
                if v is not None:
                    values[i] = fn(v)
            out.append(make(values))
        return out


__all__ = ["LightSelect"]
