"""`rundossier doctor`: is this installation ready to record and show runs? Each check says what it
found and, for a problem, how to fix it; exit 1 on any problem.

    settings   the effective settings (secrets masked) and where each came from
    database   reachable, schema at this version's revision (else `rundossier db upgrade`)
    storage    a probe object written, read back and deleted through the BlobStore
    spool      items waiting for delivery (`rundossier flush`), the oldest's age
    airflow    when installed: Airflow's plugins manager loads the rundossier plugin
    prefect    when installed: the RunDossier Block imports and, with a Prefect API, is registered

The checks are in `checks` (this machine's rundossier) and `probes` (the orchestrators, each in
a subprocess with a time limit).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from pydantic import BaseModel
from rich.table import Table
from rich.text import Text

from rundossier import __version__
from rundossier.cli.checks import (
    Check,
    check_database,
    check_settings,
    check_spool,
    check_storage,
    shown_settings,
    skipped,
)
from rundossier.cli.probes import check_airflow, check_prefect
from rundossier.cli.text import visible


class Report(BaseModel):
    """`rundossier doctor --json`."""

    ok: bool
    version: str
    settings: dict[str, dict[str, Any]]
    checks: list[Check]


def diagnose() -> Report:
    settings, first = check_settings()
    checks = [first]
    if settings is None:
        checks += [skipped(n, "needs valid settings") for n in ("database", "storage", "spool")]
    else:
        checks += [check_database(settings), check_storage(settings), check_spool(settings)]
    checks += [check_airflow(), check_prefect()]
    return Report(
        ok=all(c.status != "problem" for c in checks),
        version=__version__,
        settings=shown_settings(settings) if settings is not None else {},
        checks=checks,
    )


def doctor(args: argparse.Namespace) -> int:
    from rundossier.cli.commands import _print_json, out

    report = diagnose()
    if args.json:
        _print_json(report)
        return 0 if report.ok else 1
    if report.settings:
        table = Table(title=f"rundossier {report.version}: settings", title_justify="left", box=None, pad_edge=False)
        for col in ("setting", "value", "from"):
            table.add_column(col, overflow="fold")
        for name, s in report.settings.items():
            value = s["value"]
            text = json.dumps(value) if isinstance(value, dict | list) else "-" if value is None else str(value)
            table.add_row(name, visible(text), s["source"])
        out.print(table)
        out.print()
    table = Table(title="checks", title_justify="left", box=None, pad_edge=False)
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("found", overflow="fold", ratio=3)
    table.add_column("fix", overflow="fold", ratio=2)
    style = {"ok": "green", "problem": "red", "skipped": "grey50"}
    for c in report.checks:
        table.add_row(c.name, Text(c.status, style=style[c.status]), visible(c.detail), visible(c.fix))
    out.print(table)
    problems = sum(c.status == "problem" for c in report.checks)
    out.print("no problems found" if report.ok else f"{problems} problem(s): see the fix column")
    return 0 if report.ok else 1


def register(sub: Any) -> None:
    p = sub.add_parser(
        "doctor",
        help="check settings, database, storage, spool and the Airflow/Prefect integrations",
        description="Check this installation; a fix for each problem; exit code 1 on any problem.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=doctor)


__all__ = ["doctor", "register", "diagnose", "Report"]
