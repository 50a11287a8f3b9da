"""Apache Airflow 3 integration: a plugin with listeners, the rundossier UI and API, and UI tabs.

Installed through the `airflow.plugins` entry point of the rundossier package (or the drop-in
file `plugins/rundossier_plugin.py` for `$AIRFLOW_HOME/plugins`). Needs Airflow 3.1 or newer:
`pip install "rundossier[airflow]"`.
"""

from __future__ import annotations

try:
    import airflow  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without Airflow
    raise ImportError(
        "rundossier.integrations.airflow needs Apache Airflow 3.1 or newer in this environment: "
        'pip install "rundossier[airflow]"'
    ) from exc

__all__: list[str] = []
