"""`rundossier failures`, the dossier at the top of `rundossier show`, and `runs --fingerprint`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rundossier import Recorder
from rundossier.cli.main import main


def _boom(n: int) -> None:
    raise ValueError(f"row {n} has a bad total")


@pytest.fixture
def runs(_isolated_home: Path) -> list[str]:
    rec = Recorder.from_env()
    with rec.run("cli_flow") as ok, ok.step("fine"):
        pass
    ids = []
    for n, flow in ((1, "cli_flow"), (2, "other_flow")):
        with pytest.raises(ValueError):
            with rec.run(flow) as run, run.step("boom"):
                _boom(n)
        ids.append(run.run_id)
    rec.close()
    return ids


def _json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out)


def test_failures_json(runs: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["failures", "--json"]) == 0
    (g,) = _json(capsys)["items"]
    assert g["count"] == 2 and g["flows"] == ["cli_flow", "other_flow"] and g["latest"]["run_id"] == runs[1]
    assert g["failure_class"] == "data"
    assert main(["failures", "--json", "--flow", "cli_flow", "--since", "1d", "--sort", "count"]) == 0
    data = _json(capsys)
    assert data["items"][0]["count"] == 1 and data["counted_since"].endswith("T00:00:00Z")


def test_failures_table_and_runs_of_a_group(runs: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["failures"]) == 0
    out = capsys.readouterr().out
    assert "ValueError: row 2 has a bad total" in out and "cli_flow, other_flow" in out
    fingerprint = out.split("\n")[2].split()[0]
    assert main(["runs", "--json", "--fingerprint", fingerprint]) == 0
    assert [r["run_id"] for r in _json(capsys)["items"]] == runs[::-1]


def test_failures_when_there_are_none(_isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["failures"]) == 0
    assert "no failure groups" in capsys.readouterr().out


def test_show_opens_a_failed_run_on_its_dossier(runs: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", runs[0]]) == 0
    out = capsys.readouterr().out
    assert out.startswith("DOSSIER  Data / validation error in step boom (try 1): ValueError: row 1 has a bad total")
    assert "compared     with run_" in out and f"rundossier trace {runs[0]} --step boom --try 1" in out
    assert main(["show", runs[0], "--json"]) == 0
    assert _json(capsys)["dossier"]["classification"]["code"] == "data"


def test_show_of_a_success_has_no_dossier_text(runs: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "--json", "--status", "success"]) == 0
    (ok,) = _json(capsys)["items"]
    assert main(["show", ok["run_id"]]) == 0
    assert "DOSSIER" not in capsys.readouterr().out
