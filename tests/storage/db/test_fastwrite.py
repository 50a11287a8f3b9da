"""The hot path's own datetime formatting matches what SQLAlchemy stores on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import sqlite

from rundossier.storage.db.fastwrite import sqlite_utc

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
    assert sqlite_utc(value) == SQLA(naive_utc)


class _Subclass(datetime):
    """Like pendulum's DateTime: a datetime subclass whose replace() is its own."""

    def replace(self, *args: object, **kwargs: object) -> datetime:  # type: ignore[override]
        raise AssertionError("replace() called")


def test_sqlite_utc_takes_a_datetime_subclass_without_its_replace() -> None:
    value = _Subclass(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=2)))
    assert sqlite_utc(value) == "2026-01-02 01:04:05.000006"


# -- CompiledWrite.params: the parameters a compiled statement gets from a row ---------------------

#: columns every step INSERT carries (the model gives them defaults)
BASE = ["run_id", "step_id", "try_number", "log_lines_stdout", "log_lines_stderr", "spooled", "updated_at"]
T = datetime(2026, 1, 2, tzinfo=UTC)
FULL = {
    "run_id": "r",
    "step_id": "s",
    "try_number": 2,
    "log_lines_stdout": 0,
    "log_lines_stderr": 3,
    "spooled": False,
    "updated_at": T,
}


def _compiled(dialect_url: str, columns: list[str]):  # noqa: ANN202
    from sqlalchemy import create_engine, insert

    from rundossier.storage.db.fastwrite import CompiledWrite
    from rundossier.storage.db.models import Step

    table = Step.__table__
    return CompiledWrite(insert(table), table, create_engine(dialect_url), columns)


@pytest.mark.parametrize(
    ("extra", "row", "want"),
    [
        # every column present: datetimes formatted as SQLAlchemy would, booleans converted, others as they are
        ([], FULL, {**FULL, "spooled": 0, "updated_at": "2026-01-02 00:00:00.000000"}),
        # a column the row lacks is NULL; a None datetime is not converted
        (
            ["finished_at", "status"],
            {**FULL, "finished_at": None},
            {**FULL, "spooled": 0, "updated_at": "2026-01-02 00:00:00.000000", "finished_at": None, "status": None},
        ),
        # an aware non-UTC datetime is stored as its UTC time
        (
            ["started_at"],
            {**FULL, "started_at": datetime(2026, 1, 2, 3, tzinfo=timezone(timedelta(hours=2)))},
            {
                **FULL,
                "spooled": 0,
                "updated_at": "2026-01-02 00:00:00.000000",
                "started_at": "2026-01-02 01:00:00.000000",
            },
        ),
    ],
)
def test_params_follow_the_statement_order_with_converters(extra: list[str], row: dict, want: dict) -> None:
    stmt = _compiled("sqlite://", BASE + extra)
    got = stmt.params(row)
    assert stmt.positional and len(got) == len(stmt.names)
    assert dict(zip(stmt.names, got, strict=True)) == want


def test_named_params_are_a_dict() -> None:
    stmt = _compiled("postgresql+psycopg://", BASE)
    assert not stmt.positional
    got = stmt.params({"run_id": "r", "try_number": 1})
    assert set(got) == set(BASE) and got["run_id"] == "r" and got["step_id"] is None and got["try_number"] == 1


def test_batches_from_several_threads_each_on_their_own_connection(tmp_path) -> None:  # noqa: ANN001
    """Batches (several rows, one transaction) and lone upserts share each writing thread's connection;
    a batch that fails leaves that connection usable for the next write."""
    from concurrent.futures import ThreadPoolExecutor

    from rundossier.errors import StoreError
    from rundossier.storage.db import RunStore, WriteBatch

    store = RunStore(f"sqlite:///{tmp_path}/t.db")
    try:
        rid = store.upsert_run({"orchestrator": "python", "flow_id": "f", "run_key": "k", "status": "running"})

        def work(n: int) -> None:
            for i in range(20):
                step = {"run_id": rid, "step_id": f"s{n}_{i}", "try_number": 1, "status": "failed"}
                event = {"run_id": rid, "kind": "step_failed", "ts": datetime.now(UTC), "step_id": f"s{n}_{i}"}
                store.write(WriteBatch().step(step).step({**step, "try_number": 2}).event(event))
                store.upsert_step({**step, "status": "success"})
            with pytest.raises(StoreError):  # NOT NULL kind: the whole batch rolls back
                store.write(WriteBatch().step({**step, "step_id": f"bad{n}"}).event({"run_id": rid, "ts": None}))
            store.write(WriteBatch().step({**step, "step_id": f"after{n}"}).step({**step, "step_id": f"after{n}b"}))

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(work, range(4)))
        steps = store.list_steps(rid)
        assert len(steps) == 4 * (20 * 2 + 2)
        assert not any(s.step_id.startswith("bad") for s in steps)
        assert len(store.list_events(rid)) == 4 * 20
    finally:
        store.close()
