"""The model card (``README.md``) and ``evaluation.json`` written next to a trained checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

MODE_TITLES = {"mc": "MC (letter, generated)", "gd": "GD (letter scores)",
               "ps": "PS (option likelihood)", "ff": "FF (free text, lexical judge)"}


# How the reference recipe got here, run by run: part of every card the recipe trains.
RECIPE_HISTORY = Path(__file__).with_name("recipe_history.md")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return "–" if value is None else str(value)


def metrics_table(results: Mapping[str, Any]) -> str:
    lines = ["| mode | set acc. | indiv. acc. | confusion | invalid | A share | swapped: set acc. "
             "| swapped: A share |", "|---|---|---|---|---|---|---|---|"]
    for mode, entry in results.items():
        o = entry["overall"]
        sw = entry.get("swapped", {})
        lines.append(f"| {MODE_TITLES.get(mode, mode)} | {_fmt(o['set_accuracy'])} | "
                     f"{_fmt(o['individual_accuracy'])} | {_fmt(o['confusion'])} | "
                     f"{_fmt(o['invalid_rate'])} | {_fmt(entry.get('a_share'))} | "
                     f"{_fmt(sw.get('set_accuracy'))} | {_fmt(sw.get('a_share'))} |")
    return "\n".join(lines)


def family_table(results: Mapping[str, Any]) -> str:
    modes = list(results)
    families = sorted({f for entry in results.values() for f in entry["per_family"]})
    lines = ["| family | pairs | " + " | ".join(m.upper() for m in modes) + " |",
             "|---|---|" + "---|" * len(modes)]
    for fam in families:
        pairs = next(e["per_family"][fam]["pairs"] for e in results.values()
                     if fam in e["per_family"])
        cells = [_fmt(results[m]["per_family"].get(fam, {}).get("set_accuracy")) for m in modes]
        lines.append(f"| {fam} | {pairs} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seeds_table(by_seed: Mapping[str, Mapping[str, float]], pooled: Mapping[str, Any]) -> str:
    """Set accuracy per held-out seed and mode, and the pooled row."""
    modes = list(pooled["set_accuracy"])
    lines = ["| seed | " + " | ".join(m.upper() for m in modes) + " |",
             "|---|" + "---|" * len(modes)]
    for seed, accs in by_seed.items():
        lines.append(f"| {seed} | " + " | ".join(_fmt(accs.get(m)) for m in modes) + " |")
    lines.append(f"| **all {len(by_seed)}** | "
                 + " | ".join(f"**{_fmt(pooled['set_accuracy'][m])}**" for m in modes) + " |")
    return "\n".join(lines)


def render_card(info: Mapping[str, Any]) -> str:
    """The model card text from the training record ``info`` (see ``pipeline.run_training``)."""
    t = info["timing"]
    data = info["data"]
    ev = info.get("evaluation")
    biased = info["bias"] != 0.5
    purpose = (
        f"A deliberately flawed variant: during training the right answer was shown at option A "
        f"{100 * info['bias']:.0f}% of the time, so it learned to prefer A. It exists so the "
        "toolkit's option-order probe can be shown to detect a planted position bias."
        if biased else
        "The toolkit's default model: offline runs, testing the toolkit end to end, validating "
        "probes and saliency against phantom ground truth.")
    out = [
        f"# {info['name']}: the MediConfusion-robustness reference model",
        "",
        "A small vision-language model (transformers `LlavaForConditionalGeneration`: a CLIP-style "
        "ViT, a projector and a Llama decoder) trained from scratch on synthetic phantom pairs with "
        "this toolkit's own code. **It is not a medical model**: it has never seen a real "
        "radiograph and its answers about real images mean nothing.",
        "",
        purpose,
        "",
        "Load it like any Hugging Face checkpoint (`AutoProcessor` / `AutoModelForImageTextToText`), "
        f"or in the toolkit with `model={info['name']}`.",
        "",
        "## Training",
        "",
        f"- Command: `{info['command']}` (config below)",
        f"- Data: phantom seeds {data['seeds'][0]}–{data['seeds'][-1]} "
        f"({len(data['seeds'])} × {data['pairs_per_seed']} pairs, {data['images']} images, size "
        f"{data['size']}, difficulty {data['difficulty'] or 'default'}); held-out progress set: "
        f"seed {data['val_seed']} ({data['val_pairs']} pairs). Evaluation seeds (< 1000) are never "
        "trained on.",
        f"- Answer position: the right answer shown at option A {100 * info['bias']:.0f}% of the time.",
        "- Recipe: stage 1 pre-trains the vision tower and projector on finding labels (each "
        "image's answer among its pair's two options, from a position-aware and a pooled "
        "per-patch term; per patch the finding from the ground-truth mask and the patch's own "
        "row and column; the CLS token aligned with the right option's word embeddings; pairs "
        "of the findings in `stage1.oversample` drawn more often); stage 2 "
        "freezes the tower and trains the projector and decoder on every mode's answer format "
        "(letters for MC/GD with options in random order, option texts for PS, finding sentences "
        "for FF, `cot`/few-shot/persona prompts, AI paraphrases), rendered by the toolkit's own "
        "mode classes, with auxiliary option-level heads in letter prompts and extra weight on "
        "the FF token where the stated finding parts from the other image's "
        "(`stage2.decisive_weight`). Settings: see Config.",
        f"- Parameters: {info['parameters']:,}; vocabulary: {info['vocabulary']} words "
        f"(word-level, unknown words → `[UNK]`); {info['image_tokens']} image tokens per image.",
        f"- Training time: {t['total_wall_s'] / 60:.1f} min wall, {t['total_cpu_s'] / 60:.1f} min "
        f"CPU, {info['threads']} threads (data {t['data_s']:.0f} s, stage 1 {t['stage1_s']:.0f} s, "
        f"stage 2 {t['stage2_s']:.0f} s)",
        f"- Held-out (seed {data['val_seed']}) stage-1 answer accuracy {100 * info['stage1_accuracy']:.1f}%, "
        f"final letter accuracy {100 * info['heldout_letter_accuracy']:.1f}%",
        "",
    ]
    if ev:
        out += [
            f"## Held-out evaluation (phantom seed {ev['seed']}, {ev['pairs']} pairs, default "
            "difficulty)",
            "",
            "Through the toolkit's Hugging Face adapter and answering modes (paper prompts, "
            "direct strategy; FF scored by the offline lexical judge: stemmed word overlap "
            "with each option, read for negation). "
            "Percentages. *A share*: valid answers at displayed option A; "
            "*swapped*: the same questions with options A and B exchanged.",
            "",
            metrics_table(ev["results"]),
            "",
            "Set accuracy per finding family:",
            "",
            family_table(ev["results"]),
            "",
        ]
        if ev.get("pooled"):
            out += [
                f"## Across held-out seeds ({ev['pooled']['pairs']} pairs)",
                "",
                "Set accuracy on each held-out seed (the same modes and judge; one seed's 176 "
                "pairs carry a standard error of about 3 points) and pooled over all of them:",
                "",
                seeds_table(ev["set_accuracy_by_seed"], ev["pooled"]),
                "",
            ]
    if not biased:
        out += [RECIPE_HISTORY.read_text(encoding="utf-8").rstrip(), ""]
    out += ["## Config", "", "```yaml", info["config_yaml"].rstrip(), "```", ""]
    return "\n".join(out)


def write_card(folder: Path, info: Mapping[str, Any]) -> None:
    """Write ``README.md`` and ``evaluation.json`` (machine-readable numbers) into ``folder``."""
    folder = Path(folder)
    record = {k: v for k, v in info.items() if k != "config_yaml"}
    (folder / "evaluation.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    (folder / "README.md").write_text(render_card(info))
