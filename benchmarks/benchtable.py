"""The benchmarks' shared result shape (`--json`), their `--quick` flag, and the table `run_all.py` prints.

Every script in benchmarks/ takes `--json` and `--quick`:
  --quick   a small n that runs in seconds (tests/test_benchmarks.py runs every script with it)
  --json    after its own human-readable output, the script prints one more line on stdout: a JSON
            document `{"benchmark", "machine", "rows": [row...]}`, where a row is
            `{"figure", "value", "unit", "floor", "ratio", "target", "met", "note"}`:
              value    what was measured (a rate, a time, a ratio of two rundossier figures)
              floor    the baseline measured in the same run (null when there is none)
              ratio    value / floor (null without a floor)
              target   what the issue asks, as text (`ratio >= 0.7`, `value <= 50 ms`; null: no target)
              met      true / false, or null when there is no target
A run that cannot happen here (no Airflow venv, no chromium, no PostgreSQL) prints a document whose
`skipped` says why, and no rows.
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


@dataclass(frozen=True)
class Target:
    """A target on a row's ratio (`of="ratio"`) or on its value (`of="value"`)."""

    op: str
    bound: float
    of: str = "ratio"

    def met(self, value: float | None, ratio: float | None) -> bool | None:
        x = ratio if self.of == "ratio" else value
        return None if x is None else _OPS[self.op](x, self.bound)

    def text(self, unit: str) -> str:
        bound = f"{self.bound:g}"
        return f"ratio {self.op} {bound}" if self.of == "ratio" else f"{self.op} {bound} {unit}".rstrip()


@dataclass
class Row:
    figure: str
    value: float | None
    unit: str = ""
    floor: float | None = None
    ratio: float | None = None
    target: str | None = None
    met: bool | None = None
    note: str = ""


def row(
    figure: str,
    value: float | None,
    unit: str = "",
    *,
    floor: float | None = None,
    ratio: float | None = None,
    target: Target | None = None,
    note: str = "",
) -> Row:
    """A row; its ratio is value / floor unless given (e.g. when lower is better and the floor is a time)."""
    if ratio is None and floor and value is not None:
        ratio = value / floor
    return Row(
        figure=figure,
        value=value,
        unit=unit,
        floor=floor,
        ratio=ratio,
        target=target.text(unit) if target else None,
        met=target.met(value, ratio) if target else None,
        note=note,
    )


def machine() -> dict[str, Any]:
    """What the figures were measured on: cores, load, CPU, Python, time (UTC)."""
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "load": [round(x, 2) for x in os.getloadavg()],
        "cpu": model,
        "python": platform.python_version(),
        "utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="also print the result as one JSON line (last line)")
    parser.add_argument("--quick", action="store_true", help="a small n that runs in seconds (smoke run)")


@dataclass
class Result:
    benchmark: str
    rows: list[Row] = field(default_factory=list)
    skipped: str | None = None
    machine: dict[str, Any] = field(default_factory=machine)

    def document(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "machine": self.machine,
            "skipped": self.skipped,
            "rows": [asdict(r) for r in self.rows],
        }


def emit(args: argparse.Namespace, benchmark: str, rows: Sequence[Row], skipped: str | None = None) -> None:
    """Print the JSON line when `--json` was given (always the last line this script prints on stdout)."""
    if getattr(args, "json", False):
        doc = Result(benchmark, list(rows), skipped).document()
        sys.stdout.flush()
        print(json.dumps(doc), flush=True)


def parse(stdout: str) -> dict[str, Any]:
    """The JSON document a script printed with `--json` (its last line that is a JSON object)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)  # type: ignore[no-any-return]
    raise ValueError("no JSON line in the output")


def fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def table(docs: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of every row of every document: figure, value, floor, ratio, target, met, machine."""
    head = "| benchmark | figure | value | floor | ratio | target | met | machine |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for doc in docs:
        m = doc.get("machine") or {}
        where = f"{m.get('nproc', '?')} cpu, load {'/'.join(str(x) for x in m.get('load', []))}"
        if doc.get("skipped"):
            lines.append(f"| {doc['benchmark']} | skipped: {doc['skipped']} | | | | | | {where} |")
            continue
        for r in doc["rows"]:
            unit = f" {r['unit']}" if r.get("unit") else ""
            value = f"{fmt(r['value'])}{unit}"
            floor = f"{fmt(r['floor'])}{unit}" if r.get("floor") is not None else "-"
            ratio = f"{fmt(r['ratio'])}x" if r.get("ratio") is not None else "-"
            met = {True: "met", False: "NOT met", None: "-"}[r.get("met")]
            figure = r["figure"] + (f" ({r['note']})" if r.get("note") else "")
            cells = [doc["benchmark"], figure, value, floor, ratio, r.get("target") or "-", met, where]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


__all__ = ["Target", "Row", "row", "machine", "add_flags", "emit", "parse", "table", "Result"]
