"""The CLI against a real store: runs, show, trace, flush, db upgrade, demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rundossier import Recorder
from rundossier.cli.commands import parse_since
from rundossier.cli.main import EXIT_CONFIG, EXIT_NOT_FOUND, main
from rundossier.core.timefmt import duration_text as fmt_duration


@pytest.fixture
def failed_run(_isolated_home: Path) -> str:
    rec = Recorder.from_env()
    with pytest.raises(ValueError):
        with rec.run("cli_flow") as run, run.step("boom"):
            raise ValueError("it broke")
    with rec.run("cli_flow") as ok, ok.step("fine"):
        pass
    return run.run_id


def _json(capsys: pytest.CaptureFixture[str]) -> object:
    return json.loads(capsys.readouterr().out)


def test_runs_json_lists_newest_first(failed_run: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "--json"]) == 0
    data = _json(capsys)
    assert [r["status"] for r in data["items"]] == ["success", "failed"]
    err = data["items"][1]["error"]
    assert err == {"type": "ValueError", "message": "it broke", "trace_url": f"/api/runs/{failed_run}/trace"}
    assert data["next_cursor"] is None


def test_runs_filters_and_pages(failed_run: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "--json", "--status", "failed"]) == 0
    assert [r["run_id"] for r in _json(capsys)["items"]] == [failed_run]
    assert main(["runs", "--json", "--limit", "1"]) == 0
    page = _json(capsys)
    assert main(["runs", "--json", "--limit", "1", "--cursor", page["next_cursor"]]) == 0
    assert [r["run_id"] for r in _json(capsys)["items"]] == [failed_run]
    assert main(["runs", "--json", "--since", "1h", "-q", "cli_"]) == 0
    assert len(_json(capsys)["items"]) == 2


def test_runs_table_for_people(failed_run: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert failed_run in out and "ValueError: it broke" in out


def test_show_prints_steps_and_events(failed_run: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", failed_run]) == 0
    out = capsys.readouterr().out
    assert "boom" in out and "step_failed" in out and f"rundossier trace {failed_run}" in out
    assert main(["show", failed_run, "--json"]) == 0
    data = _json(capsys)
    assert data["steps"][0]["step_id"] == "boom" and data["events"]


def test_trace_to_stdout_and_to_a_file(failed_run: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["trace", failed_run]) == 0
    text = capsys.readouterr().out
    assert "ValueError: it broke" in text and "Traceback (most recent call last):" in text
    out = tmp_path / "t.txt"
    assert main(["trace", failed_run, "-o", str(out)]) == 0
    assert out.read_text() == text
    assert main(["trace", failed_run, "--step", "boom", "--try", "1"]) == 0


@pytest.mark.parametrize("bad", ["run_nope", "../../etc/passwd", "run_01M80AYYPWWZA72G0K5NVRA98C"])
def test_unknown_runs_are_not_found(_isolated_home: Path, bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", bad]) == EXIT_NOT_FOUND
    assert main(["trace", bad]) == EXIT_NOT_FOUND
    assert "no run with id" in capsys.readouterr().err


def test_trace_of_a_successful_run_says_why_there_is_none(
    _isolated_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = Recorder.from_env()
    with rec.run("f") as run:
        pass
    assert main(["trace", run.run_id]) == EXIT_NOT_FOUND
    assert "it is success" in capsys.readouterr().err


def test_flush_with_nothing_pending(_isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flush", "--json"]) == 0
    assert _json(capsys)["delivered"] == 0


def test_db_upgrade(_isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rundossier.storage.db.schema import head_revision

    assert main(["db", "upgrade"]) == 0
    assert f"revision {head_revision()} " in capsys.readouterr().out


def test_demo_records_failing_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--no-serve", "--home", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "3 failed" in out and "rundossier trace run_" in out


def test_bad_settings_are_reported_not_raised(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUNDOSSIER_STORAGE_OPTIONS", "{not json")
    assert main(["runs"]) == EXIT_CONFIG
    assert "RUNDOSSIER_STORAGE_OPTIONS" in capsys.readouterr().err


@pytest.mark.parametrize("text,seconds", [("30m", 1800), ("6h", 21600), ("3d", 259200), ("2w", 1209600)])
def test_parse_since_spans(text: str, seconds: int) -> None:
    from datetime import UTC, datetime

    delta = datetime.now(UTC) - parse_since(text)
    assert abs(delta.total_seconds() - seconds) < 5


def test_parse_since_iso_and_garbage() -> None:
    assert parse_since("2026-11-22T00:00:00").tzinfo is not None
    with pytest.raises(ValueError):
        parse_since("yesterday")


@pytest.mark.parametrize("ms,text", [(None, "-"), (0, "0.0s"), (1500, "1.5s"), (61_000, "1m01s"), (3_661_000, "1h01m")])
def test_fmt_duration(ms: int | None, text: str) -> None:
    assert fmt_duration(ms) == text
