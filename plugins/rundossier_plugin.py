"""rundossier for Airflow 3, as a drop-in file: copy it into `$AIRFLOW_HOME/plugins`.

The rundossier package must be importable by every Airflow component (scheduler, workers, API
server). When it is installed with pip, its `airflow.plugins` entry point already registers the
plugin and this file defines nothing, so the plugin is never loaded twice; it registers the
plugin only where the package is importable without that entry point (e.g. on PYTHONPATH).
"""

from __future__ import annotations

import rundossier.integrations.airflow.plugin as _rundossier_plugin

if not _rundossier_plugin.registered_by_entry_point():
    RunDossierPlugin = _rundossier_plugin.RunDossierPlugin
