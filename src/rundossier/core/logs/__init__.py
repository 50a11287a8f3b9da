"""How step logs are stored and read back: gzipped JSON lines and live snapshots (pure)."""
