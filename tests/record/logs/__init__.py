"""Tests of step logs: the StepLog buffer, capture, and the stored formats."""
