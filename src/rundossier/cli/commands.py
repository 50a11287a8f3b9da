"""The CLI commands: thin adapters from arguments to the store, blobs and recorder."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from rundossier.cli.text import json_safe, visible
from rundossier.core.dossier import Dossier, dossier_text
from rundossier.core.timefmt import duration_text
from rundossier.core.timeparse import parse_time
from rundossier.errors import ConfigError, InvalidInput, RunNotFound, TraceUnavailable
from rundossier.read.reader import Reader
from rundossier.settings import Settings
from rundossier.storage.backends import Backends
from rundossier.storage.blobs import BlobStore
from rundossier.storage.db import Run, RunQuery, RunStore

# piped output (files, CI logs) gets wide lines instead of rich's 80-column default. Strings are
# never parsed as markup or emoji codes (recorded text holds `[/]`, `:x:`...): styles are Text objects.
out = Console(highlight=False, markup=False, emoji=False, width=None if sys.stdout.isatty() else 200)
_err = Console(stderr=True, highlight=False, markup=False, emoji=False)

STATUS_STYLE = {
    "success": "green",
    "failed": "red",
    "crashed": "red",
    "upstream_failed": "dark_orange",
    "running": "blue",
    "queued": "grey50",
    "paused": "yellow",
    "cancelled": "magenta",
    "skipped": "grey50",
}


class NotFound(Exception):
    """Something the user named does not exist (exit code 3)."""


def err(message: str) -> None:
    _err.print(Text.assemble(("error:", "red"), " ", visible(message)), soft_wrap=True)  # one line, never wrapped


def _settings() -> Settings:
    return Settings.resolve()


def _store(settings: Settings) -> RunStore:
    return RunStore(settings.db_url, timeout=settings.db_timeout)


def _blobs(settings: Settings) -> BlobStore:
    return BlobStore(settings.storage_url, settings.storage_options)


def _reader(settings: Settings) -> Reader:
    return Reader(Backends(settings))


def parse_since(text: str, option: str = "--since") -> datetime:
    """`6h`, `90m`, `3d`, `2w` ago, or an ISO-8601 date or time (UTC when it has no zone), in UTC."""
    return parse_time(text, now=datetime.now(UTC), name=option)


def _fmt_time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _short_error(error_type: str | None, message: str | None) -> str:
    if not (error_type or message):
        return ""
    short_type = (error_type or "").rsplit(".", 1)[-1]
    text = f"{short_type}: {message or ''}".strip(": ")
    return visible((text.splitlines() or [""])[0][:200])


def _status(s: str) -> Text:
    return Text(visible(s), style=STATUS_STYLE.get(s, "white"))


def _print_json(data: Any) -> None:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    sys.stdout.write(json_safe(json.dumps(data, indent=2, ensure_ascii=False)) + "\n")


def runs(args: argparse.Namespace) -> int:
    reader = _reader(_settings())
    query = RunQuery(
        flow_id=args.flow,
        status=tuple(args.status or ()),
        orchestrator=args.orchestrator,
        q=args.search,
        since=parse_since(args.since) if args.since else None,
        fingerprint=args.fingerprint,
    )
    page = reader.runs(query, limit=args.limit, cursor=args.cursor)
    if args.json:
        _print_json(page)
        return 0
    if not page.items:
        filtered = " match these filters" if _filtered(args) else ""
        out.print(
            f"no runs{filtered} in {reader.store.describe()} ({reader.backends.settings.where()})", soft_wrap=True
        )
        return 0
    table = Table(title=f"runs ({reader.store.describe()})", title_justify="left", box=None, pad_edge=False)
    table.add_column("run id", no_wrap=True, min_width=30)
    table.add_column("flow", overflow="ellipsis", no_wrap=True, min_width=12, max_width=30)
    table.add_column("status", no_wrap=True, min_width=7)
    table.add_column("started (UTC)", no_wrap=True, min_width=19)
    table.add_column("duration", no_wrap=True, justify="right", min_width=8)
    table.add_column("error", overflow="ellipsis", no_wrap=True, ratio=1, max_width=80)
    for r in page.items:
        error = _short_error(r.error.type, r.error.message) if r.error is not None else ""
        table.add_row(
            visible(r.run_id),
            visible(r.flow_id),
            _status(r.status),
            _fmt_time(r.started_at),
            duration_text(r.duration_ms),
            error,
        )
    out.print(table)
    if page.next_cursor:
        out.print(f"more: rundossier runs --cursor {page.next_cursor}")
    return 0


def _filtered(args: argparse.Namespace) -> bool:
    return any((args.flow, args.status, args.orchestrator, args.search, args.since, args.fingerprint, args.cursor))


def _not_found(reader: Reader, exc: Exception) -> NotFound:
    """A run the user named is not in this store: say which store (and home) was searched."""
    return NotFound(f"{exc} in {reader.store.describe()} ({reader.backends.settings.where()})")


def show(args: argparse.Namespace) -> int:
    reader = _reader(_settings())
    try:
        run = reader.run(args.run_id)
    except RunNotFound as exc:
        raise _not_found(reader, exc) from None
    dossier = _dossier(reader, run)
    if args.json:
        _print_json(reader.run_show(run, dossier))
        return 0
    steps = reader.steps(run.run_id)
    events = reader.events(run.run_id)
    if dossier is not None and (dossier.classification is not None or dossier.live):
        out.print(visible(dossier_text(dossier), lines=True))
    out.print(Text.assemble((visible(run.flow_id), "bold"), f"  run {visible(run.run_id)}  ", _status(run.status)))
    rows = [
        ("run key", run.run_key),
        ("orchestrator", run.orchestrator),
        ("attempt", str(run.attempt)),
        ("host", run.host or "-"),
        ("queued", _fmt_time(run.queued_at)),
        ("started", _fmt_time(run.started_at)),
        ("finished", _fmt_time(run.finished_at)),
        ("duration", duration_text(run.duration_ms)),
    ]
    for k, v in rows:
        out.print(f"  {k:<13}{visible(v)}")
    if run.error_type or run.error_message:
        error = visible(f"{run.error_type or ''}: {run.error_message or ''}", lines=True)
        out.print(Text.assemble("  ", ("error", "red"), "        ", error))
        if run.root_step_id:
            out.print(f"  root cause   step {visible(run.root_step_id)}")
        if run.blobs_expired:
            out.print(f"  trace        expired by retention on {_fmt_time(run.blobs_expired_at)}", markup=False)
        elif run.spooled:
            out.print("  trace        waiting in the local spool (run `rundossier flush`)", markup=False)
        elif run.trace_uri:
            out.print(f"  trace        rundossier trace {run.run_id}", markup=False)
        else:
            out.print("  trace        none captured (the failure was reported without an exception)", markup=False)
    if steps:
        table = Table(title="steps", title_justify="left", box=None, pad_edge=False)
        table.add_column("step", overflow="fold", max_width=40)
        for col in ("try", "status", "started (UTC)", "duration", "log lines"):
            table.add_column(col, no_wrap=True)
        table.add_column("error", overflow="ellipsis", no_wrap=True, min_width=20, max_width=80)
        for s in steps:
            logs = f"{s.log_lines_stdout} out, {s.log_lines_stderr} err" if s.log_uri else "-"
            table.add_row(
                visible(s.step_id),
                str(s.try_number),
                _status(s.status),
                _fmt_time(s.started_at),
                duration_text(s.duration_ms),
                logs,
                _short_error(s.error_type, s.error_message),
            )
        out.print(table)
    if events:
        out.print(Text("events", style="bold"))
        for e in events:
            out.print(f"  {_fmt_time(e.ts)}  {visible(e.kind):<14} {visible(e.step_id or ''):<16} {visible(e.summary)}")
    return 0


def _dossier(reader: Reader, run: Run) -> Dossier | None:
    try:
        return reader.run_dossier(run)
    except Exception as exc:  # noqa: BLE001 - the run must show even if its dossier cannot be built
        err(f"could not build the dossier: {type(exc).__name__}: {exc}")
        return None


def trace(args: argparse.Namespace) -> int:
    reader = _reader(_settings())
    try:
        if args.step:
            doc = reader.step_trace(args.run_id, args.step, args.try_number)
        else:
            doc = reader.run_trace(args.run_id)
    except RunNotFound as exc:
        raise _not_found(reader, exc) from None
    except TraceUnavailable as exc:
        raise NotFound(f"{args.run_id}: {exc}") from None
    if args.output:  # the file gets the trace exactly as stored
        Path(args.output).write_text(doc.text, encoding="utf-8")
        _err.print(f"wrote {len(doc.text.encode('utf-8'))} bytes to {visible(args.output)}")
    else:  # a terminal shows control characters instead of obeying them
        sys.stdout.write(visible(doc.text, lines=True))
    return 0


def flush(args: argparse.Namespace) -> int:
    from rundossier.record.recorder import Recorder

    rec = Recorder(_settings())
    pending = len(rec.spool.pending())
    if pending == 0:
        if args.json:
            _print_json({"delivered": 0, "failed": 0, "remaining": 0, "errors": []})
        else:
            out.print(f"nothing to flush in {rec.spool.directory}")
        return 0
    with Progress(console=_err, transient=True, disable=args.json) as progress:
        task = progress.add_task("delivering spooled items", total=pending)
        report = rec.flush(progress=lambda done, total: progress.update(task, completed=done, total=total))
    if args.json:
        _print_json(
            {
                "delivered": report.delivered,
                "failed": report.failed,
                "remaining": report.remaining,
                "errors": report.errors,
            }
        )
    else:
        out.print(f"delivered {report.delivered}, failed {report.failed}, remaining {report.remaining}")
        for e in report.errors[:20]:
            out.print(f"  {visible(e, lines=True)}")
    return 1 if report.failed else 0


def db_upgrade(args: argparse.Namespace) -> int:
    from rundossier.storage.db.schema import head_revision

    settings = _settings()
    store = RunStore(settings.db_url, timeout=settings.db_timeout, migrate=False)
    rev = store.upgrade()
    out.print(f"database {store.describe()} is at revision {rev} (head {head_revision()})")
    return 0


LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: addresses that bind every interface: not a name a browser sends in Host
WILDCARDS = ("0.0.0.0", "::", "")


def allowed_hosts(args: argparse.Namespace, token: str | None, settings: Settings) -> list[str] | None:
    """The Host names `serve` answers to besides the loopback ones, or None for any Host.

    Without a token the check is on (a page on another site could reach an unguarded server
    through DNS rebinding); with one it is on only when names were given."""
    given = list(args.allowed_host or [])
    given += settings.allowed_hosts  # RUNDOSSIER_ALLOWED_HOSTS
    if token is not None and not given:
        return None
    if args.host not in WILDCARDS and args.host not in LOOPBACK:
        given.append(args.host)
    from rundossier.server.guard import allowed_host_names

    try:
        allowed_host_names(given)
    except ValueError as exc:
        raise InvalidInput(f"--allowed-host / RUNDOSSIER_ALLOWED_HOSTS: {exc}") from None
    return given


def serve(args: argparse.Namespace) -> int:
    try:
        from rundossier.server import create_app
        from rundossier.server.serve import serve as serve_app
    except ImportError as exc:
        raise ConfigError(f"serving needs the server extra: pip install 'rundossier[server]' ({exc})") from None
    settings = _settings()
    token = settings.api_token
    if args.host not in LOOPBACK and token is None and not args.no_auth:
        raise InvalidInput(
            f"--host {args.host} is reachable from other machines: set RUNDOSSIER_API_TOKEN "
            "(clients send it as a bearer token or enter it in the page), or pass --no-auth"
        )
    token = None if args.no_auth else token
    check_backends(settings)
    app = create_app(settings, api_token=token, allowed_hosts=allowed_hosts(args, token, settings))
    shown = f"[{args.host}]" if ":" in args.host else args.host
    _err.print(
        f"rundossier UI on http://{shown}:{args.port}/  (database {settings.db_url}, storage {settings.storage_url})",
        soft_wrap=True,
    )
    serve_app(app, host=args.host, port=args.port)
    return 0


def check_backends(settings: Settings) -> None:
    """ConfigError now, before serving or recording, for a database or storage URL that cannot
    work (an unknown scheme, a missing driver), instead of an error on every later request."""
    from rundossier.storage.db.engine import make_engine

    _blobs(settings)
    make_engine(settings.db_url, timeout=settings.db_timeout).dispose()  # builds no connection


def demo(args: argparse.Namespace) -> int:
    from rundossier.demo import run_demo

    if not args.no_serve and args.host not in LOOPBACK:
        raise InvalidInput(f"the demo serves without a token: use a loopback --host, not {args.host}")
    if args.home:
        os.environ["RUNDOSSIER_HOME"] = str(Path(args.home).expanduser().resolve())
    check_backends(_settings())
    return run_demo(home=args.home, console=out, serve=not args.no_serve, host=args.host, port=args.port)
