"""Inside a real api-server with Airflow's auth on, no rundossier route answers an anonymous caller."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from starlette.routing import Mount

from rundossier.integrations.airflow.plugin import build_app
from rundossier.integrations.airflow.views import URL_PREFIX

PARAM = re.compile(r"{([a-z_]+)(:path)?}")


def concrete_requests(run_id: str) -> list[tuple[str, str]]:
    """(method, path) for every route of the app the plugin mounts, parameters filled with real ids."""
    values = {"run_id": run_id, "step_id": "load", "flow_id": "rd_example_chained_failure"}
    out: list[tuple[str, str]] = []
    for route in build_app().routes:
        path = getattr(route, "path", "")
        if isinstance(route, Mount):
            out.append(("GET", f"{path}/app.js"))
            continue
        filled = PARAM.sub(lambda m: quote(values.get(m.group(1), "x"), safe=""), path)
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            if method not in ("HEAD", "OPTIONS"):
                out.append((method, filled))
    return out


@pytest.fixture(scope="module")
def routes(recorded) -> list[tuple[str, str]]:
    found = concrete_requests(recorded["rd_example_chained_failure"].run_id)
    paths = {p for _, p in found}
    assert {"/", "/healthz", "/api/runs", "/api/lookup", "/openapi.json", "/docs", "/static/app.js"} <= paths
    assert any(p.endswith("/steps/load/trace") for p in paths)
    return found


def test_anonymous_requests_to_every_route_are_refused(api, routes):
    refused = {}
    for method, path in routes:
        status, body, _ = api.get(URL_PREFIX + path, method=method)
        refused[(method, path)] = status
        if status == 401:
            assert b"Not authenticated" in body
    assert all(status in (401, 403) for status in refused.values()), refused


def test_a_bad_token_is_refused_everywhere(api, routes):
    statuses = {(m, p): api.get(URL_PREFIX + p, method=m, token="not-a-jwt")[0] for m, p in routes}
    assert all(status in (401, 403) for status in statuses.values()), statuses


def test_a_signed_in_user_reads_runs_and_downloads_traces(api, store, recorded):
    token = api.token()
    status, body, _ = api.get(URL_PREFIX + "/api/runs?flow_id=rd_example_chained_failure", token=token)
    assert status == 200, body
    run = recorded["rd_example_chained_failure"]
    assert run.run_id.encode() in body
    status, body, headers = api.get(f"{URL_PREFIX}/api/runs/{run.run_id}/steps/load/trace", token=token)
    assert status == 200, body
    assert headers["content-disposition"] == f'attachment; filename="{run.run_id}_trace.txt"'
    assert b"RuntimeError: load of table orders failed" in body


def test_the_plugin_and_its_views_are_registered_once(api):
    import json

    status, body, _ = api.get("/api/v2/plugins", token=api.token())
    assert status == 200
    plugins = [p for p in json.loads(body)["plugins"] if p["name"] == "rundossier"]
    assert len(plugins) == 1  # entry point + drop-in file: one plugin
    views = {v["url_route"]: v for v in plugins[0]["external_views"]}
    assert {v["destination"] for v in views.values()} == {"nav", "dag", "task_instance"}
    assert views["rundossier-trace"]["href"].startswith("rundossier/#/find?orchestrator=airflow&flow_id={DAG_ID}")
    assert plugins[0]["fastapi_apps"][0]["url_prefix"] == URL_PREFIX
    status, body, _ = api.get("/api/v2/importErrors", token=api.token())
    assert b"rundossier" not in body
    status, body, _ = api.get("/api/v2/plugins/importErrors", token=api.token())
    assert b"rundossier" not in body


def test_the_page_learns_where_airflows_ui_is(api):
    """`/rundossier/api/about` tells the page Airflow's UI is at "../" (its links to task instances)."""
    import json

    status, body, _ = api.get(f"{URL_PREFIX}/api/about", token=api.token())
    assert status == 200, body
    assert json.loads(body)["orchestrator_urls"] == {"airflow": "../"}
    assert api.get(f"{URL_PREFIX}/api/about")[0] == 401
