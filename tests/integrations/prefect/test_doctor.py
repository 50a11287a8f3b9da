"""`rundossier doctor` where Prefect is installed: the Block imports and, asked through
PREFECT_API_URL in a subprocess, the Prefect server knows its block type. (The answer for a
server that does not know it is tested in tests/cli/test_doctor.py: deleting the block type here
would delete the session's saved Blocks with it.)"""

from __future__ import annotations

import pytest

from rundossier.cli.probes import check_prefect


@pytest.fixture
def api_url(prefect_server: None, monkeypatch: pytest.MonkeyPatch) -> str:
    from prefect.settings import PREFECT_API_URL

    url = str(PREFECT_API_URL.value())
    monkeypatch.setenv("PREFECT_API_URL", url)  # the probe runs in a subprocess: it reads the environment
    return url


def test_doctor_finds_the_block_type_registered(api_url: str) -> None:
    check = check_prefect()
    assert check.status == "ok", check
    assert f"registered with {api_url}" in check.detail
