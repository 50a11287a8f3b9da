"""Benchmark: time to first render in chromium of a run with 1,000 steps and of a 1M-line log page.

    PYTHONPATH=$PWD/src .venv/bin/python benchmarks/ui_render.py [--steps 1000] [--lines 1000000] [--repeat 5]
        [--json] [--quick]

Seeds a throwaway SQLite store with the recorder (a run of `--steps` steps, the last one failed;
a step that wrote `--lines` log lines, every 100th a WARNING on stderr), serves the real app on
loopback and opens each page in Debian's chromium (Playwright, headless, 1280x800), timing from
the navigation's start (`performance.now()` in the page) to:
  run page     the failure head drawn (the first screen)              target (issue #18): < 1 s
  log page     the first 500 lines of the log drawn                 target (issue #18): < 300 ms
  log level    the log page with level=warning (server-filtered)    reported, no target
Also printed: the size of GET /api/runs/{id} and its server time, and of the log page's API call
(the parts of the render the server owns), and the floor: the empty runs list page's render.
Medians of `--repeat` fresh page loads each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.liveserver, tests.seeding
sys.path.insert(0, str(ROOT / "benchmarks"))  # benchtable

from benchtable import Target, add_flags, emit, row  # noqa: E402
from tests.liveserver import LiveServer  # noqa: E402
from tests.seeding import log_run  # noqa: E402

from rundossier import Recorder  # noqa: E402
from rundossier.server import create_app  # noqa: E402
from rundossier.settings import Settings  # noqa: E402
from rundossier.storage.db import RunStore  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
RUN_TARGET_MS = 1000.0
LOG_TARGET_MS = 300.0


def many_steps(rec: Recorder, steps: int) -> str:
    """A run of `steps` steps in a chain, each with a line of log; the last one fails the run."""
    try:
        with rec.run("wide_flow") as run:
            for i in range(steps - 1):
                h = run.start_step(f"task_{i:04d}", upstream=[f"task_{i - 1:04d}"] if i else None)
                h.log.write("stdout", f"step {i} done")
                h.finish("success")
            with run.step(f"task_{steps - 1:04d}", upstream=[f"task_{steps - 2:04d}"]) as h:
                h.log.write("stderr", "about to fail", "ERROR")
                raise RuntimeError(f"step {steps - 1} failed")
    except RuntimeError:
        pass
    return run.run_id


def render_ms(page: Any, url: str, ready: str) -> float:
    """Milliseconds from the navigation's start until `ready` (a selector) is visible."""
    page.goto("about:blank")
    page.goto(url, wait_until="commit")
    page.wait_for_selector(ready, state="visible", timeout=60_000)
    return float(page.evaluate("() => performance.now()"))


def api_ms(client: httpx.Client, path: str, repeat: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = client.get(path)
        r.raise_for_status()
        times.append((time.perf_counter() - t0) * 1000)
        size = len(r.content)
    return statistics.median(times), size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    add_flags(ap)
    args = ap.parse_args()
    if args.quick:
        args.steps, args.lines, args.repeat = 50, 5000, 1
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        why = "Playwright is not installed (bash scripts/test-browser.sh installs the browser group)"
        print(f"skipped: {why}")
        emit(args, "ui_render", [], why)
        return 0
    if not Path(CHROMIUM).exists():
        print(f"skipped: {CHROMIUM} is missing")
        emit(args, "ui_render", [], f"{CHROMIUM} is missing")
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.resolve(
            explicit={"home": f"{tmp}/home", "db_url": f"sqlite:///{tmp}/runs.db", "storage_url": f"file://{tmp}/blobs"}
        )
        store = RunStore(settings.db_url)
        rec = Recorder(settings, store=store, live_log_interval=None)
        t0 = time.perf_counter()
        wide = many_steps(rec, args.steps)
        big = log_run(rec, args.lines)
        print(f"seeded a {args.steps}-step run and a {args.lines:,}-line log in {time.perf_counter() - t0:.1f}s")
        pages = {
            "runs list (floor)": ("/#/runs", "table.runs tbody tr[data-run-id]"),
            f"run page ({args.steps} steps)": (f"/#/run/{wide}", "[data-testid=failure-head] >> nth=0"),
            f"log page ({args.lines:,} lines)": (f"/#/run/{big}/step/render", "table.log tbody tr.ln"),
        }
        results: dict[str, float] = {}
        with LiveServer(create_app(settings, store=store, blobs=rec.blobs)) as server, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            for name, (path, ready) in pages.items():
                render_ms(page, server.url + path, ready)  # warm up (module cache)
                results[name] = statistics.median(render_ms(page, server.url + path, ready) for _ in range(args.repeat))
            browser.close()
            with httpx.Client(base_url=server.url, timeout=120) as client:
                run_api = api_ms(client, f"/api/runs/{wide}", args.repeat)
                log_api = api_ms(client, f"/api/runs/{big}/steps/render/logs?page=1&page_size=500", args.repeat)
                level_api = api_ms(
                    client, f"/api/runs/{big}/steps/render/logs?page=1&page_size=500&level=warning", args.repeat
                )
        store.close()
    ok = True
    for name, ms in results.items():
        target = (
            RUN_TARGET_MS if name.startswith("run page") else LOG_TARGET_MS if name.startswith("log page") else None
        )
        good = target is None or ms < target
        ok = ok and good
        note = f"target < {target:.0f} ms {'ok' if good else 'MISSED'}" if target else ""
        print(f"{name:<28}{ms:>9.0f} ms   {note}")
    print(f"GET /api/runs/{{id}}          {run_api[0]:>9.0f} ms   {run_api[1] / 1e6:.2f} MB")
    print(f"GET .../logs page 1          {log_api[0]:>9.0f} ms   {log_api[1] / 1e3:.0f} kB")
    print(f"GET .../logs level=warning   {level_api[0]:>9.0f} ms   {level_api[1] / 1e3:.0f} kB")
    print("all targets met" if ok else "some targets MISSED")
    floor = next(ms for name, ms in results.items() if name.endswith("(floor)"))
    rows = []
    for name, ms in results.items():
        if name.endswith("(floor)"):
            continue
        target = RUN_TARGET_MS if name.startswith("run page") else LOG_TARGET_MS
        rows.append(
            row(f"render {name}", ms, "ms", floor=floor, target=Target("<", target, "value"), note="floor: runs list")
        )
    rows.append(row("GET /api/runs/{id}", run_api[0], "ms", note=f"{run_api[1] / 1e6:.2f} MB"))
    rows.append(row("GET .../logs page 1", log_api[0], "ms", note=f"{log_api[1] / 1e3:.0f} kB"))
    emit(args, "ui_render", rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
