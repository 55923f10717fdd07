"""Probes: seeded, pure transformations of a pair's queries (option order, images, prompts).

``PROBES`` maps each shipped probe to ``module:Class`` so nothing heavy (albumentations,
Hydra) is imported until a probe is used; configs build probes by ``_target_`` directly.
``build_probes`` turns a run's composed ``cfg.probe`` mapping into probe objects.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Mapping

PROBES: dict[str, str] = {
    "option_swap": "attacks.option_order:OptionSwap",
    "gaussian_noise": "attacks.corruptions:GaussianNoise",
    "shot_noise": "attacks.corruptions:ShotNoise",
    "salt_pepper": "attacks.corruptions:SaltPepperNoise",
    "gaussian_blur": "attacks.corruptions:GaussianBlur",
    "motion_blur": "attacks.corruptions:MotionBlur",
    "jpeg_compression": "attacks.corruptions:JpegCompression",
    "downscale": "attacks.corruptions:Downscale",
    "contrast": "attacks.corruptions:Contrast",
    "window_shift": "attacks.corruptions:WindowShift",
    "gamma": "attacks.corruptions:Gamma",
    "elastic": "attacks.corruptions:ElasticDistortion",
    "swap_images": "attacks.pair:SwapImages",
    "same_image": "attacks.pair:SameImage",
    "blend": "attacks.pair:Blend",
    "chain_of_thought": "attacks.prompting:ChainOfThought",
    "few_shot": "attacks.prompting:FewShot",
    "expert_persona": "attacks.prompting:ExpertPersona",
    "paraphrase": "attacks.prompting:Paraphrase",
}


def probe_class(name: str) -> type:
    """The class of shipped probe ``name`` (imported on demand)."""
    from robustness.errors import ConfigError

    if name not in PROBES:
        raise ConfigError(f"unknown probe {name!r}; known: {', '.join(sorted(PROBES))}")
    module, _, cls = PROBES[name].partition(":")
    return getattr(importlib.import_module(module), cls)


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
