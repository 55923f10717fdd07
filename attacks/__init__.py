"""Probes: seeded, pure transformations of a pair's queries (option order, images, prompts).

``conf/probe/NAME.yaml`` is the registry: each names its class by ``_target_`` and nothing else
lists probes. ``build_probes`` turns a run's composed ``cfg.probe`` mapping into probe objects;
classes are imported only when a config names them (albumentations loads on first use).
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping

def build_probes(cfg_probe: Mapping[str, Any] | None) -> list:
    """Instantiate a run's ``cfg.probe`` ({NAME: node with ``_target_``}) in order.

    A node without ``name`` gets its config key as name, so a copied YAML under a new name
    gives distinct conditions and seeds. Raises ``ConfigError`` for a node that does not build
    a :class:`~attacks.base.Probe` and for condition names that collide across probes.
    """
    from hydra.utils import get_class, instantiate
    from omegaconf import DictConfig, OmegaConf

    from attacks.base import Probe
    from robustness.errors import ConfigError

    probes: list = []
    seen: dict[str, str] = {}
    for key, node in (cfg_probe or {}).items():
        if isinstance(node, DictConfig):
            node = OmegaConf.to_container(node, resolve=True)
        if not isinstance(node, Mapping) or "_target_" not in node:
            raise ConfigError(f"probe {key}: config needs a _target_ naming a Probe class")
        try:
            cls = get_class(node["_target_"])
        except Exception as err:  # hydra wraps import errors in its own types
            raise ConfigError(f"probe {key}: cannot import {node['_target_']} ({err})") from None
        kwargs: dict[str, Any] = {}
        try:
            takes_name = "name" in inspect.signature(cls).parameters
        except (TypeError, ValueError):  # builtins without a signature
            takes_name = False
        if "name" not in node and takes_name:
            kwargs["name"] = str(key)
        try:
            probe = instantiate(dict(node), **kwargs)
        except ConfigError:
            raise
        except Exception as err:
            cause = err.__cause__ if err.__cause__ is not None else err
            if isinstance(cause, ConfigError):
                raise cause from None
            raise ConfigError(f"probe {key}: cannot build {node['_target_']} ({cause})") from None
        if not isinstance(probe, Probe):
            raise ConfigError(f"probe {key}: {node['_target_']} is not a Probe")
        for condition in probe.conditions():
            if condition.name == "clean" or condition.name in seen:
                other = seen.get(condition.name, "the clean run")
                raise ConfigError(f"probe {key}: condition name {condition.name!r} is also "
                                  f"used by {other}")
            seen[condition.name] = str(key)
        probes.append(probe)
    return probes
