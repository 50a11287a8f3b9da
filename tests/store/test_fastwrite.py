"""The hot path's own datetime formatting matches what SQLAlchemy stores on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import sqlite

from rundossier.store.fastwrite import _sqlite_utc

SQLA = sqlite.DATETIME().bind_processor(sqlite.dialect())


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),  # noqa: UP017 - the same object as UTC
        datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 1, 2, 0, 30, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(2026, 1, 2, 3, 4, 5, 6),  # naive: already UTC
        datetime(1, 1, 1, tzinfo=UTC),
    ],
)
def test_sqlite_utc_is_what_sqlalchemy_stores_for_the_utc_time(value: datetime) -> None:
    naive_utc = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    assert _sqlite_utc(value) == SQLA(naive_utc)
