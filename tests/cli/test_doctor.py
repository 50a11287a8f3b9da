"""`rundossier doctor`: a healthy home passes; each broken part is one problem with a fix (exit 1).

Real backends: SQLite files, a local blob folder, a TCP port that refuses or never answers for an
unreachable PostgreSQL, a real spool item. The orchestrator probes run for real in the Airflow and
Prefect suites (tests/integrations/*/test_doctor.py); here, what each answer becomes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from rundossier import Recorder
from rundossier.cli.main import main
from rundossier.cli.probes import ProbeFailed, airflow_outcome, check_airflow, check_prefect, prefect_outcome
from rundossier.storage.db.engine import make_engine
from rundossier.storage.db.schema import upgrade
from rundossier.storage.spool import Spool, SpoolItem
from tests.tcpproxy import TcpProxy


def _doctor(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["doctor", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] == (code == 0)
    return code, report


def _check(report: dict[str, Any], name: str) -> dict[str, Any]:
    (check,) = [c for c in report["checks"] if c["name"] == name]
    return check


def _problems(report: dict[str, Any]) -> list[str]:
    return [c["name"] for c in report["checks"] if c["status"] == "problem"]


def _record_a_run() -> None:
    rec = Recorder.from_env()
    with rec.run("doctor_flow") as run, run.step("s"):
        pass


def test_a_healthy_home_passes_and_shows_the_settings(
    _isolated_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUNDOSSIER_API_TOKEN", "a-secret-token-of-enough-length")
    monkeypatch.setenv("RUNDOSSIER_STORAGE_OPTIONS", '{"auto_mkdir": true, "secret": "hunter2"}')
    _record_a_run()
    code, report = _doctor(capsys)
    assert code == 0 and _problems(report) == []
    assert "current" in _check(report, "database")["detail"]
    assert "written, read back and deleted" in _check(report, "storage")["detail"]
    assert not [p for p in (_isolated_home / "blobs").rglob("*") if "doctor" in p.name]  # the probe is gone
    settings = report["settings"]
    assert settings["home"] == {"value": str(_isolated_home.resolve()), "source": "RUNDOSSIER_HOME"}
    assert settings["db_timeout"]["source"] == "default"
    assert settings["api_token"]["value"] == "***"
    assert settings["storage_options"]["value"] == {"auto_mkdir": True, "secret": "***"}
    assert "hunter2" not in json.dumps(report) and "a-secret-token" not in json.dumps(report)
    assert main(["doctor"]) == 0  # the table for people
    table = capsys.readouterr().out
    assert "no problems found" in table and "hunter2" not in table and "RUNDOSSIER_HOME" in table


def test_a_fresh_home_is_not_a_problem(_isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _doctor(capsys)
    assert code == 0 and "not created yet" in _check(report, "database")["detail"]


@pytest.mark.parametrize("fault", ["refuse", "stall"])
def test_an_unreachable_database_is_a_problem_within_the_timeout(
    _isolated_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fault: str
) -> None:
    with TcpProxy(1) as proxy:  # never forwards: refuses connections, or accepts and says nothing
        getattr(proxy, "cut" if fault == "refuse" else "stall")()
        monkeypatch.setenv("RUNDOSSIER_DB_URL", f"postgresql://rd:pw-not-shown@127.0.0.1:{proxy.port}/rd")
        monkeypatch.setenv("RUNDOSSIER_DB_TIMEOUT", "1")
        code, report = _doctor(capsys)
    assert code == 1 and _problems(report) == ["database"]
    db = _check(report, "database")
    assert "did not answer" in db["detail"] and "RUNDOSSIER_DB_URL" in db["fix"]
    assert "pw-not-shown" not in json.dumps(report)


def test_an_unknown_storage_scheme_is_a_problem(
    _isolated_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUNDOSSIER_STORAGE_URL", "nosuchfs://bucket/prefix")
    code, report = _doctor(capsys)
    assert code == 1 and _problems(report) == ["storage"]
    storage = _check(report, "storage")
    assert "unknown protocol 'nosuchfs'" in storage["detail"] and "RUNDOSSIER_STORAGE_URL" in storage["fix"]


def test_a_storage_that_refuses_writes_is_a_problem(
    _isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if os.geteuid() == 0:
        target = tmp_path / "a-file"  # root writes anywhere: a file where the folder should be
        target.write_text("not a folder")
    else:
        target = tmp_path / "read-only"
        target.mkdir(mode=0o500)
    monkeypatch.setenv("RUNDOSSIER_STORAGE_URL", f"file://{target}")
    code, report = _doctor(capsys)
    assert code == 1 and _problems(report) == ["storage"]
    assert "could not write a probe object" in _check(report, "storage")["detail"]


def test_an_outdated_schema_is_a_problem_db_upgrade_fixes(
    _isolated_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _isolated_home.mkdir(parents=True)
    engine = make_engine(f"sqlite:///{_isolated_home}/rundossier.db")
    upgrade(engine, "0005_root_try")
    engine.dispose()
    code, report = _doctor(capsys)
    assert code == 1 and _problems(report) == ["database"]
    db = _check(report, "database")
    assert "0005_root_try" in db["detail"] and "rundossier db upgrade" in db["fix"]
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    assert _doctor(capsys)[0] == 0


def test_spool_items_are_a_problem_flush_fixes(_isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _record_a_run()
    spool = Spool(_isolated_home / "spool")
    spool.put(SpoolItem(blobs=[("python/x/doctor.txt", b"waiting")], batch=None, unmark=[], reason="test"))
    spool.put(SpoolItem(blobs=[("python/x/doctor2.txt", b"waiting")], batch=None, unmark=[], reason="test"))
    code, report = _doctor(capsys)
    assert code == 1 and _problems(report) == ["spool"]
    spooled = _check(report, "spool")
    assert "2 item(s) waiting" in spooled["detail"] and "the oldest from" in spooled["detail"]
    assert "rundossier flush" in spooled["fix"]
    assert main(["flush"]) == 0
    capsys.readouterr()
    assert _doctor(capsys)[0] == 0


def test_bad_settings_are_a_problem_and_the_rest_is_skipped(
    _isolated_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUNDOSSIER_HEARTBEAT", "soon")
    code, report = _doctor(capsys)
    assert code == 1 and _problems(report) == ["settings"]
    assert "RUNDOSSIER_HEARTBEAT" in _check(report, "settings")["detail"]
    assert {_check(report, n)["status"] for n in ("database", "storage", "spool")} == {"skipped"}


@pytest.mark.parametrize(
    "found,status,says",
    [
        ({"loaded": True, "errors": {}, "home": "/af/rundossier"}, "ok", "/af/rundossier"),
        (
            {"loaded": True, "errors": {"ep": "Plugin 'rundossier' already registered, skipping"}, "home": "/h"},
            "ok",
            "loads",
        ),
        ({"loaded": False, "errors": {}, "home": None}, "problem", "not among the loaded"),
        ({"loaded": False, "errors": {"rundossier_plugin.py": "ImportError: x"}, "home": None}, "problem", "x"),
        (ProbeFailed("no answer within 120s"), "problem", "no answer"),
    ],
)
def test_the_airflow_check_says_what_the_probe_found(found: Any, status: str, says: str) -> None:
    check = airflow_outcome(found)
    assert check.status == status and says in check.detail


@pytest.mark.parametrize(
    "found,status,says",
    [
        (
            {"slug": "rundossier", "collections": ["rundossier.prefect"], "api": None, "registered": None},
            "ok",
            "imports",
        ),
        (
            {"slug": "rundossier", "collections": ["rundossier.prefect"], "api": "http://p", "registered": True},
            "ok",
            "p",
        ),
        (
            {"slug": "rundossier", "collections": ["rundossier.prefect"], "api": "http://p", "registered": False},
            "problem",
            "not registered",
        ),
        ({"slug": "rundossier", "collections": [], "api": None, "registered": None}, "problem", "entry point"),
    ],
)
def test_the_prefect_check_says_what_the_probe_found(found: Any, status: str, says: str) -> None:
    check = prefect_outcome(found)
    assert check.status == status and says in check.detail


def test_without_the_orchestrators_their_checks_are_skipped() -> None:
    import importlib.util

    for name, check in (("airflow", check_airflow), ("prefect", check_prefect)):
        if importlib.util.find_spec(name) is None:
            assert check().status == "skipped"
