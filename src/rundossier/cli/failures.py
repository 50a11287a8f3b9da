"""`rundossier failures`: failure groups by fingerprint, newest first (or by count)."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from rundossier.cli.commands import _fmt_time, _print_json, _reader, _settings, _short_error, out, parse_since
from rundossier.cli.options import group_limit
from rundossier.cli.text import visible
from rundossier.storage.db import GroupQuery


def add_parser(sub: Any) -> None:
    p = sub.add_parser("failures", help="failure groups: the same bug across runs and flows")
    p.add_argument("--flow", help="only this flow / DAG id")
    p.add_argument("--orchestrator", choices=["airflow", "prefect", "python"])
    p.add_argument("--since", help="ISO time or a span such as 24h, 7d (counted per UTC day)")
    p.add_argument("--sort", choices=["last_seen", "count"], default="last_seen")
    p.add_argument("--limit", type=group_limit, default=20, help="at most this many groups (1 to 500)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=failures)


def failures(args: argparse.Namespace) -> int:
    reader = _reader(_settings())
    query = GroupQuery(
        flow_id=args.flow,
        orchestrator=args.orchestrator,
        since=parse_since(args.since) if args.since else None,
        sort=args.sort,
        limit=args.limit,
    )
    page = reader.failure_groups(query)
    if args.json:
        _print_json(page)
        return 0
    groups = page.items
    if not groups:
        filtered = " for these filters" if args.flow or args.since or args.orchestrator else ""
        out.print(
            f"no failure groups{filtered} in {reader.store.describe()} ({reader.backends.settings.where()})",
            soft_wrap=True,
        )
        return 0
    counted_since = page.counted_since[:10] if page.counted_since else None
    title = "failure groups" + (f" (counted since {counted_since} UTC)" if counted_since else "")
    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    table.add_column("fingerprint", no_wrap=True, min_width=16)
    table.add_column("count", justify="right", no_wrap=True)
    table.add_column("class", no_wrap=True)
    table.add_column("first seen (UTC)", no_wrap=True, min_width=19)
    table.add_column("last seen (UTC)", no_wrap=True, min_width=19)
    table.add_column("flows", overflow="ellipsis", no_wrap=True, max_width=30)
    table.add_column("latest run", no_wrap=True, min_width=30)
    table.add_column("error", overflow="ellipsis", no_wrap=True, ratio=1, max_width=80)
    for g in groups:
        flows = ", ".join(g.flows[:3]) + (f" +{len(g.flows) - 3}" if len(g.flows) > 3 else "")
        table.add_row(
            visible(g.fingerprint),
            str(g.count),
            visible(g.failure_class or "-"),
            _fmt_time(g.first_seen),
            _fmt_time(g.last_seen),
            visible(flows),
            visible(g.latest.run_id),
            _short_error(g.latest.error.type, g.latest.error.message) if g.latest.error is not None else "",
        )
    out.print(table)
    out.print("runs of a group: rundossier runs --fingerprint FINGERPRINT", markup=False)
    return 0


__all__ = ["add_parser", "failures"]
