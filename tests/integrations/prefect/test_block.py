"""The RunDossier Block: Prefect's standard block tests, save/load through the server, the catalog."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite

from rundossier.prefect import RunDossier


class TestRunDossierBlockStandards(BlockStandardTestSuite):
    @pytest.fixture
    def block(self) -> type[Block]:
        return RunDossier


def test_the_block_type_is_in_the_catalog_after_install(prefect_server: None) -> None:
    """The server registered it at start through the `prefect.collections` entry point."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as c:
        block_type = c.read_block_type_by_slug("rundossier")
    assert block_type.name == "RunDossier"
    assert "BLOCK_NAME" in (block_type.code_example or "")


def test_entry_point_names_the_module_prefect_loads() -> None:
    from importlib.metadata import entry_points

    (ep,) = [ep for ep in entry_points(group="prefect.collections") if ep.name == "rundossier"]
    assert ep.value == "rundossier.prefect" and ep.load().RunDossier is RunDossier


def test_save_and_load_through_the_server_keeps_secrets_secret(prefect_server: None, tmp_path: Path) -> None:
    RunDossier(
        storage_url="s3://bucket/dossiers",
        storage_options={"key": "AKIA-not-real", "secret": "s3cr3t", "client_kwargs": {"endpoint_url": "http://x"}},
        db_url="postgresql://rd:hunter2@db.example/rd",
        ui_base_url="https://rundossier.example.com/",
        keep_days=30,
        keep_last=100,
        blob_days=7,
        mask_patterns=[r"acct-(?P<secret>\d+)"],
        hook_timeout_seconds=5,
    ).save("prod-test", overwrite=True)
    loaded = RunDossier.load("prod-test")
    assert loaded.db_url is not None and loaded.db_url.get_secret_value() == "postgresql://rd:hunter2@db.example/rd"
    assert "hunter2" not in repr(loaded) and "s3cr3t" not in repr(loaded)
    assert loaded.storage_options is not None and loaded.storage_options.get_secret_value()["secret"] == "s3cr3t"
    assert loaded.ui_base_url == "https://rundossier.example.com"
    assert loaded.retention_defaults() == {"keep_days": 30, "keep_last": 100, "blob_days": 7}
    assert loaded.settings_layer() == {
        "storage_url": "s3://bucket/dossiers",
        "storage_options": {"key": "AKIA-not-real", "secret": "s3cr3t", "client_kwargs": {"endpoint_url": "http://x"}},
        "db_url": "postgresql://rd:hunter2@db.example/rd",
        "mask_patterns": [r"acct-(?P<secret>\d+)"],
    }
    hooks = loaded.hooks()
    assert set(hooks) == {"on_running", "on_completion", "on_failure", "on_crashed", "on_cancellation"}
    assert set(loaded.task_hooks()) == {"on_running", "on_completion", "on_failure"}


def test_empty_fields_fall_back_to_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RUNDOSSIER_STORAGE_URL", f"file://{tmp_path}/env-blobs")
    monkeypatch.setenv("RUNDOSSIER_STORAGE_OPTIONS", '{"auto_mkdir": true}')
    settings = RunDossier(db_url=f"sqlite:///{tmp_path}/b.db").settings()
    assert settings.storage_url == f"file://{tmp_path}/env-blobs"
    assert settings.storage_options == {"auto_mkdir": True}
    assert settings.db_url == f"sqlite:///{tmp_path}/b.db"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"mask_patterns": ["(unclosed"]}, "not a valid regular expression"),
        ({"db_url": "not a url"}, "not a SQLAlchemy URL"),
        ({"ui_base_url": "rundossier.example.com"}, "must start with http"),
        ({"max_trace_bytes": 10}, "greater than or equal to 4096"),
        ({"keep_days": 0}, "greater than or equal to 1"),
        ({"hook_timeout_seconds": 0}, "greater than 0"),
    ],
)
def test_bad_values_fail_when_the_block_is_made(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RunDossier(**values)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_the_logo_ships_in_the_package_and_rundossiers_server_serves_it(tmp_path: Path) -> None:
    """What Prefect's catalog card loads when RUNDOSSIER_PREFECT_LOGO_URL points at a rundossier server."""
    from importlib.resources import files
    from urllib.request import urlopen

    from rundossier.integrations.prefect.block import LOGO_PATH, logo_url
    from rundossier.server.app import create_app
    from rundossier.settings import Settings
    from tests.liveserver import LiveServer

    packaged = files("rundossier.server").joinpath("static", "logo.png").read_bytes()
    assert _png_size(packaged) == (256, 256)  # square, within the 45-1000 px Prefect's block standards ask
    settings = Settings.resolve(explicit={"home": str(tmp_path), "db_url": f"sqlite:///{tmp_path}/rd.db"})
    with LiveServer(create_app(settings)) as server:
        url = logo_url({"RUNDOSSIER_PREFECT_LOGO_URL": server.url + LOGO_PATH})
        assert url == server.url + "/static/logo.png"
        with urlopen(url, timeout=10) as resp:  # no login: the API may need a token, the logo does not
            assert resp.headers["content-type"] == "image/png" and resp.read() == packaged


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://rundossier.example.com/static/logo.png", "https://rundossier.example.com/static/logo.png"),
        ("", None),
        ("data:image/png;base64,AAAA", None),  # Prefect accepts only http(s) logo URLs
        ("/static/logo.png", None),
    ],
)
def test_logo_url_from_the_environment(value: str, expected: str | None) -> None:
    from rundossier.integrations.prefect.block import logo_url

    assert logo_url({"RUNDOSSIER_PREFECT_LOGO_URL": value}) == expected
    assert logo_url({}) is None
