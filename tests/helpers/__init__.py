"""Test helpers: paths, record builders, scripted runs, fixtures (tests import them)."""
