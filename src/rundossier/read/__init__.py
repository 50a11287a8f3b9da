"""Reading back what was recorded: traces, logs, dossiers, in the shapes the API returns."""
