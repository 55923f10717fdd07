"""Reports people look at: ``report.html`` per run and ``robustness report`` comparisons.

Every chart's numbers come from :mod:`robustness.report.figures` (shared with the W&B tracker and
the dashboard); the pages are single files with inline SVG and no requests (``docs/outputs.md``).
"""

from robustness.report.compare import render_comparison, write_comparison
from robustness.report.run_page import render_run_report, write_run_report

__all__ = ["render_comparison", "render_run_report", "write_comparison", "write_run_report"]
