"""`GET /api/about`: the server's version and the orchestrator UIs the page may link runs to."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import httpx

from rundossier import __version__
from rundossier.server import create_app
from rundossier.settings import Settings
from tests.liveserver import LiveServer


def _settings(tmp_path: Path) -> Settings:
    return Settings.resolve(explicit={"home": str(tmp_path), "storage_url": f"file://{tmp_path}/blobs"})


def test_standalone_the_page_links_to_no_orchestrator(tmp_path: Path) -> None:
    with LiveServer(create_app(_settings(tmp_path))) as server:
        r = httpx.get(server.url + "/api/about", timeout=10)
    assert r.status_code == 200
    assert r.json() == {"version": __version__, "orchestrator_urls": {}}
    assert __version__ == version("rundossier")  # one source: the installed distribution


def test_an_embedding_app_says_where_the_orchestrator_ui_is(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path), orchestrator_urls={"airflow": "../"})
    with LiveServer(app) as server:
        r = httpx.get(server.url + "/api/about", timeout=10)
    assert r.json()["orchestrator_urls"] == {"airflow": "../"}
