"""Allow ``python -m robustness`` as an alias of the ``robustness`` console script."""

from robustness.cli import main

raise SystemExit(main())
