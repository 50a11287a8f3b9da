"""The only I/O: the run history database, blob storage (fsspec) and the local spool."""
