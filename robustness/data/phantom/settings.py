"""Generation settings: the difficulty knobs and the selectable modalities and families."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Iterable

from robustness.errors import UserError

MODALITIES: tuple[str, ...] = (
    "chest_radiograph",
    "head_ct",
    "angiogram",
    "skeletal_radiograph",
    "abdominal_ct",
)

FAMILIES: tuple[str, ...] = (
    "nodule",
    "mass",
    "hemorrhage",
    "calcification",
    "fracture",
    "occlusion",
    "aneurysm",
    "device",
    "cardiomegaly",
    "laterality",
    "zone",
    "normality",
)


@dataclass(frozen=True)
class Difficulty:
    """How hard the decisive finding is to see. The defaults keep every pair plain to a careful reader.

    - ``finding_scale``: multiplies finding sizes (lesion diameter, device size, fracture gap width).
    - ``contrast``: multiplies the density/HU/opacity difference the finding makes.
    - ``noise``: multiplies the acquisition noise (0 = noiseless).
    - ``distractors``: benign look-alike structures per image (shared by both images of a pair).
    """

    finding_scale: float = 1.0
    contrast: float = 1.0
    noise: float = 1.0
    distractors: int = 2

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _number(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"difficulty '{name}': expected a number, got {value!r}")
    if not low <= float(value) <= high:
        raise UserError(f"difficulty '{name}': {value} is outside [{low}, {high}]")
    return float(value)


def make_difficulty(**knobs: Any) -> Difficulty:
    """Validated difficulty from keyword knobs (unknown names and out-of-range values are user errors)."""
    known = {f.name for f in fields(Difficulty)}
    unknown = sorted(set(knobs) - known)
    if unknown:
        raise UserError(f"unknown phantom option(s) {', '.join(unknown)} "
                        f"(difficulty knobs: {', '.join(sorted(known))}; also modalities, families)")
    values: dict[str, Any] = {}
    if "finding_scale" in knobs:
        values["finding_scale"] = _number("finding_scale", knobs["finding_scale"], 0.25, 4.0)
    if "contrast" in knobs:
        values["contrast"] = _number("contrast", knobs["contrast"], 0.05, 4.0)
    if "noise" in knobs:
        values["noise"] = _number("noise", knobs["noise"], 0.0, 10.0)
    if "distractors" in knobs:
        count = knobs["distractors"]
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 12:
            raise UserError(f"difficulty 'distractors': expected an integer in [0, 12], got {count!r}")
        values["distractors"] = count
    return Difficulty(**values)


def select(kind: str, requested: Iterable[str] | str | None, choices: tuple[str, ...]) -> tuple[str, ...]:
    """Validate a subset of ``choices`` (a list or a comma-separated string); None means all."""
    if requested is None:
        return choices
    names = [n.strip() for n in (requested.split(",") if isinstance(requested, str) else requested)]
    names = [n for n in names if n]
    if not names:
        raise UserError(f"{kind}: empty selection (choose from {', '.join(choices)})")
    for name in names:
        if name not in choices:
            raise UserError(f"unknown {kind[:-1] if kind.endswith('s') else kind} {name!r} "
                            f"(choose from {', '.join(choices)})")
    return tuple(c for c in choices if c in set(names))
