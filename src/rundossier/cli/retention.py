"""`rundossier retention set|unset|show|sweep`: per-flow retention policies and the sweep."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rundossier.cli.commands import NotFound, _blobs, _err, _print_json, _settings, _store, err, out
from rundossier.cli.text import visible
from rundossier.core.retention.policy import FIELDS, Rule, check_pattern, parse_limit
from rundossier.core.timeparse import parse_span as core_parse_span
from rundossier.errors import InvalidInput
from rundossier.retention import sweep as run_sweep
from rundossier.retention import sweep_orphans
from rundossier.retention.overview import overview
from rundossier.retention.sweep import DEFAULT_BATCH, MAX_BATCH
from rundossier.storage.spool import Spool

#: what `--keep-days inherit` stores: nothing, so the default rule (or the built-in) decides
INHERIT = "inherit"


def register(sub: Any) -> None:
    """Add `retention` and its subcommands to the top-level parser."""
    p = sub.add_parser("retention", help="per-flow retention policies and the sweep")
    rsub = p.add_subparsers(dest="retention_command", required=True, metavar="RETENTION_COMMAND")

    s = rsub.add_parser(
        "set",
        help="set a flow's policy (an exact flow id, a glob such as 'finance_*', or '*' for the default)",
        description="Keep a flow's runs N days or its last K runs, whichever limit is reached first; "
        "traces and logs may expire sooner (--blob-days). Options not given keep their current value; "
        "'off' means no limit, 'inherit' takes the value from the default rule '*' (or the built-in).",
    )
    s.add_argument("pattern", help="flow id, glob, or '*'")
    s.add_argument("--keep-days", metavar="N|off|inherit", help="delete finished runs older than N days")
    s.add_argument("--keep-last", metavar="K|off|inherit", help="keep only the newest K finished runs")
    s.add_argument("--blob-days", metavar="D|off|inherit", help="expire traces and logs after D days")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=set_policy)

    u = rsub.add_parser("unset", help="remove a policy rule (its flows fall back to the next rule)")
    u.add_argument("pattern")
    u.set_defaults(func=unset_policy)

    sh = rsub.add_parser("show", help="rules, each flow's effective policy and why, what a sweep would remove")
    sh.add_argument("--flow", action="append", help="only this flow (repeatable)")
    sh.add_argument("--no-preview", action="store_true", help="skip counting what a sweep would remove")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=show)

    sw = rsub.add_parser("sweep", help="apply the policies: delete expired runs, their traces and logs")
    sw.add_argument("--dry-run", action="store_true", help="report what would be removed; remove nothing")
    sw.add_argument("--flow", action="append", help="only this flow (repeatable)")
    sw.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help=f"runs per batch (1..{MAX_BATCH})")
    sw.add_argument("--orphans", action="store_true", help="then remove blobs no row points at")
    sw.add_argument("--orphan-grace", default="24h", help="leave blobs younger than this alone (default 24h)")
    sw.add_argument("--json", action="store_true")
    sw.set_defaults(func=sweep)


def parse_span(text: str, option: str = "--orphan-grace") -> timedelta:
    """`90s`, `30m`, `24h`, `7d`, `2w` (the one parser of times: core.timeparse)."""
    return core_parse_span(text, name=option)


def _limit(name: str, raw: str | None, current: int | None) -> int | None:
    if raw is None:
        return current
    if raw.strip().lower() == INHERIT:
        return None
    return parse_limit(name, raw)


def set_policy(args: argparse.Namespace) -> int:
    pattern = check_pattern(args.pattern)
    given = {name: getattr(args, name) for name in FIELDS}
    if all(v is None for v in given.values()):
        raise InvalidInput("nothing to set: give --keep-days, --keep-last and/or --blob-days")
    store = _store(_settings())
    current = next((Rule.from_row(r) for r in store.list_policies() if r.flow_pattern == pattern), None)
    limits = {name: _limit(name, raw, getattr(current, name, None)) for name, raw in given.items()}
    rule = Rule(
        pattern,
        keep_days=limits["keep_days"],
        keep_last=limits["keep_last"],
        blob_days=limits["blob_days"],
        source="cli",
    )
    store.set_policy(pattern, **rule.limits(), source="cli")
    if args.json:
        _print_json(rule.to_json())
        return 0
    shown = ", ".join(f"{k}={'inherit' if v is None else ('off' if v == 0 else v)}" for k, v in rule.limits().items())
    out.print(f"{rule.kind} rule {pattern!r}: {shown}", markup=False)
    return 0


def unset_policy(args: argparse.Namespace) -> int:
    store = _store(_settings())
    if not store.delete_policy(args.pattern):
        raise NotFound(f"no retention rule {args.pattern!r}; `rundossier retention show` lists them")
    out.print(f"removed rule {args.pattern!r}", markup=False)
    return 0


def _off(v: int | None) -> str:
    return "-" if v is None else ("off" if v == 0 else str(v))


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def show(args: argparse.Namespace) -> int:
    settings = _settings()
    data = overview(
        _store(settings),
        _blobs(settings),
        with_preview=not args.no_preview,
        cap_enabled=settings.retention_cap,
        flows=set(args.flow) if args.flow else None,
    )
    if args.json:
        _print_json(data)
        return 0
    out.print(
        f"built-in default: {data['builtin']['describe']}; write-time cap {'on' if data['cap']['enabled'] else 'off'}"
    )
    if data["rules"]:
        t = Table(title="rules", title_justify="left", box=None, pad_edge=False)
        for col in ("pattern", "kind", "keep_days", "keep_last", "blob_days", "source", "flows"):
            t.add_column(col, no_wrap=col != "pattern")
        for r in data["rules"]:
            t.add_row(
                visible(r["flow_pattern"]),
                r["kind"],
                _off(r["keep_days"]),
                _off(r["keep_last"]),
                _off(r["blob_days"]),
                r["source"] or "-",
                str(len(r["flows"])),
            )
        out.print(t)
    else:
        out.print("no rules set: every flow uses the built-in default")
    if not data["flows"]:
        out.print("no runs recorded yet")
        return 0
    t = Table(title="flows", title_justify="left", box=None, pad_edge=False)
    for col in ("flow", "runs", "policy", "from", "would remove", "expire", "bytes"):
        t.add_column(col, overflow="fold" if col in ("flow", "from") else "ellipsis")
    for f in data["flows"]:
        w = f["would_remove"]
        t.add_row(
            visible(f["flow_id"]),
            str(f["runs"]),
            f["describe"],
            visible(f["reason"]),
            "-" if w is None else str(w["runs"]),
            "-" if w is None else str(w["runs_expired"]),
            "-" if w is None else human_bytes(w["bytes"]),
        )
    out.print(t)
    return 0


def sweep(args: argparse.Namespace) -> int:
    settings = _settings()
    store, blobs = _store(settings), _blobs(settings)
    grace = parse_span(args.orphan_grace)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=_err, transient=True, disable=args.json) as progress:
        task = progress.add_task("dry run" if args.dry_run else "sweeping", total=None)
        report = run_sweep(
            store,
            blobs,
            dry_run=args.dry_run,
            batch_size=args.batch_size,
            flows=args.flow,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
        if args.orphans and report.complete:
            progress.update(task, description="orphan blobs", completed=0, total=None)
            report.orphans = sweep_orphans(
                store,
                blobs,
                dry_run=args.dry_run,
                grace=grace,
                progress=lambda n: progress.update(task, completed=n),
                spool=Spool(settings.spool_dir),
            )
    if args.json:
        _print_json(report.to_json())
    else:
        _print_report(report)
    ok = report.complete and (report.orphans is None or report.orphans.complete)
    return 0 if ok else 1


def _print_report(report: Any) -> None:
    verb = "would remove" if report.dry_run else "removed"
    acted = [f for f in report.flows if f.runs_removed or f.runs_expired or f.foreign_blobs]
    if acted:
        t = Table(
            title=f"{'dry run: ' if report.dry_run else ''}{verb}", title_justify="left", box=None, pad_edge=False
        )
        for col in ("flow", "runs", "blobs expired", "steps", "events", "blobs", "bytes", "by rule"):
            t.add_column(col, overflow="fold" if col == "flow" else "ellipsis")
        for f in acted:
            t.add_row(
                visible(f.flow_id),
                str(f.runs_removed),
                str(f.runs_expired),
                str(f.steps_removed),
                str(f.events_removed),
                str(f.blobs_removed),
                human_bytes(f.bytes_removed),
                ", ".join(f"{k} {v}" for k, v in sorted(f.by_rule.items())),
            )
        out.print(t)
    tot = report.totals()
    out.print(
        f"{verb} {tot['runs_removed']} runs and the traces and logs of {tot['runs_expired']} more "
        f"({tot['blobs_removed']} blobs, {human_bytes(tot['bytes_removed'])}) "
        f"in {tot['flows']} flow{'s' if tot['flows'] != 1 else ''}; "
        f"{tot['runs_scanned']} runs scanned, {tot['active_runs']} active left alone",
        markup=False,
    )
    if tot["foreign_blobs"]:
        out.print(
            f"{tot['foreign_blobs']} blobs are outside the configured storage (was RUNDOSSIER_STORAGE_URL "
            "changed?) and were left alone",
            markup=False,
        )
    o = report.orphans
    if o is not None:
        out.print(
            f"orphans: {verb} {o.blobs_removed} blobs ({human_bytes(o.bytes_removed)}) in {o.run_folders_scanned} "
            f"run folders: {o.runs_without_row} without a row, {o.expired_runs_cleaned} expired, "
            f"{o.unreferenced_blobs} unreferenced; {o.skipped_recent} too recent, {o.unknown} unknown entries",
            markup=False,
        )
        if o.error:
            err(f"orphan sweep stopped: {o.error}")
    if report.error:
        err(
            f"the sweep stopped: {report.error}. What it did is counted above; "
            "run it again to finish (nothing is left half-done)."
        )


__all__ = ["register", "parse_span", "human_bytes"]
