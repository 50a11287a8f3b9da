"""Every benchmark script takes --json and --quick, run_all.py knows every one, and each runs with
--quick and prints the shared JSON shape (benchmarks/benchtable.py).

The Airflow, Prefect and browser benchmarks run only where their environment is (.venv-airflow,
.venv-prefect, Playwright and /usr/bin/chromium); elsewhere they are skipped, saying which is missing.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
HELPERS = {"benchtable", "run_all"}
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py") if p.stem not in HELPERS)
NEEDS_PG = {"writers", "readers"}
ROW_KEYS = {"figure", "value", "unit", "floor", "ratio", "target", "met", "note"}


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    sys.path.insert(0, str(BENCH))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


benchtable = _load("benchtable")
run_all = _load("run_all")


def test_run_all_lists_every_script() -> None:
    assert sorted(run_all.SCRIPTS) == SCRIPTS


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_takes_json_and_quick(name: str) -> None:
    source = (BENCH / f"{name}.py").read_text()
    assert "add_flags(" in source, f"{name}.py does not add --json/--quick (benchtable.add_flags)"
    assert "emit(" in source, f"{name}.py never prints its JSON line (benchtable.emit)"
    assert "--json" in source.split('"""')[1], f"{name}.py's docstring does not show --json"


def test_target_on_ratio_and_on_value() -> None:
    faster = benchtable.row("x", 80.0, "runs/s", floor=100.0, target=benchtable.Target(">=", 0.7))
    assert faster.ratio == pytest.approx(0.8) and faster.met is True and faster.target == "ratio >= 0.7"
    slow = benchtable.row("x", 4000.0, "runs/s", floor=100.0, target=benchtable.Target(">=", 5000, "value"))
    assert slow.met is False and slow.target == ">= 5000 runs/s"
    untargeted = benchtable.row("x", 1.0, "ms")
    assert untargeted.met is None and untargeted.ratio is None


def test_table_shows_every_row_and_skips() -> None:
    docs = [
        benchtable.Result(
            "writers", [benchtable.row("w", 2.0, "x", floor=1.0, target=benchtable.Target(">=", 3.0))]
        ).document(),
        benchtable.Result("airflow_overhead", [], ".venv-airflow is missing").document(),
    ]
    text = benchtable.table(docs)
    assert "| writers | w | 2.00 x | 1.00 x | 2.00x | ratio >= 3 | NOT met |" in text
    assert "| airflow_overhead | skipped: .venv-airflow is missing |" in text


def test_parse_takes_the_last_json_line() -> None:
    out = 'some figures\n{"benchmark": "a", "rows": []}\n'
    assert benchtable.parse(out)["benchmark"] == "a"
    with pytest.raises(ValueError):
        benchtable.parse("no json here\n")


def _skip_reason(name: str) -> str | None:
    venv, _ = run_all.SCRIPTS[name]
    _, missing = run_all.interpreter(venv)
    if missing:
        return missing
    if name == "ui_render":
        if not Path("/usr/bin/chromium").exists():
            return "/usr/bin/chromium is missing"
        if importlib.util.find_spec("playwright") is None:
            return "Playwright is not installed (bash scripts/test-browser.sh installs it)"
    return None


def _check_shape(doc: dict[str, Any], name: str) -> None:
    assert doc["benchmark"] == name
    assert {"nproc", "load", "cpu", "python", "utc"} <= set(doc["machine"])
    assert isinstance(doc["rows"], list)
    if doc.get("skipped"):
        assert isinstance(doc["skipped"], str) and not doc["rows"]
        return
    assert doc["rows"], f"{name} printed no figures"
    for r in doc["rows"]:
        assert set(r) == ROW_KEYS
        assert isinstance(r["figure"], str) and r["figure"]
        assert isinstance(r["value"], int | float)
        assert r["met"] in (True, False, None)
        assert (r["target"] is None) == (r["met"] is None), r
        if r["floor"] is not None and r["floor"] != 0:
            assert r["ratio"] is not None


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", SCRIPTS)
def test_quick_run_prints_the_json_shape(name: str) -> None:
    why = _skip_reason(name)
    if why:
        pytest.skip(f"{name}: {why}")
    cmd, missing = run_all.command(name, "quick")
    assert cmd is not None, missing
    proc = subprocess.run(
        cmd, cwd=ROOT, env=run_all.env_for(name), capture_output=True, text=True, timeout=540, stdin=subprocess.DEVNULL
    )
    assert proc.returncode in (0, 1), f"{name} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    doc = benchtable.parse(proc.stdout)
    json.dumps(doc)
    _check_shape(doc, name)
    if name in NEEDS_PG:
        from tests.pgdb import pg_unavailable_reason

        if pg_unavailable_reason() is None:
            assert not doc.get("skipped"), doc["skipped"]
    if name == "writers" and not doc.get("skipped"):
        lost = [r for r in doc["rows"] if "lost + duplicated" in r["figure"]]
        assert lost and all(r["value"] == 0 for r in lost), lost
