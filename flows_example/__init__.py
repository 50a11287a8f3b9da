"""Example Prefect flows recorded by rundossier (see flows.py; `python -m flows_example` runs them)."""
