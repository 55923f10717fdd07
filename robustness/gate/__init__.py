"""Regression gate: compare a candidate run against a baseline on the same pairs."""
