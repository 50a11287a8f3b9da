"""`rundossier --version`: the installed distribution's version, the one the API reports."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from rundossier.cli.main import main


def test_version_is_the_installed_distribution(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"rundossier {version('rundossier')}"


def test_version_from_the_console_script() -> None:
    exe = Path(sys.executable).with_name("rundossier")
    r = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == f"rundossier {version('rundossier')}" and r.stderr == ""
