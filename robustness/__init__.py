"""MediConfusion robustness toolkit: stress-test medical VLMs on confusing image pairs."""

__version__ = "0.1.0"
