"""The catalogue of pair kinds: which modality, which anatomical variants, which finding builder.

A kind is one way to make a confusing pair (e.g. a chest radiograph with and without a pulmonary
nodule). The generator cycles through the selected kinds in a seeded order, so every kind
appears once in each block of ``len(kinds)`` pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from robustness.data.phantom import abdomen, angio, chest, head, skeletal
from robustness.data.phantom.scene import Anatomy, Modality, PairFinding
from robustness.data.phantom.settings import FAMILIES, MODALITIES, Difficulty
from robustness.errors import UserError

Builder = Callable[[np.random.Generator, Anatomy, Difficulty], PairFinding]

MODALITY_CLASSES: dict[str, Modality] = {
    m.name: m for m in (chest.ChestRadiograph(), head.HeadCT(), angio.Angiogram(),
                        skeletal.SkeletalRadiograph(), abdomen.AbdominalCT())
}
assert tuple(MODALITY_CLASSES) == MODALITIES


@dataclass(frozen=True)
class Kind:
    name: str
    modality: str
    variants: tuple[str, ...]
    family: str
    build: Builder


SPINES = ("lumbar_spine", "cervical_spine")
LIMBS = ("forearm", "leg")

KINDS: tuple[Kind, ...] = (
    Kind("chest.nodule", "chest_radiograph", ("pa",), "nodule", chest.nodule_pair),
    Kind("chest.cardiomegaly", "chest_radiograph", ("pa",), "cardiomegaly", chest.cardiomegaly_pair),
    Kind("chest.device", "chest_radiograph", ("pa",), "device", chest.device_pair),
    Kind("chest.laterality", "chest_radiograph", ("pa",), "laterality", chest.laterality_pair),
    Kind("chest.zone", "chest_radiograph", ("pa",), "zone", chest.zone_pair),
    Kind("chest.normality", "chest_radiograph", ("pa",), "normality", chest.normality_pair),
    Kind("head.hemorrhage", "head_ct", ("axial",), "hemorrhage", head.hemorrhage_pair),
    Kind("head.calcification", "head_ct", ("axial",), "calcification", head.calcification_pair),
    Kind("head.fracture", "head_ct", ("axial",), "fracture", head.fracture_pair),
    Kind("head.laterality", "head_ct", ("axial",), "laterality", head.laterality_pair),
    Kind("head.normality", "head_ct", ("axial",), "normality", head.normality_pair),
    Kind("angio.occlusion", "angiogram", tuple(angio.TERRITORIES), "occlusion", angio.occlusion_pair),
    Kind("angio.aneurysm", "angiogram", tuple(angio.TERRITORIES), "aneurysm", angio.aneurysm_pair),
    Kind("angio.stent", "angiogram", tuple(angio.TERRITORIES), "device", angio.stent_pair),
    Kind("spine.fracture", "skeletal_radiograph", SPINES, "fracture", skeletal.compression_pair),
    Kind("spine.device", "skeletal_radiograph", SPINES, "device", skeletal.spine_screw_pair),
    Kind("spine.zone", "skeletal_radiograph", SPINES, "zone", skeletal.spine_zone_pair),
    Kind("limb.fracture", "skeletal_radiograph", LIMBS, "fracture", skeletal.limb_fracture_pair),
    Kind("limb.device", "skeletal_radiograph", LIMBS, "device", skeletal.limb_screw_pair),
    Kind("limb.zone", "skeletal_radiograph", LIMBS, "zone", skeletal.limb_zone_pair),
    Kind("abdomen.mass", "abdominal_ct", ("axial",), "mass", abdomen.mass_pair),
    Kind("abdomen.calcification", "abdominal_ct", ("axial",), "calcification", abdomen.calcification_pair),
    Kind("abdomen.laterality", "abdominal_ct", ("axial",), "laterality", abdomen.laterality_pair),
    Kind("abdomen.normality", "abdominal_ct", ("axial",), "normality", abdomen.normality_pair),
)
assert {k.family for k in KINDS} == set(FAMILIES)


def select_kinds(modalities: tuple[str, ...], families: tuple[str, ...]) -> tuple[Kind, ...]:
    """Kinds whose modality and family are both selected (a user error when none is left)."""
    kinds = tuple(k for k in KINDS if k.modality in modalities and k.family in families)
    if not kinds:
        raise UserError(f"no phantom pair kind has a modality in {', '.join(modalities)} and a family in "
                        f"{', '.join(families)}")
    return kinds
