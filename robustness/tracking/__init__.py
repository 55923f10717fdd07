"""Experiment tracking: one interface for W&B and the local report; ``finish()`` always runs."""

from robustness.tracking.base import MultiTracker, NullTracker, RunInfo, Table, Tracker
from robustness.redaction import redact

__all__ = ["MultiTracker", "NullTracker", "RunInfo", "Table", "Tracker", "redact"]
