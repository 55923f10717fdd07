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

    modes = {}
    for name, node in (cfg.get("modes") or {}).items():
        mode = instantiate(node)
        if not isinstance(mode, AnsweringMode):
            raise ConfigError(f"modes.{name}: does not build an answering mode")
        modes[name] = mode
    if not modes:
        raise ConfigError("conf/train_reference.yaml: modes is empty (name the modes to train)")
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
    evaluation_seeds(cfg)
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


def evaluation_seeds(cfg) -> tuple[int, list[int]]:
    """The card's held-out seed and the further seeds evaluated beside it (checked before
    training starts: a training seed here would be refused only after the training)."""
    from robustness.reference.data import FIRST_TRAINING_SEED

    from omegaconf import ListConfig

    ev = cfg.evaluation
    raw_more = ev.get("more_seeds") or []
    try:
        seed = int(ev.seed)
    except (TypeError, ValueError):
        raise ConfigError(f"conf/train_reference.yaml: evaluation.seed: expected an integer "
                          f"seed, got {ev.seed!r}") from None
    try:
        if not isinstance(raw_more, (list, tuple, ListConfig)):
            raise TypeError
        more = [int(s) for s in raw_more]
    except (TypeError, ValueError):
        raise ConfigError(f"conf/train_reference.yaml: evaluation.more_seeds: expected a list of "
                          f"integer seeds, got {_plain(raw_more)!r}") from None
    for field, value in [("evaluation.seed", seed)] + [("evaluation.more_seeds", s) for s in more]:
        if value >= FIRST_TRAINING_SEED:
            raise UserError(f"{field}: {value} is a training seed; evaluation seeds are "
                            f"< {FIRST_TRAINING_SEED}")
    return seed, [s for s in dict.fromkeys(more) if s != seed]


def evaluate(out: Path, cfg, modes: Mapping[str, Any]) -> dict[str, Any]:
    """Held-out evaluation of the saved checkpoint (seeds < 1000, default difficulty): every
    metric on the card's seed, and set accuracy per mode on each further seed and pooled, so
    the card's figure comes with its spread across held-out sets."""
    from robustness.reference.data import generate_splits, phantom_split
    from robustness.reference.evaluate import evaluate_checkpoint

    ev = cfg.evaluation
    seed, more = evaluation_seeds(cfg)
    pairs = int(ev.pairs)
    generate_splits(cfg.data.dir, [seed, *more], pairs=pairs, size=int(cfg.data.size),
                    difficulty={}, workers=int(cfg.threads))  # default difficulty, as the card says

    def split(s: int):
        return phantom_split(cfg.data.dir, seed=s, pairs=pairs, size=int(cfg.data.size))

    start = time.perf_counter()
    results = evaluate_checkpoint(out, split(seed), modes, batch_size=int(ev.batch_size))
    record: dict[str, Any] = {"seed": seed, "pairs": pairs, "results": results}
    if more:
        per_seed = {str(seed): {m: r["overall"]["set_accuracy"] for m, r in results.items()}}
        for s in more:
            extra = evaluate_checkpoint(out, split(s), modes, batch_size=int(ev.batch_size),
                                        swap_modes=())
            per_seed[str(s)] = {m: r["overall"]["set_accuracy"] for m, r in extra.items()}
        record["set_accuracy_by_seed"] = per_seed
        record["pooled"] = {"pairs": pairs * len(per_seed), "set_accuracy": {
            m: round(sum(v[m] for v in per_seed.values()) / len(per_seed), 2) for m in results}}
    record["seconds"] = round(time.perf_counter() - start, 1)
    return record


def summary_line(out: Path, info: Mapping[str, Any]) -> str:
    size_mb = sum(p.stat().st_size for p in out.iterdir() if p.is_file()) / 1e6
    parts = [f"wrote {out} ({size_mb:.1f} MB, {info['parameters']:,} parameters, trained in "
             f"{info['timing']['total_wall_s'] / 60:.1f} min)"]
    ev = info.get("evaluation")
    if ev:
        accs = ", ".join(f"{m.upper()} {r['overall']['set_accuracy']:.1f}%"
                         for m, r in ev["results"].items())
        parts.append(f"held-out set accuracy (seed {ev['seed']}, {ev['pairs']} pairs): {accs}")
        if ev.get("pooled"):
            pooled = ev["pooled"]
            accs = ", ".join(f"{m.upper()} {v:.1f}%" for m, v in pooled["set_accuracy"].items())
            parts.append(f"pooled over seeds {', '.join(ev['set_accuracy_by_seed'])} "
                         f"({pooled['pairs']} pairs): {accs}")
    return "\n".join(parts)


def copy_checkpoint(src: Path, dst: Path) -> None:
    """Copy a checkpoint folder's files (used to ship a trained checkpoint)."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in CHECKPOINT_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
