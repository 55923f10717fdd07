"""pytest plugin (entry point ``robustness_gate``): gate a model repository's tests on a baseline."""
