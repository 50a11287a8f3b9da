"""`rundossier doctor` where Airflow is installed: Airflow's own plugins manager, in a subprocess,
loads the rundossier plugin (and reads its [rundossier] configuration)."""

from __future__ import annotations

import pytest

from rundossier.cli.probes import check_airflow


def test_doctor_sees_airflow_load_the_plugin(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("AIRFLOW__RUNDOSSIER__HOME", f"{tmp_path}/rd")
    check = check_airflow()
    assert check.status == "ok", check
    assert "the rundossier plugin loads" in check.detail and f"{tmp_path}/rd" in check.detail


def test_doctor_reports_a_bad_airflow_cfg_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__RUNDOSSIER__DB_TIMEOUT", "soon")
    check = check_airflow()
    assert check.status == "problem" and "RUNDOSSIER_DB_TIMEOUT" in check.detail and check.fix
