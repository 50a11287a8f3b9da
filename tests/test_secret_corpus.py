"""The secret corpus: every shape in tests/data/secret_shapes.json, planted everywhere a task can
put text, is never stored or served: 0 leaked.

Planted in: exception messages, `add_note` notes, args of nested causes, exception-group members,
source lines shown in traces, log lines (print, logging with %s and %r, stderr, multi-line),
run tags, `record_event` summaries and data, step names, upstream names, run keys, flow ids,
failure strings reported without an exception (`record_failure`, `finish_run`), and a recorder
whose storage and database are down (the spool). Read back through: every blob (decompressed),
every column of every table (and the database file's bytes), the spool's files, every GET route
of the HTTP API (the test fails when a route is added and not read here), the live stream, and
the CLI (`--json` and tables).

A secret counts as leaked when its whole text, or 10 characters from its start, middle or end,
appear anywhere (a truncated or wrapped secret is a leak too).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import logging
import re
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from sqlalchemy import create_engine, inspect, text

from rundossier import Recorder
from rundossier.cli import commands
from rundossier.cli.main import main
from rundossier.core.masking import DEFAULT_MASKER, FAMILIES
from rundossier.server import create_app
from rundossier.settings import Settings
from tests.liveserver import LiveServer

DATA = Path(__file__).parent / "data" / "secret_shapes.json"
SHAPES: list[dict[str, Any]] = json.loads(DATA.read_text())["shapes"]
EXTRA_KINDS = ("Airflow connection URI", "Airflow Variable", "Prefect Secret block")


def _fragments(secret: str) -> list[str]:
    if len(secret) <= 12:
        return [secret]
    mid = len(secret) // 2 - 5
    return [secret[:10], secret[mid : mid + 10], secret[-10:]]


SECRETS = sorted({s for shape in SHAPES for s in shape["secrets"]})
_FRAGMENT = re.compile("|".join(re.escape(f) for s in SECRETS for f in _fragments(s)))
_OWNER = {f: s for s in SECRETS for f in _fragments(s)}


def leaks(text: str) -> set[str]:
    """The corpus secrets whose text (or part of it) appears in `text`."""
    return {_OWNER[m.group()] for m in _FRAGMENT.finditer(text)}


def _single_line(shape: dict[str, Any]) -> bool:
    return "\n" not in shape["text"] and len(shape["text"]) <= 180


# --- the corpus itself -----------------------------------------------------------------------


def test_the_corpus_covers_every_family_and_the_orchestrators() -> None:
    kinds = {shape["family"] for shape in SHAPES}
    assert len(SHAPES) >= 80
    assert set(FAMILIES) <= kinds, set(FAMILIES) - kinds
    assert set(EXTRA_KINDS) <= kinds
    assert kinds <= set(FAMILIES) | set(EXTRA_KINDS)


@pytest.mark.parametrize("shape", SHAPES, ids=[f"{s['family']}: {s['context']}" for s in SHAPES])
def test_each_shape_is_masked_in_one_text(shape: dict[str, Any]) -> None:
    out = DEFAULT_MASKER.mask(shape["text"])
    assert not leaks(out), out
    assert DEFAULT_MASKER.mask(out) == out


# --- recording: every shape planted everywhere ---------------------------------------------------


@dataclass
class Recorded:
    home: Path
    settings: Settings
    spool_home: Path
    run_ids: list[str] = field(default_factory=list)


def _source_module(folder: Path) -> Any:
    """A module whose function i raises on a source line that holds shape i (as a repr)."""
    lines = []
    for i, shape in enumerate(SHAPES):
        lines.append(f"def f_{i}():\n    value = {shape['text']!r}; raise RuntimeError('raised next to a secret')\n")
    path = folder / "corpus_source.py"
    path.write_text("\n".join(lines))
    spec = importlib.util.spec_from_file_location("corpus_source", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _raise_shape(text: str, fn: Callable[[], None]) -> None:
    """A chain holding `text` everywhere: source line, nested cause args, notes, group members."""
    try:
        try:
            fn()
        except RuntimeError as inner:
            raise ValueError("nested cause args", text, {"detail": text}) from inner
    except ValueError as mid:
        err = KeyError(text)
        err.add_note(f"note: {text}")
        raise ExceptionGroup(f"group: {text}", [err, TypeError(text), ValueError("x", [text])]) from mid


def _record(rec: Recorder, folder: Path) -> list[str]:
    source = _source_module(folder)
    log = logging.getLogger("corpus")
    tags: dict[str, Any] = {f"shape_{i}": s["text"] for i, s in enumerate(SHAPES)}
    tags["nested"] = {"password": SECRETS[0], "list": [s["text"] for s in SHAPES[:5]]}
    run_ids = []
    with rec.run("corpus_flow", tags=tags) as run:
        run_ids.append(run.run_id)
        for i, shape in enumerate(SHAPES):
            t = shape["text"]
            try:
                with run.step(f"s{i:02d}") as step:
                    secret = shape["secrets"][0]
                    step.artifact(t, role="input", kind=t)  # looked up: the lookup's error note holds it too
                    # a password in a URL's userinfo cannot hold / @ ? # unencoded (it would not be a URL)
                    userinfo = "" if set("/@?#") & set(secret) else f"etl:{secret}@"
                    step.artifact(f"https://{userinfo}files.example.com/x.csv?token={secret}", size=1, checksum=t)
                    print(t)
                    log.warning("shape %s: %s", i, t)
                    log.error("repr %r", t)
                    sys.stderr.write(t + "\n")
                    rec.record_event(
                        run,
                        "custom_note",
                        t,
                        step_id=f"s{i:02d}",
                        try_number=1,
                        data={"text": t, "nested": {"list": [t]}, "api_key": shape["secrets"][0]},
                    )
                    _raise_shape(t, getattr(source, f"f_{i}"))
            except BaseException:  # noqa: BLE001 - the step's own exception: recorded, ignored here
                pass
    short = [s for s in SHAPES if _single_line(s)]
    ids = rec.start_run(f"corpus ids {short[0]['text']}", f"key {short[1]['text']}")
    run_ids.append(ids.run_id)
    for shape in short:
        step = ids.start_step(f"step {shape['text']}", upstream=[f"up {shape['text']}"])
        step.finish("failed", f"failed with {shape['text']}")
    rec.record_failure(ids, "reported", "scheduler said: " + " | ".join(s["text"] for s in SHAPES))
    ids.finish("failed", "the run failed: " + " | ".join(s["text"] for s in SHAPES))
    everything = "\n".join(s["text"] for s in SHAPES)
    with pytest.raises(RuntimeError):
        with rec.run("corpus_run_level", run_key=f"manual {short[2]['text']}") as failing:
            run_ids.append(failing.run_id)
            raise RuntimeError(everything)
    return run_ids


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    folder = tmp_path_factory.mktemp("corpus")
    home = folder / "home"
    settings = Settings.resolve(
        explicit={"home": str(home), "db_url": f"sqlite:///{home}/rundossier.db", "storage_url": f"file://{home}/blobs"}
    )
    rec = Recorder(settings, live_log_interval=None)
    run_ids = _record(rec, folder)
    rec.close()
    # a recorder whose storage and database are down: everything waits in its spool
    spool_home = folder / "spool_home"
    blocked = folder / "not_a_dir"
    blocked.write_text("a file where a folder should be")
    down = Recorder(
        Settings.resolve(
            explicit={
                "home": str(spool_home),
                "db_url": f"sqlite:///{blocked}/db.sqlite",
                "storage_url": f"file://{blocked}/blobs",
            }
        ),
        live_log_interval=None,
    )
    with pytest.raises(ExceptionGroup):
        with down.run("corpus_spooled", tags={"all": [s["text"] for s in SHAPES]}) as run, run.step("s"):
            for s in SHAPES:
                print(s["text"])
            _raise_shape("\n".join(s["text"] for s in SHAPES), lambda: (_ for _ in ()).throw(RuntimeError("x")))
    assert down.spool.pending()
    yield Recorded(home, settings, spool_home, run_ids)


# --- reading back -----------------------------------------------------------------------------


def _read(path: Path) -> str:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8", "replace")


def test_no_blob_holds_a_secret(recorded: Recorded) -> None:
    files = [p for p in (recorded.home / "blobs").rglob("*") if p.is_file()]
    assert len(files) > 2 * len(SHAPES)  # a trace (text and JSON) and a log per failed step
    found = {str(p.relative_to(recorded.home)): leaks(_read(p)) for p in files}
    found.update({f"key {p.relative_to(recorded.home)}": leaks(str(p)) for p in files})
    assert {k: v for k, v in found.items() if v} == {}


def test_no_database_column_holds_a_secret(recorded: Recorded) -> None:
    engine = create_engine(recorded.settings.db_url)
    found: dict[str, set[str]] = {}
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            rows = conn.execute(text(f'SELECT * FROM "{table}"')).mappings().all()
            for row in rows:
                for column, value in row.items():
                    hit = leaks(json.dumps(value, default=str) if not isinstance(value, str) else value)
                    if hit:
                        found.setdefault(f"{table}.{column}", set()).update(hit)
    engine.dispose()
    assert found == {}
    assert not leaks((recorded.home / "rundossier.db").read_bytes().decode("utf-8", "replace"))


def test_the_spool_holds_no_secret(recorded: Recorded) -> None:
    files = [p for p in (recorded.spool_home / "spool").rglob("*") if p.is_file()]
    assert files
    assert {str(p): leaks(_read(p)) for p in files if leaks(_read(p))} == {}


class _Client:
    """Reads every response and remembers which GET routes it went through."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.bodies: list[tuple[str, str]] = []

    def get(self, url: str, **params: Any) -> httpx.Response:
        r = self.client.get(url, params=params or None)
        assert r.status_code < 500, (url, r.status_code, r.text[:300])
        self.bodies.append((url, r.text + "\n" + "\n".join(f"{k}: {v}" for k, v in r.headers.items())))
        return r


def _read_api(c: _Client, run_ids: list[str]) -> set[str]:
    """Every GET route, for every run and step; returns the route templates it went through."""
    routes = {"/healthz", "/api/about", "/api/runs", "/api/flows", "/api/failures", "/api/retention", "/api/lookup"}
    cursor = None
    runs: list[dict[str, Any]] = []
    while True:
        page = c.get("/api/runs", limit=50, **({"cursor": cursor} if cursor else {})).json()
        runs += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert {r["run_id"] for r in runs} >= set(run_ids)
    c.get("/healthz")
    c.get("/api/about")
    c.get("/api/flows")
    c.get("/api/failures", limit=500)
    c.get("/api/retention")
    artifacts_read = 0
    for r in runs:
        c.get("/api/lookup", orchestrator=r["orchestrator"], flow_id=r["flow_id"], run_key=r["run_key"])
        detail = c.get(f"/api/runs/{r['run_id']}").json()
        c.get(f"/api/runs/{r['run_id']}/trace")
        c.get(f"/api/runs/{r['run_id']}/trace.json")
        cursor = None
        while True:
            arts = c.get(
                f"/api/runs/{r['run_id']}/artifacts", limit=500, **({"cursor": cursor} if cursor else {})
            ).json()
            for a in arts["items"]:
                artifacts_read += 1
                c.get("/api/artifacts", uri=a["uri"])
            cursor = arts["next_cursor"]
            if not cursor:
                break
        for step in detail["steps"]:
            base = f"/api/runs/{r['run_id']}/steps/{step['step_id']}"
            c.get(f"{base}/trace", **{"try": step["try_number"]})
            c.get(f"{base}/trace.json", **{"try": step["try_number"]})
            c.get(f"{base}/logs/download", **{"try": step["try_number"]})
            page_no = 1
            while True:
                logs = c.get(f"{base}/logs", stream="all", page=page_no, page_size=500, **{"try": step["try_number"]})
                body = logs.json() if logs.status_code == 200 else {}
                if not body.get("next_page"):
                    break
                page_no = body["next_page"]
    assert artifacts_read >= 2 * len(SHAPES)  # every step's artifacts were recorded and read
    routes |= {
        "/api/runs/{run_id}",
        "/api/runs/{run_id}/trace",
        "/api/runs/{run_id}/trace.json",
        "/api/runs/{run_id}/steps/{step_id}/trace",
        "/api/runs/{run_id}/steps/{step_id}/trace.json",
        "/api/runs/{run_id}/steps/{step_id}/logs",
        "/api/runs/{run_id}/steps/{step_id}/logs/download",
        "/api/stream",  # read by test_the_live_stream_holds_no_secret
        "/api/runs/{run_id}/artifacts",
        "/api/artifacts",
    }
    return routes


@pytest.fixture(scope="module")
def served(recorded: Recorded) -> Iterator[LiveServer]:
    app = create_app(recorded.settings)
    with LiveServer(app) as server:
        yield server


def test_no_api_response_holds_a_secret(recorded: Recorded, served: LiveServer) -> None:
    with httpx.Client(base_url=served.url, timeout=30) as client:
        c = _Client(client)
        covered = _read_api(c, recorded.run_ids)
        spec = client.get("/openapi.json").json()
    gets = {path.replace(":path", "") for path, ops in spec["paths"].items() if "get" in ops}
    assert gets <= covered, f"GET routes not read by this test: {gets - covered}"
    assert len(c.bodies) > 5 * len(SHAPES)
    assert {url: leaks(body) for url, body in c.bodies if leaks(body)} == {}


def test_the_live_stream_holds_no_secret(recorded: Recorded, served: LiveServer) -> None:
    rec = Recorder(recorded.settings, live_log_interval=None)
    seen: list[str] = []
    with httpx.Client(base_url=served.url, timeout=30) as client:
        with client.stream("GET", "/api/stream", params={"poll": 0.2, "max_seconds": 4}) as r:
            for line in r.iter_lines():
                seen.append(line)
                if line.startswith("event: hello"):
                    threading.Thread(target=_record_live, args=(rec,)).start()
    rec.close()
    streamed = "\n".join(seen)
    assert "event: run" in streamed
    assert not leaks(streamed)


def _record_live(rec: Recorder) -> None:
    short = [s for s in SHAPES if _single_line(s)]
    run = rec.start_run("corpus_live", f"live {short[3]['text']}", tags={"t": [s["text"] for s in SHAPES]})
    run.finish("failed", "live: " + " | ".join(s["text"] for s in SHAPES))


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main(args)
    captured = capsys.readouterr()
    assert code in (0, 3), (args, code, captured.err[-500:])
    return captured.out + captured.err


def test_no_cli_output_holds_a_secret(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUNDOSSIER_HOME", str(recorded.home))
    monkeypatch.setattr(commands, "out", Console(highlight=False, width=100_000))  # no wrapping: whole lines
    outputs: dict[str, str] = {}
    for args in (
        ["runs", "--json", "--limit", "500"],
        ["runs", "--limit", "500"],
        ["failures"],
        ["failures", "--json", "--limit", "500"],
    ):
        outputs[" ".join(args)] = _cli(args, capsys)
    runs = json.loads(outputs["runs --json --limit 500"])["items"]
    for r in runs:
        rid = r["run_id"]
        outputs[f"show {rid} --json"] = _cli(["show", rid, "--json"], capsys)
        outputs[f"show {rid}"] = _cli(["show", rid], capsys)
        outputs[f"trace {rid}"] = _cli(["trace", rid], capsys)
        for step in json.loads(outputs[f"show {rid} --json"])["steps"]:
            if step.get("error"):
                args = ["trace", rid, "--step", step["step_id"], "--try", str(step["try_number"])]
                outputs[" ".join(args)] = _cli(args, capsys)
    assert len(outputs) > len(SHAPES)
    assert {k: v for k, v in ((k, leaks(o)) for k, o in outputs.items()) if v} == {}
