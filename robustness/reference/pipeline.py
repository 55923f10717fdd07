"""One training run of the reference model, from a composed config to a carded checkpoint.

Steps: phantom splits (training seeds ≥ 1000, a held-out progress split) → vocabulary from the
phantom texts and the modes' rendered prompts → tokenizer, processor, fresh model → two-stage
training → ``save_pretrained`` → held-out evaluation through the Hugging Face adapter → model card.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Mapping

from robustness.errors import ConfigError, UserError

CHECKPOINT_FILES = ("config.json", "generation_config.json", "model.safetensors",
                    "processor_config.json", "tokenizer.json", "tokenizer_config.json",
                    "chat_template.jinja", "README.md", "evaluation.json")


def _plain(node: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def build_modes(cfg) -> dict[str, Any]:
    """The answering modes whose prompts training renders (and evaluation asks)."""
    from hydra.utils import instantiate

    from robustness.modes.base import AnsweringMode
    from robustness.reference.examples import MODES

    modes = {}
    for name in MODES:
        node = cfg.modes.get(name)
        if node is None:
            raise ConfigError(f"conf/train_reference.yaml: modes.{name} is missing")
        mode = instantiate(node)
        if not isinstance(mode, AnsweringMode):
            raise ConfigError(f"modes.{name}: does not build an answering mode")
        modes[name] = mode
    return modes


def train_settings(cfg):
    """``TrainSettings`` from the config (bad values: one line naming the field)."""
    from robustness.reference.augment import Augment
    from robustness.reference.train import StageOne, StageTwo, TrainSettings

    try:
        return TrainSettings(
            seed=int(cfg.seed), threads=int(cfg.threads),
            stage1=StageOne(**_plain(cfg.stage1)), stage2=StageTwo(**_plain(cfg.stage2)),
            augment=Augment(**(_plain(cfg.get("augment")) or {})),
            mode_weights=dict(_plain(cfg.mix.modes)),
            strategy_weights=dict(_plain(cfg.mix.strategies)),
            p_correct_first=float(cfg.bias), p_paraphrase=float(cfg.mix.paraphrase),
            max_shots=int(cfg.mix.max_shots),
            both_orders=bool(cfg.mix.get("both_orders", False)),
            eval_every=int(cfg.eval_every), save_every=int(cfg.save_every))
    except (TypeError, ValueError) as err:
        raise ConfigError(f"conf/train_reference.yaml: {err}") from None


def architecture(cfg):
    from robustness.reference.architecture import Architecture

    try:
        return Architecture(**_plain(cfg.architecture))
    except (TypeError, ValueError) as err:
        raise ConfigError(f"conf/train_reference.yaml: architecture: {err}") from None


def _check_bias(bias: float) -> None:
    if not 0.0 <= bias <= 1.0:
        raise ConfigError(f"conf/train_reference.yaml: bias must lie in [0, 1], got {bias}")


def run_training(cfg, *, command: str = "robustness train-reference") -> str:
    """Train, save, evaluate and card one checkpoint; returns a one-paragraph summary."""
    import torch
    from omegaconf import OmegaConf

    from robustness.reference.architecture import build_model, count_parameters
    from robustness.reference.card import write_card
    from robustness.reference.corpus import corpus
    from robustness.reference.data import (
        FIRST_TRAINING_SEED,
        generate_splits,
        pair_images,
        phantom_split,
        training_seeds,
    )
    from robustness.reference.processor import build_processor
    from robustness.reference.tokenizer import build_tokenizer, build_vocabulary
    from robustness.reference.train import Trainer

    _check_bias(float(cfg.bias))
    settings = train_settings(cfg)
    arch = architecture(cfg)
    torch.set_num_threads(settings.threads)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    out = Path(cfg.output_dir)
    data = cfg.data
    seeds = training_seeds(int(data.first_seed), int(data.seeds))
    val_seed = int(data.val_seed)
    if val_seed < FIRST_TRAINING_SEED or val_seed in seeds:
        raise UserError(f"data.val_seed: {val_seed} must be ≥ {FIRST_TRAINING_SEED} and not a "
                        "training seed (evaluation seeds stay unseen)")
    difficulty = dict(_plain(data.difficulty) or {})
    modes = build_modes(cfg)

    generate_splits(data.dir, seeds, pairs=int(data.pairs_per_seed),
                    size=int(data.size), difficulty=difficulty, workers=settings.threads)
    train_sets = [phantom_split(data.dir, seed=s, pairs=int(data.pairs_per_seed),
                                size=int(data.size), difficulty=difficulty) for s in seeds]
    val_set = phantom_split(data.dir, seed=val_seed, pairs=int(data.val_pairs),
                            size=int(data.size), difficulty=difficulty)
    train_items = pair_images(train_sets)
    val_items = pair_images([val_set])
    pairs = [p for bench in train_sets for p in bench]
    words = build_vocabulary(corpus(modes, pairs, train_items[:64], settings.system_prompts))
    tokenizer = build_tokenizer(words)
    processor = build_processor(tokenizer, image_size=arch.image_size, patch_size=arch.patch_size,
                                feature_strategy=arch.feature_strategy)
    model = build_model(arch, tokenizer, seed=settings.seed)
    data_seconds = time.perf_counter() - wall0

    out.mkdir(parents=True, exist_ok=True)
    state = out / "training_state.pt"
    trainer = Trainer(model, processor, modes, train_items, val_items, settings, state_path=state)
    log = trainer.run(bar_factory=None if cfg.progress else (lambda **_: None))
    for name in CHECKPOINT_FILES:  # a stale file from another run never survives next to new ones
        (out / name).unlink(missing_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    state.unlink(missing_ok=True)
    state.with_suffix(".tmp").unlink(missing_ok=True)
    timing = {"data_s": round(data_seconds, 1), "stage1_s": round(log.stage1_seconds, 1),
              "stage2_s": round(log.stage2_seconds, 1),
              "total_wall_s": round(time.perf_counter() - wall0, 1),
              "total_cpu_s": round(time.process_time() - cpu0, 1)}

    info: dict[str, Any] = {
        "name": str(cfg.name), "command": command, "bias": float(cfg.bias),
        "parameters": count_parameters(model), "vocabulary": len(tokenizer),
        "image_tokens": arch.image_tokens, "threads": settings.threads,
        "architecture": arch.as_dict(),
        "data": {"seeds": seeds, "pairs_per_seed": int(data.pairs_per_seed),
                 "images": len(train_items), "size": int(data.size), "difficulty": difficulty,
                 "val_seed": val_seed, "val_pairs": int(data.val_pairs)},
        "timing": timing, "resumed_from_step": log.resumed_from,
        "stage1_accuracy": round(log.stage1_accuracy, 4),
        "heldout_letter_accuracy": round(log.heldout_letter_accuracy, 4),
        "history": log.history,
        "config_yaml": OmegaConf.to_yaml(cfg),
    }
    write_card(out, info)  # the training record survives a failed or interrupted evaluation
    if cfg.evaluation.enabled:
        info["evaluation"] = evaluate(out, cfg, modes)
        write_card(out, info)
    return summary_line(out, info)


def evaluate(out: Path, cfg, modes: Mapping[str, Any]) -> dict[str, Any]:
    """Held-out evaluation of the saved checkpoint (seed < 1000, default difficulty)."""
    from robustness.reference.data import FIRST_TRAINING_SEED, phantom_split
    from robustness.reference.evaluate import evaluate_checkpoint

    ev = cfg.evaluation
    seed = int(ev.seed)
    if seed >= FIRST_TRAINING_SEED:
        raise UserError(f"evaluation.seed: {seed} is a training seed; evaluation seeds are "
                        f"< {FIRST_TRAINING_SEED}")
    bench = phantom_split(cfg.data.dir, seed=seed, pairs=int(ev.pairs), size=int(cfg.data.size))
    start = time.perf_counter()
    results = evaluate_checkpoint(out, bench, modes, batch_size=int(ev.batch_size))
    return {"seed": seed, "pairs": int(ev.pairs), "seconds": round(time.perf_counter() - start, 1),
            "results": results}


def summary_line(out: Path, info: Mapping[str, Any]) -> str:
    size_mb = sum(p.stat().st_size for p in out.iterdir() if p.is_file()) / 1e6
    parts = [f"wrote {out} ({size_mb:.1f} MB, {info['parameters']:,} parameters, trained in "
             f"{info['timing']['total_wall_s'] / 60:.1f} min)"]
    ev = info.get("evaluation")
    if ev:
        accs = ", ".join(f"{m.upper()} {r['overall']['set_accuracy']:.1f}%"
                         for m, r in ev["results"].items())
        parts.append(f"held-out set accuracy (seed {ev['seed']}, {ev['pairs']} pairs): {accs}")
    return "\n".join(parts)


def copy_checkpoint(src: Path, dst: Path) -> None:
    """Copy a checkpoint folder's files (used to ship a trained checkpoint)."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in CHECKPOINT_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
