"""The phantom benchmark: confusing pairs drawn from procedural radiology-like phantoms.

Written in MediConfusion's on-disk format (``dataset.json``, ``images/<local id>.png``) plus
ground-truth masks (``masks/<local id>.png``), so every loader, metric and probe is shared with
the real benchmark. ``robustness data phantom --out DIR`` (:mod:`robustness.commands.data_phantom`) calls :func:`generate_phantom_benchmark`.
"""

from robustness.data.phantom.benchmark import generate_phantom_benchmark, phantom_pairs
from robustness.data.phantom.generator import GeneratedPair
from robustness.data.phantom.questions import TEMPLATES, vocabulary
from robustness.data.phantom.settings import FAMILIES, MODALITIES, Difficulty

__all__ = ["FAMILIES", "MODALITIES", "TEMPLATES", "Difficulty", "GeneratedPair", "generate_phantom_benchmark",
           "phantom_pairs", "vocabulary"]
