"""The demo: record example runs (history, failures, retries, a crash, a big log), then serve the UI.

    rundossier demo                 # seed, then serve http://127.0.0.1:8765/ until Ctrl-C
    rundossier demo --no-serve      # seed and print where to look (tests, scripts)

While it serves, a `streaming_ingest` run starts every minute and writes a line every half
second for 20 seconds: the runs table updates live and its log can be followed.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from rich.console import Console

from rundossier.demo.seed import Seeded, seed_history, seed_recorded
from rundossier.record.recorder import Recorder
from rundossier.settings import Settings

LIVE_JOB_EVERY_S = 60.0


def run_demo(
    home: str | None = None,
    console: Console | None = None,
    *,
    serve: bool = False,
    host: str = "127.0.0.1",
    port: int = 8765,
) -> int:
    """Record example runs, then serve the UI (`serve`) or print the commands that show them."""
    console = console or Console()
    if home:
        os.environ["RUNDOSSIER_HOME"] = str(Path(home).expanduser().resolve())
    # INFO records reach the steps' logs; the terminal shows warnings only
    shown = logging.StreamHandler()
    shown.setLevel(logging.WARNING)
    shown.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[shown])
    settings = Settings.resolve()
    rec = Recorder(settings)
    fresh = rec.store.count_runs() == 0
    history = seed_history(rec.store) if fresh else 0
    seeded = seed_recorded(rec, settings.home)
    seeded.history = history
    report = rec.flush()
    _summary(console, rec, settings, seeded, delivered=report.delivered)
    if not serve:
        _commands(console, seeded)
        return 0
    return _serve(console, rec, settings, host, port)


def _summary(console: Console, rec: Recorder, settings: Settings, seeded: Seeded, delivered: int) -> None:
    console.print()
    console.print(
        f"[bold]rundossier demo[/bold]: recorded {len(seeded.recorded)} example runs "
        f"({len(seeded.failed)} failed)" + (f" and {seeded.history} runs of history" if seeded.history else ""),
        markup=True,
    )
    console.print(f"  home:      {settings.home}  (every rundossier command reads it; RUNDOSSIER_HOME picks another)")
    console.print(f"  database:  {rec.store.describe()}")
    console.print(f"  storage:   {settings.storage_url}")
    if delivered:
        console.print(f"  delivered {delivered} spooled item(s)")


def _commands(console: Console, seeded: Seeded) -> None:
    if not seeded.failed:
        return
    rid = seeded.failed[-1]
    console.print("\nlook at them with:")
    console.print("  rundossier serve            # the web UI")
    console.print("  rundossier runs")
    console.print(f"  rundossier show {rid}")
    console.print(f"  rundossier trace {rid} -o {rid}_trace.txt")


def _serve(console: Console, rec: Recorder, settings: Settings, host: str, port: int) -> int:
    try:
        from rundossier.server import create_app
        from rundossier.server.serve import serve as serve_app
    except ImportError as exc:
        console.print(f"cannot serve the UI: install rundossier[server] ({exc}); the runs are recorded", style="red")
        return 1
    from rundossier.demo.seed import load_pipelines

    pipelines = load_pipelines(settings.home)
    stop = threading.Event()
    live_rec = Recorder(settings, store=rec.store, blobs=rec.blobs, live_log_interval=1.0)

    def live_job() -> None:
        while not stop.is_set():
            try:
                pipelines.streaming_ingest(live_rec, stop=stop)
            except Exception as exc:  # noqa: BLE001 - the demo's background job must not kill the server
                logging.getLogger("rundossier.demo").warning("the live example run failed: %s", exc)
            stop.wait(LIVE_JOB_EVERY_S)

    thread = threading.Thread(target=live_job, name="rundossier-demo-live", daemon=True)
    thread.start()
    shown = f"[{host}]" if ":" in host else host
    console.print(
        f"\n[bold]open http://{shown}:{port}/[/bold]  (a live example run starts every minute; Ctrl-C stops)",
        markup=True,
    )
    try:
        # no token: answer only to the loopback names (a foreign Host is a DNS rebinding attempt)
        app = create_app(settings, store=rec.store, blobs=rec.blobs, allowed_hosts=())
        serve_app(app, host=host, port=port)
    finally:
        stop.set()
        thread.join(timeout=5)
    return 0


__all__ = ["run_demo"]
