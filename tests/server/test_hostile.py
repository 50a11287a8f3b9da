"""Hostile requests against a real server on loopback: ids that try to leave the store or inject
headers, a foreign Host (DNS rebinding), cross-origin writes (CSRF), the security headers, and the
token on every route.
"""

from __future__ import annotations

import gzip
import hmac
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from rundossier.server import create_app
from rundossier.server.guard import allowed_host_names, cross_origin_refusal, host_name, host_refusal
from rundossier.server.headers import CSP, DOCS_CSP
from rundossier.settings import Settings
from rundossier.storage.db import RunStore
from tests.liveserver import LiveServer
from tests.seeding import failed_run, history_run
from tests.server.conftest import Api

SECRET = "TOP-SECRET-OUTSIDE-THE-STORE"

HOSTILE_IDS = [
    "../../../../../../etc/passwd",
    "..",
    "../secret",
    "%2e%2e/%2e%2e/secret",
    "..%2F..%2Fsecret",
    "run_x\r\nSet-Cookie: pwned=1",
    "run_x\nX-Evil: 1",
    "\x00",
    "run_\x00../secret",
    'run_"; filename="evil.sh',
    "'; DROP TABLE rd_run; --",
    "A" * 4096,
    "run_😀🔥",
    "ἀρχή/\u202e/☃",
]


def _operations(api: Api) -> list[tuple[str, str, dict[str, Any]]]:
    spec = api.client.get("/openapi.json").json()
    out = []
    for path, item in spec["paths"].items():
        if path == "/api/stream":
            continue
        for method, op in item.items():
            out.append((method.upper(), path, op))
    return out


@pytest.fixture
def planted(api: Api, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A recorded failure, and files with a secret just outside the blob store's root."""
    run_id = failed_run(api.rec)
    root = Path(api.blobs.url.removeprefix("file://"))
    for target in (root.parent / "secret", root.parent / "secret.gz", root.parent / "load.1.trace.txt.gz"):
        target.write_bytes(gzip.compress(SECRET.encode()))
    yield {"run_id": run_id, "step_id": "load"}


def _assert_safe(r: httpx.Response) -> None:
    assert r.status_code < 500, (r.request.url, r.text)
    assert SECRET not in r.text
    assert "set-cookie" not in r.headers and "x-evil" not in r.headers
    assert "pwned" not in r.headers.get("content-disposition", "")
    if r.status_code >= 400:
        body = r.json()
        assert set(body) >= {"error"} and set(body["error"]) == {"type", "message"}


def test_hostile_ids_through_every_route_and_parameter(api: Api, planted: dict[str, str]) -> None:
    """Every path and query parameter of every operation, one hostile value at a time."""
    valid = {"run_id": planted["run_id"], "step_id": planted["step_id"], "pattern": "nightly_etl"}
    calls = 0
    for method, path, op in _operations(api):
        params = [p for p in op.get("parameters", []) if p["in"] in ("path", "query")]
        body = {"keep_days": 3} if method == "PUT" else None
        for param in params:
            for value in HOSTILE_IDS:
                path_values = {n: quote(v, safe="") for n, v in valid.items()}
                query: dict[str, str] = {}
                if param["in"] == "path":
                    path_values[param["name"]] = quote(value, safe="")
                else:
                    query[param["name"]] = value
                url = re.sub(r"\{(\w+)\}", lambda m, pv=path_values: pv[m.group(1)], path)
                r = api.client.request(method, url, params=query, json=body)
                _assert_safe(r)
                calls += 1
    assert calls > 300


@pytest.mark.parametrize(
    "raw_path",
    [
        "/api/runs/../../secret",
        "/api/runs/%2e%2e/%2e%2e/secret/trace",
        "/api/runs/..%2F..%2Fsecret/trace",
        "/api/runs/{run}/steps/..%2F..%2F..%2Fsecret/trace",
        "/api/runs/{run}/steps/%2e%2e/%2e%2e/%2e%2e/secret/logs/download",
        "/api/runs/{run}/steps/load%0d%0aX-Evil:%201/trace",
        "/api/runs/{run}/steps/load%00/trace",
        "/static/../../../../../../etc/passwd",
        "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/static/js%00.js",
    ],
)
def test_raw_paths_never_leave_the_store(api: Api, planted: dict[str, str], raw_path: str) -> None:
    with httpx.Client(base_url=api.url) as client:
        request = client.build_request("GET", api.url)
        request.url = request.url.copy_with(raw_path=raw_path.format(run=planted["run_id"]).encode("ascii"))
        r = client.send(request)
    _assert_safe(r)
    assert r.status_code == 404
    assert "root:" not in r.text


# -- Host (DNS rebinding) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:8765", "127.0.0.1"),
        ("LOCALHOST", "localhost"),
        ("localhost.:80", "localhost"),
        ("[::1]:8765", "::1"),
        ("[::1]", "::1"),
        ("evil.example", "evil.example"),
        ("evil@127.0.0.1", None),
        ("127.0.0.1/x", None),
        ("127.0.0.1:80:80", None),
        ("127.0.0.1:123456", None),
        ("", None),
        (None, None),
        ("[::1", None),
    ],
)
def test_host_name(header: str | None, name: str | None) -> None:
    assert host_name(header) == name


def test_host_refusal_rules() -> None:
    loopback = allowed_host_names()
    for ok in ("127.0.0.1", "127.0.0.1:1", "localhost:65535", "[::1]:8765", "LocalHost"):
        assert host_refusal(ok, loopback) is None, ok
    for bad in ("evil.example", "evil.example:8765", "127.0.0.1.evil.example", "localhost.evil", "0.0.0.0", None, ""):
        why = host_refusal(bad, loopback)
        assert why is not None and "DNS rebinding" in why and "--allowed-host" in why, bad
    named = allowed_host_names(["rd.internal", "10.0.0.5:8765", "fe80::1"])
    assert host_refusal("rd.internal:8765", named) is None
    assert host_refusal("10.0.0.5", named) is None and host_refusal("[fe80::1]:1", named) is None
    assert host_refusal("evil.example", named) is not None
    assert host_refusal("anything", allowed_host_names(["*"])) is None
    with pytest.raises(ValueError, match="not a host name"):
        allowed_host_names(["bad host/name"])


def _settings(tmp_path: Path) -> Settings:
    return Settings.resolve(explicit={"home": str(tmp_path), "storage_url": f"file://{tmp_path}/blobs"})


@pytest.fixture
def loopback_only(tmp_path: Path) -> Iterator[str]:
    """`serve` without a token: loopback names plus one configured name."""
    with LiveServer(create_app(_settings(tmp_path), allowed_hosts=["rd.internal"])) as server:
        yield server.url


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.nip.io", "attacker.test:80"])
def test_a_foreign_host_is_refused(loopback_only: str, host: str) -> None:
    for path in ("/", "/api/runs", "/static/js/app.js", "/healthz", "/api/retention"):
        r = httpx.get(loopback_only + path, headers={"Host": host})
        assert r.status_code == 400, (path, r.text)
        assert r.json()["error"]["type"] == "host_not_allowed"
        assert "DNS rebinding" in r.json()["error"]["message"]
    r = httpx.post(loopback_only + "/api/retention/sweep", headers={"Host": host})
    assert r.status_code == 400


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.1:1234", "localhost", "localhost:8765", "[::1]:9", "rd.internal"]
)
def test_loopback_names_with_any_port_and_the_configured_name_are_served(loopback_only: str, host: str) -> None:
    r = httpx.get(loopback_only + "/api/runs", headers={"Host": host})
    assert r.status_code == 200, r.text


def test_with_a_token_any_host_is_served(tmp_path: Path) -> None:
    token = "t" * 24
    with LiveServer(create_app(_settings(tmp_path), api_token=token)) as server:
        r = httpx.get(server.url + "/api/runs", headers={"Host": "rd.example.com", "Authorization": f"Bearer {token}"})
    assert r.status_code == 200


# -- cross-origin writes (CSRF) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "host", "origin", "site", "refused"),
    [
        ("GET", "127.0.0.1:8765", "http://evil.example", "cross-site", False),
        ("HEAD", "127.0.0.1:8765", None, "cross-site", False),
        ("POST", "127.0.0.1:8765", None, None, False),  # curl, scripts
        ("POST", "127.0.0.1:8765", None, "same-origin", False),
        ("POST", "127.0.0.1:8765", None, "none", False),
        ("POST", "127.0.0.1:8765", None, "same-site", True),  # localhost:3000 -> localhost:8765
        ("POST", "127.0.0.1:8765", None, "cross-site", True),
        ("PUT", "127.0.0.1:8765", "http://127.0.0.1:8765", None, False),
        ("PUT", "127.0.0.1:8765", "http://127.0.0.1:3000", None, True),
        ("DELETE", "127.0.0.1:8765", "http://evil.example", None, True),
        ("DELETE", "127.0.0.1:8765", "null", None, True),
        ("POST", "127.0.0.1:8765", "http://evil.example", "same-origin", False),  # the browser's word wins
    ],
)
def test_cross_origin_refusal_rules(
    method: str, host: str, origin: str | None, site: str | None, refused: bool
) -> None:
    assert (cross_origin_refusal(method, host, origin, site) is not None) is refused


def test_state_changing_routes_refuse_cross_origin_requests(api: Api) -> None:
    history_run(api.store, flow_id="kept", status="success")
    writes = [
        ("PUT", "/api/retention/kept", {"keep_days": 1}),
        ("DELETE", "/api/retention/%2A", None),
        ("POST", "/api/retention/sweep?dry_run=false", None),
    ]
    host = api.url.removeprefix("http://")
    for method, path, body in writes:
        for headers in (
            {"Origin": "http://evil.example"},
            {"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"},
            {"Sec-Fetch-Site": "same-site"},
            {"Origin": "null"},
        ):
            r = api.client.request(method, path, json=body, headers=headers)
            assert r.status_code == 403, (method, path, headers, r.text)
            assert r.json()["error"]["type"] == "cross_origin_refused"
    assert api.store.list_policies() == []  # nothing was changed
    assert [r.flow_id for r in api.store.list_runs().items] == ["kept"]
    # the page itself (same origin) and scripts (no Origin) may change things
    r = api.client.put("/api/retention/kept", json={"keep_days": 1}, headers={"Origin": f"http://{host}"})
    assert r.status_code == 200
    r = api.client.put("/api/retention/kept", json={"keep_days": 2}, headers={"Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 200
    assert api.client.delete("/api/retention/kept").status_code == 200
    # reads are never refused: a cross-origin page cannot read the answer anyway
    assert api.client.get("/api/runs", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200


# -- security headers -----------------------------------------------------------------------------


def test_every_answer_has_the_security_headers(api: Api) -> None:
    run_id = failed_run(api.rec)
    for path in ("/", "/static/js/app.js", "/api/runs", f"/api/runs/{run_id}/trace", "/api/nothing", "/healthz"):
        r = api.client.get(path)
        assert r.headers["content-security-policy"] == CSP, path
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
        assert r.headers["x-frame-options"] == "SAMEORIGIN"
        assert r.headers["cross-origin-resource-policy"] == "same-origin"
    assert "'unsafe-inline'" not in CSP and "script-src 'self'" in CSP and "frame-ancestors 'self'" in CSP
    docs = api.client.get("/docs")  # FastAPI's Swagger UI: its inline start script, nothing from elsewhere
    assert docs.headers["content-security-policy"] == DOCS_CSP and "http" not in DOCS_CSP
    # the one file other sites embed: the logo on the Block's card in Prefect's UI
    logo = api.client.get("/static/logo.png")
    assert logo.status_code == 200 and logo.headers["cross-origin-resource-policy"] == "cross-origin"
    assert logo.headers["content-security-policy"] == CSP and logo.headers["x-content-type-options"] == "nosniff"


def test_the_page_has_no_inline_script_or_style() -> None:
    from rundossier.server.ui import STATIC

    html = (STATIC / "index.html").read_text()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert " style=" not in html and re.search(r"\son[a-z]+=", html) is None
    for js in STATIC.rglob("*.js"):
        text = js.read_text()
        assert not re.search(r"""\bstyle:\s*[`"']""", text), f"{js.name} sets a style attribute (blocked by the CSP)"
        assert "innerHTML" not in text and "eval(" not in text, js.name


def test_the_headers_apply_under_a_prefix(tmp_path: Path) -> None:
    from fastapi import FastAPI

    outer = FastAPI()
    outer.mount("/rundossier", create_app(_settings(tmp_path)))
    with LiveServer(outer) as server:
        r = httpx.get(server.url + "/rundossier/")
        assert r.headers["content-security-policy"] == CSP
        assert httpx.get(server.url + "/rundossier/docs").headers["content-security-policy"] == DOCS_CSP


# -- the token --------------------------------------------------------------------------------------

TOKEN = "s3cret-token-of-some-length"


def test_every_route_and_the_stream_answer_401_without_the_token(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    store = RunStore(settings.db_url)
    run_id = history_run(store, flow_id="f", status="failed", error=("E", "m"))
    with LiveServer(create_app(settings, store=store, api_token=TOKEN)) as server:
        good = {"Authorization": f"Bearer {TOKEN}"}
        spec = httpx.get(server.url + "/openapi.json", headers=good).json()
        operations = [(m.upper(), p) for p, item in spec["paths"].items() for m in item]
        assert ("GET", "/api/stream") in operations and len(operations) >= 15
        values = {"run_id": run_id, "step_id": "load", "pattern": "f", "fingerprint": "0123abcd"}
        assert httpx.get(server.url + "/healthz").status_code == 200  # open on purpose: liveness probes
        for method, path in operations:
            if path == "/healthz":
                continue
            url = server.url + re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
            for headers, cookies in (
                ({}, {}),
                ({"Authorization": "Bearer wrong-token-of-some-length"}, {}),
                ({"Authorization": f"Bearer {TOKEN[:-1]}"}, {}),
                ({"Authorization": f"Basic {TOKEN}"}, {}),
                ({}, {"rundossier_token": "wrong-token-of-some-length"}),
            ):
                with httpx.Client(cookies=cookies) as client:
                    r = client.request(method, url, headers=headers, params={"max_seconds": 1})
                assert r.status_code == 401, (method, path, headers, cookies)
                assert r.json()["error"]["type"] == "unauthorized"
        with httpx.stream("GET", server.url + "/api/stream", params={"max_seconds": 0.3}, headers=good) as r:
            assert r.status_code == 200
    store.close()


def test_the_token_is_compared_in_constant_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every decision goes through hmac.compare_digest on equal-length digests (so neither the
    first wrong character nor the token's length shows in the time taken)."""
    from rundossier.server import auth

    seen: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    with LiveServer(create_app(_settings(tmp_path), api_token=TOKEN)) as server:
        for value in ("x", TOKEN[:-1], TOKEN + "x", "y" * 500, TOKEN):
            httpx.get(server.url + "/api/runs", headers={"Authorization": f"Bearer {value}"})
        httpx.get(server.url + "/api/runs", cookies={"rundossier_token": "guess"})
    assert len(seen) >= 6
    assert set(seen) == {(32, 32)}
