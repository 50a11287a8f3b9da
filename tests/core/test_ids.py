"""Run ids: sortable by creation time; `run_id_at` mints one for a given past time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rundossier.core.ids import is_run_id, new_run_id, run_id_at, run_id_floor, run_id_time


def test_run_id_at_encodes_the_time_and_is_not_monotonic() -> None:
    newer = new_run_id()
    when = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    rid = run_id_at(when)
    assert is_run_id(rid) and rid < newer
    assert run_id_time(rid) == when
    assert run_id_floor(when) <= rid < run_id_floor(when + timedelta(milliseconds=1))


def test_run_id_at_is_unique_for_one_instant() -> None:
    when = datetime.now(UTC)
    assert len({run_id_at(when) for _ in range(1000)}) == 1000


def test_run_id_at_clamps_before_the_epoch() -> None:
    assert run_id_time(run_id_at(datetime(1960, 1, 1, tzinfo=UTC))) == datetime(1970, 1, 1, tzinfo=UTC)
