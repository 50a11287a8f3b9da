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
