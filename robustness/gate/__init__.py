"""Regression gate: compare a candidate run against a baseline on the same pairs.

:func:`compare` is ``robustness gate`` as a function (the command adds the table and the exit
code); see ``docs/gate.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def compare(baseline: str | Path, candidate: str | Path, *, rules: Any = None,
            annotations: str | Path | None = None, threshold: float = 3.0) -> Any:
    """The gate's verdict (:class:`robustness.gate.comparison.GateResult`) for ``candidate``
    against ``baseline``: run folders, ``summary.json`` files, official results or JSON Lines
    predictions. ``rules`` is a preset name (``"strict"``), a YAML path, a ``GateRules`` or
    None (``conf/gate/default.yaml``). Mismatched runs raise ``UserError``."""
    from robustness.gate.comparison import compare_runs
    from robustness.gate.rules import GateRules, load_rules

    resolved = rules if isinstance(rules, GateRules) else load_rules(rules)
    return compare_runs(baseline, candidate, rules=resolved, annotations=annotations,
                        threshold=threshold)
