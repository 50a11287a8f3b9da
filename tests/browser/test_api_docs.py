"""The API docs page (`/docs`, FastAPI's Swagger UI) works offline: in Debian's chromium every
request it makes goes to the server on 127.0.0.1 (its script and stylesheet are packaged files,
fastapi-offline's), and every operation of the OpenAPI renders; standalone and under a prefix, as
Airflow's API server mounts the app at /rundossier."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from playwright.sync_api import expect

from rundossier.server import create_app
from tests.browser.conftest import _settings
from tests.liveserver import LiveServer

pytestmark = pytest.mark.browser

METHODS = {"get", "put", "post", "delete", "patch"}


def operations(openapi: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m.upper(), path) for path, item in openapi["paths"].items() for m in item if m in METHODS]


@pytest.mark.parametrize("prefix", ["", "/rundossier"])
def test_the_docs_page_loads_only_from_this_server_and_renders_every_operation(
    page: Any, tmp_path: Path, prefix: str
) -> None:
    app = create_app(_settings(tmp_path))
    if prefix:
        outer = FastAPI()
        outer.mount(prefix, app)
        app = outer
    with LiveServer(app) as server:
        base = server.url + prefix
        expected = operations(httpx.get(base + "/openapi.json", timeout=10).json())
        assert len(expected) >= 10
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        page.goto(base + "/docs")
        blocks = page.locator(".opblock")
        expect(blocks).to_have_count(len(expected))
        for method, path in expected:
            block = page.locator(f".opblock-{method.lower()}", has=page.locator(f"[data-path='{path}']"))
            expect(block).to_have_count(1)
        expect(page.locator(".information-container .title")).to_contain_text("rundossier")

    assert any(u.endswith("/openapi.json") for u in requested)
    assert any("swagger-ui-bundle.js" in u for u in requested)
    elsewhere = [u for u in requested if not u.startswith("data:") and urlsplit(u).hostname != "127.0.0.1"]
    assert elsewhere == [], f"the docs page sent requests off the machine: {elsewhere}"
