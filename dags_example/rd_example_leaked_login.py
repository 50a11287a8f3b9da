"""A task whose failure message contains a connection's password: it comes out masked (`***`).

Needs the connection `rd_example_db`, e.g.
`export AIRFLOW_CONN_RD_EXAMPLE_DB='postgresql://etl_user:Sup3rSecretPw@db.example.internal:5432/warehouse'`.
Airflow's secrets masker learns the password when the task reads the connection; rundossier
runs every trace and log line through that masker, then through its own patterns.
"""

from __future__ import annotations

import logging
from datetime import datetime

from airflow.sdk import BaseHook, dag, task

log = logging.getLogger(__name__)


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["rundossier-example"])
def rd_example_leaked_login():
    @task
    def connect() -> None:
        conn = BaseHook.get_connection("rd_example_db")
        log.info("connecting to %s as %s using %s", conn.host, conn.login, conn.password)
        raise PermissionError(f"login {conn.login!r} rejected by {conn.host}; tried {conn.password}")

    connect()


rd_example_leaked_login()
