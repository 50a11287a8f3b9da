"""`rundossier retention set|unset|show|sweep` against a real store and local blobs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rundossier import Recorder
from rundossier.cli.main import EXIT_NOT_FOUND, EXIT_USAGE, main
from rundossier.cli.retention import human_bytes, parse_span
from tests.retention.helpers import make_run


@pytest.fixture
def rec(_isolated_home: Path) -> Recorder:
    r = Recorder.from_env()
    for i in range(6):
        make_run(r.store, r.blobs, "finance_daily", age_days=i * 10, failed_step=True, seq=i, now=_now())
    make_run(r.store, r.blobs, "ops", age_days=400, status="running", now=_now())
    return r


def _now():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _json(capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    return json.loads(capsys.readouterr().out)


def test_set_merges_and_show_explains(rec: Recorder, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["retention", "set", "finance_*", "--keep-days", "35", "--keep-last", "100", "--blob-days", "7"]) == 0
    capsys.readouterr()
    assert main(["retention", "set", "finance_*", "--keep-last", "off", "--json"]) == 0
    assert _json(capsys) == {
        "flow_pattern": "finance_*",
        "kind": "glob",
        "keep_days": 35,
        "keep_last": 0,
        "blob_days": 7,
        "source": "cli",
        "updated_at": None,
    }
    assert main(["retention", "set", "finance_*", "--blob-days", "inherit"]) == 0
    capsys.readouterr()
    assert main(["retention", "show", "--json"]) == 0
    data = _json(capsys)
    flow = next(f for f in data["flows"] if f["flow_id"] == "finance_daily")
    assert flow["policy"] == {"keep_days": 35, "keep_last": 0, "blob_days": 0}
    assert flow["rule"] == "finance_*" and flow["reason"] == "longest matching glob 'finance_*'"
    assert flow["fields_from"]["blob_days"] == "built-in"
    assert flow["would_remove"]["runs"] == 2  # ended 40 and 50 days ago
    ops = next(f for f in data["flows"] if f["flow_id"] == "ops")
    assert ops["rule"] is None and ops["rule_kind"] == "built-in" and ops["would_remove"]["runs"] == 0
    assert main(["retention", "show"]) == 0
    text = capsys.readouterr().out
    assert "finance_daily" in text and "longest matching glob" in text and "35 days" in text


def test_sweep_dry_run_then_real(rec: Recorder, capsys: pytest.CaptureFixture[str]) -> None:
    main(["retention", "set", "*", "--keep-days", "25"])
    capsys.readouterr()
    assert main(["retention", "sweep", "--dry-run", "--json"]) == 0
    dry = _json(capsys)
    assert dry["dry_run"] and dry["totals"]["runs_removed"] == 3 and rec.store.count_runs() == 7
    assert main(["retention", "sweep", "--json", "--orphans", "--orphan-grace", "1h"]) == 0
    real = _json(capsys)
    assert real["totals"] == dry["totals"] and real["orphans"]["complete"] is True
    assert rec.store.count_runs() == 4
    assert main(["retention", "sweep"]) == 0
    assert "removed 0 runs" in capsys.readouterr().out


def test_sweep_prints_a_summary_per_flow(rec: Recorder, capsys: pytest.CaptureFixture[str]) -> None:
    main(["retention", "set", "finance_daily", "--keep-last", "2"])
    capsys.readouterr()
    assert main(["retention", "sweep", "--flow", "finance_daily"]) == 0
    text = capsys.readouterr().out
    assert "finance_daily" in text and "keep_last 4" in text and "removed 4 runs" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["retention", "set", "x"], "nothing to set"),
        (["retention", "set", "x", "--keep-days", "-4"], "keep_days must be"),
        (["retention", "set", "x", "--keep-last", "lots"], "keep_last must be a number of runs or 'off'"),
        (["retention", "set", " x", "--keep-days", "1"], "whitespace"),
        (["retention", "sweep", "--batch-size", "0"], "batch_size must be"),
        (["retention", "sweep", "--orphan-grace", "soon"], "not a time span"),
    ],
)
def test_bad_input_is_a_clear_error(
    _isolated_home: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_unset(_isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["retention", "set", "x", "--keep-days", "3"]) == 0
    assert main(["retention", "unset", "x"]) == 0
    assert main(["retention", "unset", "x"]) == EXIT_NOT_FOUND
    assert "no retention rule 'x'" in capsys.readouterr().err


def test_show_on_an_empty_history(_isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["retention", "show"]) == 0
    text = capsys.readouterr().out
    assert "built-in default: 30 days or last 100 runs" in text and "no runs recorded yet" in text


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("24h", 86400), ("7d", 604800), ("2w", 1209600)]
)
def test_parse_span(text: str, seconds: int) -> None:
    assert parse_span(text).total_seconds() == seconds


@pytest.mark.parametrize(("n", "text"), [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 1024**3, "5.0 GiB")])
def test_human_bytes(n: int, text: str) -> None:
    assert human_bytes(n) == text
