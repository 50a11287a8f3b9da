"""The pure core: traces, masking, the dossier, the retention plan, the status vocabulary; no I/O."""
