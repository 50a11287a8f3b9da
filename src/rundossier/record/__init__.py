"""Recording: the Recorder facade, the one writer, step logs and leases."""
