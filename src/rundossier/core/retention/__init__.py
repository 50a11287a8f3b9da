"""Retention decisions (pure): policies and which runs a sweep removes."""
