"""Live updates (SSE), the UI page and its assets at `/` and under a prefix, and the token guard."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from rundossier.errors import ConfigError
from rundossier.server import create_app
from rundossier.server.ui import STATIC
from rundossier.settings import Settings
from tests.liveserver import LiveServer
from tests.seeding import history_run
from tests.server.conftest import Api


def test_stream_sends_new_runs_and_state_changes(api: Api) -> None:
    events: list[tuple[str, dict[str, object]]] = []
    with api.client.stream("GET", "/api/stream", params={"poll": 0.2, "max_seconds": 8}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        kind = None
        wrote = False
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind:
                events.append((kind, json.loads(line[6:])))
                if kind == "hello" and not wrote:
                    wrote = True
                    run = api.rec.start_run("streamed_flow", "key-1")
                elif kind == "run" and events[-1][1]["status"] == "running":
                    api.rec.finish_run(run, "failed", "it broke")
                elif kind == "run" and events[-1][1]["status"] == "failed":
                    break
    runs = [data for kind, data in events if kind == "run"]
    assert [(r["run_id"], r["status"]) for r in runs] == [(run.run_id, "running"), (run.run_id, "failed")]
    assert runs[1]["error"]["message"] == "it broke"


def test_stream_ends_after_max_seconds(api: Api) -> None:
    with api.client.stream("GET", "/api/stream", params={"poll": 0.1, "max_seconds": 0.5}) as r:
        text = "".join(r.iter_text())
    assert text.startswith("retry: 3000\nevent: hello\n")


def test_stream_rejects_bad_parameters(api: Api) -> None:
    r = api.client.get("/api/stream", params={"poll": 0})
    assert r.status_code == 422 and r.json()["error"]["type"] == "invalid_request"


def test_page_and_assets_are_served(api: Api) -> None:
    page = api.client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'src="static/js/app.js"' in page.text and "https://" not in page.text
    for asset in sorted(STATIC.rglob("*")):
        if asset.is_file():
            rel = asset.relative_to(STATIC).as_posix()
            r = api.client.get(f"/static/{rel}")
            assert r.status_code == 200, rel
            assert r.headers["cache-control"] == "no-cache"
            if rel.endswith(".js"):
                assert "javascript" in r.headers["content-type"], rel  # module scripts need a JS type
            text = r.text.replace("http://www.w3.org/2000/svg", "")  # the SVG namespace name, not a fetch
            assert "http://" not in text and "https://" not in text, f"{rel} loads something from the network"


def test_every_module_import_resolves() -> None:
    """Every relative `import ... from "./x.js"` in the UI names a file that ships."""
    import re

    for js in STATIC.rglob("*.js"):
        for target in re.findall(r"""from\s+["'](\.[^"']+)["']""", js.read_text()):
            assert (js.parent / target).resolve().is_file(), f"{js.name} imports missing {target}"


def test_the_app_works_under_a_prefix(tmp_path: Path) -> None:
    settings = Settings.resolve(explicit={"home": str(tmp_path), "storage_url": f"file://{tmp_path}/blobs"})
    outer = FastAPI()
    outer.mount("/rundossier", create_app(settings))
    from rundossier.storage.db import RunStore

    store = RunStore(settings.db_url)
    run_id = history_run(store, flow_id="prefixed")
    with LiveServer(outer) as server, httpx.Client(base_url=server.url) as client:
        page = client.get("/rundossier/")
        assert page.status_code == 200 and "static/js/app.js" in page.text
        assert client.get("/rundossier/static/js/app.js").status_code == 200
        assert client.get("/rundossier/api/runs").json()["items"][0]["run_id"] == run_id
        assert client.get("/rundossier/api/nothing").json()["error"]["type"] == "not_found"
    store.close()


TOKEN = "s3cret-token-of-some-length"


@pytest.fixture
def guarded(tmp_path: Path) -> LiveServer:
    settings = Settings.resolve(explicit={"home": str(tmp_path), "storage_url": f"file://{tmp_path}/blobs"})
    return LiveServer(create_app(settings, api_token=TOKEN))


def test_token_guard(guarded: LiveServer) -> None:
    with guarded as server, httpx.Client(base_url=server.url) as client:
        r = client.get("/api/runs")
        assert r.status_code == 401 and r.json()["error"]["type"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"
        assert client.get("/api/runs", headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
        assert client.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        with httpx.Client(base_url=server.url, cookies={"rundossier_token": TOKEN}) as with_cookie:
            assert with_cookie.get("/api/runs").status_code == 200
        # the page stores the token percent-encoded
        with httpx.Client(base_url=server.url, cookies={"rundossier_token": TOKEN.replace("-", "%2D")}) as encoded:
            assert encoded.get("/api/runs").status_code == 200
        # the page and its assets load without the token: the page asks for it
        assert client.get("/").status_code == 200
        assert client.get("/static/js/app.js").status_code == 200
        assert client.get("/healthz").status_code == 200
        assert client.get("/openapi.json").status_code == 401


def test_short_tokens_are_refused(tmp_path: Path) -> None:
    settings = Settings.resolve(explicit={"home": str(tmp_path)})
    with pytest.raises(ConfigError, match="at least 16"):
        create_app(settings, api_token="short")


def test_every_asset_is_package_data() -> None:
    """The wheel ships every file of the UI (pyproject's package-data globs cover them)."""
    import tomllib

    import rundossier

    root = Path(rundossier.__file__).parent
    patterns = tomllib.loads((root.parents[1] / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "rundossier"
    ]
    shipped = {p for pattern in patterns for p in root.glob(pattern) if p.is_file()}
    for asset in STATIC.rglob("*"):
        if asset.is_file():
            assert asset in shipped, f"{asset.relative_to(root)} is not package data"
