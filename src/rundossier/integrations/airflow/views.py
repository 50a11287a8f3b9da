"""The plugin's places in the Airflow UI: a Run History nav entry, a DAG tab and a task instance tab.

Each view renders the rundossier page (mounted at `/rundossier`) in an iframe. The hrefs are
relative (no leading slash): Airflow's UI page has `<base href>` set to its base URL, so they
work under any `[api] base_url`. Airflow fills `{DAG_ID}`, `{RUN_ID}`, `{TASK_ID}` (URL-encoded)
and `{MAP_INDEX}`; on an unmapped task `{MAP_INDEX}` stays literal, which the page's
`#/find` route reads as "unmapped" (see UI_CONTRACT: `-1`, empty or `{MAP_INDEX}`).
"""

from __future__ import annotations

from typing import Any

URL_PREFIX = "/rundossier"
#: the page, relative to Airflow's base URL
PAGE = URL_PREFIX.lstrip("/") + "/"
#: Airflow's UI root, relative to the page (for the page's links to task instances and DAG runs)
AIRFLOW_UI = "../"

RUN_HISTORY = {
    "name": "Run History",
    "href": PAGE + "#/runs?orchestrator=airflow",
    "url_route": "rundossier",
    "destination": "nav",
    "nav_top_level": True,  # its own entry in the navigation, not under "Plugins" (Airflow 3.2+)
}
DAG_RUN_HISTORY = {
    "name": "Run History",
    "href": PAGE + "#/runs?orchestrator=airflow&flow_id={DAG_ID}",
    "url_route": "rundossier-dag",
    "destination": "dag",
}
TASK_TRACE = {
    "name": "Trace",
    "href": PAGE
    + "#/find?orchestrator=airflow&flow_id={DAG_ID}&run_key={RUN_ID}&step_id={TASK_ID}&map_index={MAP_INDEX}",
    "url_route": "rundossier-trace",
    "destination": "task_instance",
}


def external_views() -> list[dict[str, Any]]:
    """Fresh copies: Airflow removes invalid entries from a plugin's list in place."""
    return [dict(v) for v in (RUN_HISTORY, DAG_RUN_HISTORY, TASK_TRACE)]


__all__ = ["external_views", "URL_PREFIX", "AIRFLOW_UI", "RUN_HISTORY", "DAG_RUN_HISTORY", "TASK_TRACE"]
