"""The `rundossier` command line."""
