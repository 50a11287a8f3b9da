"""Tests of rundossier.logcapture."""
