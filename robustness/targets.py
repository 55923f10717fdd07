"""Which classes a config may build: this toolkit's, and those of registered plugins.

Hydra's ``instantiate`` calls whatever ``_target_`` names — ``builtins.open``,
``shutil.copyfile``, ``torch.load`` — and an override, a shared YAML or an environment
interpolation can put any name there. Every ``_target_`` of a run's composed config is checked
before anything is built: it must live in one of this toolkit's packages, in a module a plugin
package registered under the entry-point group ``mediconfusion_robustness.plugins`` (the value
names the module, e.g. ``my_adapters = "my_company.vlm_adapters"``), or in a module the user
trusted for this shell with ``ROBUSTNESS_TRUSTED_MODULES=my_probes,my_modes``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, Iterator, Mapping

from robustness.errors import ConfigError

PLUGIN_GROUP = "mediconfusion_robustness.plugins"
TRUSTED_ENV = "ROBUSTNESS_TRUSTED_MODULES"
TOOLKIT_PACKAGES = ("robustness", "attacks", "explain")


@lru_cache(maxsize=1)
def plugin_modules() -> tuple[str, ...]:
    """Modules registered by installed plugin packages (entry-point group above)."""
    from importlib.metadata import entry_points

    return tuple(sorted({ep.value.split(":", 1)[0].strip()
                         for ep in entry_points(group=PLUGIN_GROUP)}))


def trusted_modules() -> tuple[str, ...]:
    """Module prefixes whose classes configs may build."""
    local = tuple(m.strip() for m in os.environ.get(TRUSTED_ENV, "").split(",") if m.strip())
    return TOOLKIT_PACKAGES + plugin_modules() + local


def is_trusted(target: str, modules: tuple[str, ...]) -> bool:
    return any(target == m or target.startswith(m + ".") for m in modules)


def _targets(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, Mapping):
        if "_target_" in node:
            yield path or "config", node["_target_"]
        for key, value in node.items():
            yield from _targets(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _targets(value, f"{path}[{i}]")


def check_targets(config: Mapping[str, Any]) -> None:
    """Refuse, in one line and before anything is built, a ``_target_`` outside the trusted
    modules (``config`` is the resolved container of a composed config)."""
    modules = trusted_modules()
    for where, target in _targets(config, ""):
        if not isinstance(target, str) or not is_trusted(target, modules):
            raise ConfigError(
                f"{where}._target_: {target!r} is not a class of this toolkit or of a registered "
                f"plugin; configs may build only {', '.join(m + '.*' for m in modules)} "
                f"(register a plugin module under the entry-point group {PLUGIN_GROUP!r}, or "
                f"trust a local module with {TRUSTED_ENV}=module)")
