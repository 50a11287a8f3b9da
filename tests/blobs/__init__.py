"""Tests of rundossier.blobs."""
