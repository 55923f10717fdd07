"""Benchmark data: pair types, the MediConfusion loader, the downloader and the phantom generator."""

from robustness.data.mediconfusion import load_benchmark, read_annotations
from robustness.data.types import (
    MEDICONFUSION_CATEGORIES,
    OPTION_LABELS,
    Benchmark,
    Choice,
    OptionLabel,
    Pair,
    other_label,
)

__all__ = [
    "MEDICONFUSION_CATEGORIES",
    "OPTION_LABELS",
    "Benchmark",
    "Choice",
    "OptionLabel",
    "Pair",
    "load_benchmark",
    "other_label",
    "read_annotations",
]
