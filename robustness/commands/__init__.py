"""Sub-commands of the ``robustness`` CLI, one module each with ``main(argv) -> int``."""
