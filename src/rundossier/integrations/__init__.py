"""Orchestrator integrations: each imports its orchestrator itself, so `import rundossier` needs neither."""
