"""Results split by how alike a pair's two images are (``summary.json["by_similarity"]``).

The paper built MediConfusion from pairs that look alike to vision encoders (BiomedCLIP and DINO
similarities, kept in its annotations); confusion should grow with similarity. Pairs are split
into equal-count bins of each available measure — the annotations' ``BiomedCLIP_sim`` and
``DINO_sim`` on MediConfusion, and ``image_difference`` (mean absolute grey-level difference of
the two images, lower = more alike) for every benchmark whose images are loaded — and each bin
gets the clean condition's set accuracy and confusion.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from robustness.data.image import ImageInput
from robustness.data.types import Pair
from robustness.metrics import PairOutcome

BINS = 3


def image_difference(images: tuple[ImageInput, ImageInput]) -> float | None:
    """Mean absolute grey-level difference of a pair's two images (None for other shapes)."""
    a, b = (np.asarray(img.pil("L"), dtype=np.float64) for img in images)
    return None if a.shape != b.shape else float(np.abs(a - b).mean())


def measures(pairs: Sequence[Pair],
             images: Callable[[Pair], tuple[ImageInput, ImageInput]]) -> dict[str, dict[str, float]]:
    """Per measure, the value of each pair that has one."""
    out: dict[str, dict[str, float]] = {}
    for pair in pairs:
        fields = pair.mediconfusion
        values = {"BiomedCLIP_sim": fields.biomedclip_sim if fields else None,
                  "DINO_sim": fields.dino_sim if fields else None,
                  "image_difference": image_difference(images(pair))}
        for name, value in values.items():
            if value is not None:
                out.setdefault(name, {})[pair.pair_id] = float(value)
    return out


def by_similarity(pairs: Sequence[Pair], outcomes: Mapping[str, PairOutcome],
                  images: Callable[[Pair], tuple[ImageInput, ImageInput]],
                  bins: int = BINS) -> dict[str, list[dict[str, Any]]]:
    """For each measure, ``bins`` equal-count bins with the pairs' set accuracy and confusion."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name, values in measures(pairs, images).items():
        ids = sorted(values, key=lambda pid: (values[pid], pid))
        if len(ids) < bins:
            continue
        rows = []
        for chunk in np.array_split(np.array(ids, dtype=object), bins):
            group = [outcomes[pid] for pid in chunk if pid in outcomes]
            valid = [o for o in group if o.valid]
            rows.append({
                "range": [round(values[chunk[0]], 4), round(values[chunk[-1]], 4)],
                "pairs": len(group),
                "set_accuracy": round(100.0 * sum(o.both_correct for o in group)
                                      / len(group), 2) if group else None,
                "confusion": round(100.0 * sum(o.confused for o in valid) / len(valid), 2)
                if valid else None,
            })
        out[name] = rows
    return out
