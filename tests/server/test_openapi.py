"""The OpenAPI document says what every operation returns: a schema for each success answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from rundossier.server import create_app
from rundossier.settings import Settings


def test_every_operation_documents_its_success_answer(tmp_path: Path) -> None:
    doc = create_app(Settings.resolve(explicit={"home": str(tmp_path)})).openapi()
    undocumented = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            ok = op["responses"].get("200", {}).get("content", {})
            schemas = [c.get("schema") for c in ok.values()]
            if not schemas or not all(s and s != {} for s in schemas):
                undocumented.append(f"{method.upper()} {path}")
    assert undocumented == []
    run = doc["components"]["schemas"]["RunOut"]
    assert list(run["properties"])[:3] == ["run_id", "orchestrator", "flow_id"]
    assert "dossier" in doc["components"]["schemas"]["RunDetail"]["properties"]


def test_the_docs_page_loads_its_swagger_ui_from_this_server(tmp_path: Path) -> None:
    """`/docs` names only files this app serves (fastapi-offline's packaged Swagger UI), under a
    prefix too; the browser test (tests/browser/test_api_docs.py) checks what chromium requests."""
    import re

    import httpx
    from fastapi import FastAPI

    from tests.liveserver import LiveServer

    outer = FastAPI()
    outer.mount("/rundossier", create_app(Settings.resolve(explicit={"home": str(tmp_path)})))
    with LiveServer(outer) as server:
        html = httpx.get(server.url + "/rundossier/docs").text
        links = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html) + re.findall(r"url: '([^']+)'", html)
        assert "/rundossier/openapi.json" in links and "http" not in html.split("<body>", 1)[1]
        assets = [u for u in links if u.startswith("/rundossier/static/docs/")]
        assert {u.rsplit("/", 1)[1] for u in assets} >= {"swagger-ui-bundle.js", "swagger-ui.css"}
        for url in links:
            assert url.startswith("/rundossier/"), url
            assert httpx.get(server.url + url).status_code == 200, url


def test_without_fastapi_offline_the_app_starts_and_docs_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rundossier installed bare into an environment with FastAPI (Airflow's): the app still
    starts; `/docs` answers 404 naming what to install; the OpenAPI is served."""
    import sys

    import httpx

    from tests.liveserver import LiveServer

    monkeypatch.setitem(sys.modules, "fastapi_offline", None)  # import raises ModuleNotFoundError
    with LiveServer(create_app(Settings.resolve(explicit={"home": str(tmp_path)}))) as server:
        docs = httpx.get(server.url + "/docs")
        assert docs.status_code == 404 and docs.json()["error"]["type"] == "docs_unavailable"
        assert "pip install 'rundossier[server]'" in docs.json()["error"]["message"]
        assert httpx.get(server.url + "/openapi.json").status_code == 200


def test_time_parameters_are_strings_that_say_what_they_accept(tmp_path: Path) -> None:
    doc = create_app(Settings.resolve(explicit={"home": str(tmp_path)})).openapi()
    for path, name in (("/api/runs", "since"), ("/api/runs", "until"), ("/api/failures", "since")):
        (param,) = [p for p in doc["paths"][path]["get"]["parameters"] if p["name"] == name]
        types = {s.get("type") for s in param["schema"].get("anyOf", [param["schema"]])}
        assert types == {"string", "null"}
        assert "6h" in param["description"] and "ISO-8601" in param["description"]
