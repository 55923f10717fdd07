"""``robustness train-reference [HYDRA_OVERRIDES ...]``: train the reference model on phantoms.

Composes ``conf/train_reference.yaml`` (Hydra overrides as arguments), generates the phantom
training splits (seeds ≥ 1000), trains the two-stage recipe, writes a Hugging Face checkpoint
folder, evaluates it on a held-out phantom set through the real adapter and modes, and writes the
model card. Interrupted training continues from its last saved state when run again.
"""

from __future__ import annotations

import sys

from robustness.commands.args import hydra_command
from robustness.errors import ConfigError

CONFIG_NAME = "train_reference"

USAGE = """usage: robustness train-reference [HYDRA_OVERRIDES ...]

Train the reference vision-language model (a small LLaVA) on phantom pairs and write a
Hugging Face checkpoint folder with its model card (README.md) and evaluation.json.

examples:
  robustness train-reference                                   # -> runs/train_reference/reference
  robustness train-reference output_dir=robustness/checkpoints/reference
  robustness train-reference name=reference_biased bias=0.88 \\
      output_dir=robustness/checkpoints/reference_biased
  robustness train-reference stage1.steps=20 stage2.steps=20 data.seeds=1 evaluation.pairs=8

options:
  -h, --help   this help and the composed configuration
  --cfg        print the composed configuration and exit
Settings (conf/train_reference.yaml): data seeds and size, architecture, stage steps, learning
rates, batch sizes, answer-format mix, bias (share of answers at option A), output_dir."""


def compose(overrides: list[str]):
    """The composed training config (one clear line for a bad override)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from omegaconf import OmegaConf

    from robustness.configs import config_dir
    from robustness.targets import check_targets

    try:
        with initialize_config_dir(config_dir=str(config_dir(f"{CONFIG_NAME}.yaml")),
                                   version_base="1.3"):
            cfg = hydra_compose(config_name=CONFIG_NAME, overrides=overrides)
        check_targets(OmegaConf.to_container(cfg, resolve=True))
        return cfg
    except (HydraException, OmegaConfBaseException) as err:
        message = " ".join(str(err).split())
        raise ConfigError(f"conf/{CONFIG_NAME}.yaml: {message}") from None


def main(argv: list[str]) -> int:
    parsed = hydra_command(list(argv), "--cfg", "robustness train-reference")
    if parsed is None:
        print(USAGE)
        return 0
    show_only, overrides = parsed
    cfg = compose(overrides)
    if show_only:
        from omegaconf import OmegaConf

        print(OmegaConf.to_yaml(cfg))
        return 0
    from robustness.reference.pipeline import run_training

    command = " ".join(["robustness", "train-reference", *overrides])
    summary = run_training(cfg, command=command)
    print(summary, file=sys.stdout)
    return 0
