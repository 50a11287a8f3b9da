"""One home for every command: what the demo records, `runs`, `show` and `trace` read, from any
folder; an empty answer says where it looked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rundossier.cli.main import EXIT_NOT_FOUND, main


def test_the_readme_commands_work_in_order_from_any_folder(
    _isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert main(["demo", "--no-serve"]) == 0  # as scripts/demo.sh runs it: no --home
    out = capsys.readouterr().out
    assert f"home:      {_isolated_home.resolve()}" in out
    failed = out.split("rundossier trace ", 1)[1].split()[0]
    monkeypatch.chdir(elsewhere)
    assert main(["runs", "--json", "--limit", "500"]) == 0
    assert failed in {r["run_id"] for r in json.loads(capsys.readouterr().out)["items"]}
    assert main(["show", failed]) == 0
    assert main(["trace", failed, "-o", str(elsewhere / "t.txt")]) == 0
    assert "Traceback" in (elsewhere / "t.txt").read_text()


def test_an_empty_home_says_where_it_looked(_isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # a long path may wrap at the console's width
    assert out == f"no runs in sqlite:///{_isolated_home.resolve()}/rundossier.db (home {_isolated_home.resolve()})"
    assert main(["runs", "--flow", "x"]) == 0
    assert "no runs match these filters in sqlite:///" in capsys.readouterr().out
    assert main(["failures"]) == 0
    assert f"(home {_isolated_home.resolve()})" in capsys.readouterr().out


def test_the_default_home_says_how_to_pick_another(
    _isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RUNDOSSIER_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert main(["show", "run_nope"]) == EXIT_NOT_FOUND
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    home = (tmp_path / "user" / ".rundossier").resolve()
    assert f"no run with id 'run_nope' in sqlite:///{home}/rundossier.db" in err
    assert "the default: set RUNDOSSIER_HOME to use another" in err
