"""Assets as artifacts: `extract` writes an outlet Asset, `convert` reads it and a second inlet
that nobody wrote, and fails. rundossier records both tries' Assets without a line of user code
(plus one artifact recorded by hand with `rundossier.artifact`), links `convert`'s input to the
step that wrote it, and its dossier says which input was missing."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path

from airflow.sdk import Asset, dag, task

DATA = Path(os.environ.get("AIRFLOW_HOME") or tempfile.gettempdir()) / "rd-example-data"
ORDERS = Asset(name="orders", uri=f"file://{DATA}/orders.csv")
FX_RATES = Asset(name="fx_rates", uri=f"file://{DATA}/fx_rates.csv")


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["rundossier-example"])
def rd_example_assets():
    @task(outlets=[ORDERS])
    def extract() -> None:
        DATA.mkdir(parents=True, exist_ok=True)
        (DATA / "orders.csv").write_text("order_id,amount,currency\n1,12.50,EUR\n2,7.00,USD\n")
        try:  # optional: recorded by hand where the task knows more than its outlets say
            import rundossier

            rundossier.artifact(f"file://{DATA}", role="output", kind="folder")
        except ImportError:
            pass

    @task(inlets=[ORDERS, FX_RATES])
    def convert() -> None:
        orders = (DATA / "orders.csv").read_text().splitlines()[1:]
        rates = (DATA / "fx_rates.csv").read_text()  # never written: FileNotFoundError
        print(len(orders), len(rates))

    extract() >> convert()


rd_example_assets()
