"""Answering modes: how a model's answer is obtained (MC, GD, PS, FF) and read.

Each mode is one class plus one YAML under ``conf/mode/``; the YAML carries the prompt wording.
:func:`mode_from_config` builds a mode from its YAML outside a Hydra run (notebooks, tests).
"""

from __future__ import annotations

from typing import Any


def mode_from_config(name: str, **settings: Any) -> Any:
    """The mode ``conf/mode/NAME.yaml`` builds, with ``settings`` replacing its keys.

    Values may be objects (e.g. ``judge=LexicalJudge()``); configs with a ``defaults`` list
    (``ff_model_judge``) need Hydra's composition: use :func:`robustness.evaluate` overrides.
    """
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from robustness.configs import config_dir
    from robustness.errors import ConfigError

    path = config_dir(f"mode/{name}.yaml") / "mode" / f"{name}.yaml"
    node = OmegaConf.load(path)
    if "defaults" in node:
        raise ConfigError(f"{path}: composes other configs; build it through Hydra")
    return instantiate(node, **settings)
