"""Make phantom pairs: plan (kind and answer order per pair), draw both images, word the question.

Every random number comes from ``SeedSequence(seed, spawn_key=...)`` streams keyed by the pair
index, so pair ``i`` of a set depends only on the seed, the index and the settings — never on how
many pairs are made or on other pairs — and the same seed gives byte-identical files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from robustness.data.phantom.canvas import Grid
from robustness.data.phantom.findings import MODALITY_CLASSES, Kind
from robustness.data.phantom.questions import caption, word_question
from robustness.data.phantom.scene import ImageFinding, PairFinding
from robustness.data.phantom.settings import Difficulty

# spawn-key tags of the independent random streams
_PAIR, _ORDER, _BALANCE = 0, 1, 2


def pair_id(seed: int, index: int, width: int) -> str:
    """``ph<seed>-<index>``: the seed is part of every id, so sets from different seeds never collide."""
    return f"ph{seed}-{index + 1:0{width}d}"


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def kind_for(index: int, seed: int, kinds: tuple[Kind, ...]) -> Kind:
    """Kinds cycle in a seeded order: each block of ``len(kinds)`` pairs holds every kind once."""
    block, slot = divmod(index, len(kinds))
    return kinds[int(_rng(seed, _ORDER, block).permutation(len(kinds))[slot])]


def answer_order(index: int, seed: int) -> tuple[str, str]:
    """Correct labels of (image 1, image 2): in each consecutive two pairs, one is A/B and one is B/A."""
    flip = int(_rng(seed, _BALANCE, index // 2).integers(2))
    return ("A", "B") if index % 2 == flip else ("B", "A")


@dataclass
class GeneratedPair:
    """Both images, both masks and the annotation record of one pair."""

    pair_id: str
    images: tuple[np.ndarray, np.ndarray]
    masks: tuple[np.ndarray, np.ndarray]
    record: dict[str, Any]


def _mask(finding: ImageFinding, grid: Grid, regions: dict[str, np.ndarray]) -> np.ndarray:
    mask = np.zeros((grid.size, grid.size), bool)
    for mark in finding.marks:
        mask |= mark.support(grid, regions)
    return mask


def _location(mask: np.ndarray) -> dict[str, Any]:
    """Centre, bounding box (x0, y0, x1, y1; x1/y1 exclusive) and extent of a mask, in pixels."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return {"centre": None, "bbox": None, "size_px": 0, "area_px": 0}
    x0, x1, y0, y1 = int(cols.min()), int(cols.max()) + 1, int(rows.min()), int(rows.max()) + 1
    return {"centre": [round(float(cols.mean()), 1), round(float(rows.mean()), 1)],
            "bbox": [x0, y0, x1, y1], "size_px": max(x1 - x0, y1 - y0), "area_px": int(rows.size)}


def _slots(pair: PairFinding, finding: ImageFinding | None = None) -> dict[str, str]:
    slots = dict(pair.slots)
    if finding is not None:
        slots.update(finding.slots)
    if "limb" in slots:
        slots["limb_title"] = slots["limb"].capitalize()
    return slots


def generate_pair(index: int, seed: int, size: int, difficulty: Difficulty, kind: Kind,
                  id_width: int) -> GeneratedPair:
    """Draw, mask and word pair ``index`` of the set."""
    modality = MODALITY_CLASSES[kind.modality]
    grid = Grid(size)
    anatomy_rng, finding_rng, text_rng = (np.random.default_rng(s) for s in
                                          np.random.SeedSequence(seed, spawn_key=(_PAIR, index)).spawn(3))
    variant = kind.variants[int(anatomy_rng.integers(len(kind.variants)))]
    anatomy = modality.sample(anatomy_rng, grid, difficulty, variant)
    pair = kind.build(finding_rng, anatomy, difficulty)

    wording = word_question(text_rng, pair.question, _slots(pair))
    answers = [f.answer for f in pair.images]
    if text_rng.random() < 0.5:
        answers.reverse()
    label_of = {answers[0]: "A", answers[1]: "B"}
    correct = answer_order(index, seed)
    by_label = {label_of[f.answer]: f for f in pair.images}
    ordered = (by_label[correct[0]], by_label[correct[1]])

    pid = pair_id(seed, index, id_width)
    images, masks = [], []
    for finding in ordered:
        image, drawn = modality.image(finding.anatomy, grid)
        images.append(image)
        masks.append(_mask(finding, grid, drawn.regions))
    union = masks[0] | masks[1]
    diff = np.abs(images[0].astype(np.int16) - images[1].astype(np.int16))
    inside = float(diff[union].mean()) if union.any() else 0.0
    outside = float(diff[~union].mean()) if (~union).any() else 0.0

    local_ids = (f"{pid}_1", f"{pid}_2")
    per_image = []
    captions = []
    for n, (finding, mask) in enumerate(zip(ordered, masks), start=1):
        slots = _slots(pair, finding)
        captions.append(caption(text_rng, pair.question, finding.answer, finding.finding, slots))
        per_image.append({
            "local_id": local_ids[n - 1],
            "image": f"images/{local_ids[n - 1]}.png",
            "mask": f"masks/{local_ids[n - 1]}.png",
            "family": pair.family,
            "finding": finding.finding,
            "present": finding.present,
            "answer": finding.answer,
            "label": correct[n - 1],
            "side": finding.location.get("side"),
            "zone": finding.location.get("zone"),
            "structure": finding.location.get("structure"),
            **{k: v for k, v in finding.location.items() if k not in ("side", "zone", "structure")},
            **_location(mask),
            "size_mm": finding.size_mm,
        })
    record = {
        "question": wording.question,
        "option_A": wording.options[answers[0]][0],
        "option_B": wording.options[answers[1]][0],
        "im_1_correct": correct[0],
        "im_2_correct": correct[1],
        "im_1_local": local_ids[0],
        "im_2_local": local_ids[1],
        "im_1": f"{local_ids[0]}.png",
        "im_2": f"{local_ids[1]}.png",
        "category_1": list(pair.categories),
        "category_2": list(pair.categories),
        "cap_1": captions[0],
        "cap_2": captions[1],
        "BiomedCLIP_sim": None,
        "DINO_sim": None,
        "AI_question": wording.ai_question,
        "AI_option_A": wording.options[answers[0]][1],
        "AI_option_B": wording.options[answers[1]][1],
        "phantom": {
            "generator": "robustness.data.phantom",
            "format": 1,
            "seed": seed,
            "index": index,
            "kind": kind.name,
            "family": pair.family,
            "modality": modality.name,
            "variant": anatomy.variant,
            "size": size,
            "difficulty": difficulty.as_dict(),
            "template": {"set": pair.question, "question": wording.question_index,
                         "options": wording.option_index},
            "answers": {"A": answers[0], "B": answers[1]},
            "difference": {"inside_mask": round(inside, 3), "outside_mask": round(outside, 3)},
            "im_1": per_image[0],
            "im_2": per_image[1],
        },
    }
    return GeneratedPair(pid, (images[0], images[1]), (masks[0], masks[1]), record)
