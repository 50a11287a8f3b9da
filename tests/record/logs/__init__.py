"""Tests of rundossier.record.logs."""
