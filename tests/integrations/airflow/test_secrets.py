"""Airflow's own secrets masker as rundossier's first redactor, and failing closed when it breaks."""

from __future__ import annotations

from pathlib import Path

import pytest

from rundossier import Recorder
from rundossier.core.masking import WITHHELD_PREFIX
from rundossier.integrations.airflow import secrets as airflow_secrets
from rundossier.settings import Settings


def _rec(tmp_path: Path) -> Recorder:
    settings = Settings.resolve(explicit={"home": str(tmp_path), "db_url": f"sqlite:///{tmp_path}/r.db"})
    return Recorder(settings, live_log_interval=None, redactors=[airflow_secrets.airflow_redact])


def test_a_secret_airflow_knows_is_masked(tmp_path: Path) -> None:
    from airflow.sdk.log import mask_secret

    mask_secret("Variable-value-Qw8Zr3")  # what a secret Variable or a connection password registers
    rec = _rec(tmp_path)
    assert rec.masker.mask("the value is Variable-value-Qw8Zr3!") == "the value is ***!"
    rec.close()


@pytest.mark.parametrize("answer", [None, b"bytes", 1])
def test_airflow_masker_answering_a_non_str_withholds_the_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: object
) -> None:
    monkeypatch.setattr(airflow_secrets, "_redactors", [lambda text: answer])
    rec = _rec(tmp_path)
    out = rec.masker.mask("conn password is Variable-value-Qw8Zr3")
    assert out.startswith(WITHHELD_PREFIX) and "raised TypeError" in out and "Qw8Zr3" not in out
    rec.close()


def test_airflow_masker_raising_withholds_the_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(text: str) -> str:
        raise RuntimeError(text)

    monkeypatch.setattr(airflow_secrets, "_redactors", [broken])
    rec = _rec(tmp_path)
    out = rec.masker.mask("Variable-value-Qw8Zr3")
    assert (
        out == "[rundossier: text withheld, masking failed: redactor "
        "rundossier.integrations.airflow.secrets.airflow_redact raised RuntimeError]"
    )
    rec.close()
