"""Where the toolkit's ``conf/`` lives: inside the installed package, or beside it in a checkout.

A wheel carries the repository's top-level ``conf/`` as ``robustness/conf`` (see
``pyproject.toml``); an editable install or a source checkout reads ``conf/`` next to the
package. ``$ROBUSTNESS_CONF_DIR`` replaces both (a user's own full config tree).
"""

from __future__ import annotations

import os
from pathlib import Path

from robustness.errors import UserError

CONF_ENV = "ROBUSTNESS_CONF_DIR"
_PACKAGE = Path(__file__).resolve().parent


def config_dir(required: str = "config.yaml") -> Path:
    """The absolute config folder holding ``required`` (one line, exit 2, if there is none)."""
    override = os.environ.get(CONF_ENV)
    candidates = [Path(override)] if override else [_PACKAGE / "conf", _PACKAGE.parent / "conf"]
    for path in candidates:
        if (path / required).is_file():
            return path.resolve()
    where = f"${CONF_ENV}={override}" if override else "the installed package or the checkout"
    raise UserError(f"{candidates[-1] / required}: config folder not found in {where} "
                    f"(reinstall the toolkit, or set {CONF_ENV} to a config folder)")
