"""Airflow integration tests: collected only where Apache Airflow is installed (.venv-airflow).

`scripts/test-airflow.sh` runs them; the core suite (`.venv`, no Airflow) ignores this folder.
Session fixtures share one AIRFLOW_HOME in which the example DAGs ran once with `airflow dags
test`; tests read what rundossier recorded and what Airflow itself printed.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import tempfile

if importlib.util.find_spec("airflow") is None:
    collect_ignore_glob = ["*"]
else:
    # Airflow creates AIRFLOW_HOME and airflow.cfg on first import: never in the developer's ~/airflow
    os.environ["AIRFLOW_HOME"] = _home = tempfile.mkdtemp(prefix="rd-airflow-pytest-")
    atexit.register(shutil.rmtree, _home, True)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    pytest_plugins = ["tests.integrations.airflow.fixtures"]
