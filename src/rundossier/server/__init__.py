"""The read side over HTTP: the JSON API and the web UI, one FastAPI app for `serve` and Airflow."""

from rundossier.server.access import Access, AllowAll
from rundossier.server.app import create_app

__all__ = ["create_app", "Access", "AllowAll"]
