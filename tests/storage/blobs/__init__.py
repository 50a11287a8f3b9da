"""Tests of rundossier.storage.blobs."""
