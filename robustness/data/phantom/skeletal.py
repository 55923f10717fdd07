"""Skeletal radiographs: a lateral spine (lumbar or cervical) and a two-bone limb (forearm or leg).

Spine: anterior is on the image left, the vertebrae are numbered from the top (L1–L5 or C3–C7).
Limb: proximal is at the top of the image. Density is attenuation, rendered like the chest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from robustness.data.phantom.canvas import (Capsule, Ellipse, Grid, Point, Polyline, Quad,
                                            RoundedRect, Shape, Striped, Union, fractal_noise, grain)
from robustness.data.phantom.scene import (BONE, DEVICE, TISSUE, Anatomy, Drawn, ImageFinding, Mark,
                                           Modality, Overlay, PairFinding, choice, paint_stage,
                                           presence, to_uint8, uniform)
from robustness.data.phantom.settings import Difficulty

SPINE_LEVELS = {"lumbar_spine": ("L1", "L2", "L3", "L4", "L5"),
                "cervical_spine": ("C3", "C4", "C5", "C6", "C7")}
LIMB_BONES = {"forearm": ("radius", "ulna"), "leg": ("tibia", "fibula")}
SOFT = 0.28


@dataclass(frozen=True)
class Vertebra:
    level: str
    cx: float
    cy: float
    hw: float
    hh: float
    tilt: float
    anterior_height: float = 1.0  # fraction of the normal anterior height (wedge compression)

    def body(self, shrink: float = 0.0) -> Quad:
        """The vertebral body; the anterior (image left) side is shortened when compressed."""
        c, s = math.cos(self.tilt), math.sin(self.tilt)
        ha = self.hh * self.anterior_height - shrink
        hp = self.hh - shrink
        w = self.hw - shrink
        local = ((-w, -ha), (w, -hp), (w, hp), (-w, ha))
        return Quad(tuple((self.cx + u * c - v * s, self.cy + u * s + v * c) for u, v in local), edge=1.2)

    def posterior(self, fraction: float) -> Point:
        """A point behind the body (image right), ``fraction`` of a body width past its back wall."""
        c, s = math.cos(self.tilt), math.sin(self.tilt)
        u = self.hw * (1.0 + fraction)
        return self.cx + u * c, self.cy + u * s


@dataclass(frozen=True)
class LongBone:
    name: str
    top: Point
    bottom: Point
    radius: float

    def shaft(self) -> Capsule:
        return Capsule(self.top, self.bottom, self.radius, self.radius * 0.92, edge=1.2)

    def medulla(self) -> Capsule:
        return Capsule(self.top, self.bottom, self.radius * 0.5, self.radius * 0.46, edge=2)

    def head(self) -> Ellipse:
        return Ellipse(self.bottom[0], self.bottom[1] + 0.04, self.radius * 1.7, self.radius * 1.2, edge=1.5)

    def at(self, t: float) -> Point:
        """Point at fraction ``t`` from the top (proximal) to the bottom (distal) of the shaft."""
        return (self.top[0] + t * (self.bottom[0] - self.top[0]), self.top[1] + t * (self.bottom[1] - self.top[1]))

    @property
    def heading(self) -> float:
        return math.atan2(self.bottom[1] - self.top[1], self.bottom[0] - self.top[0])


@dataclass(frozen=True, kw_only=True)
class SkeletalAnatomy(Anatomy):
    body: RoundedRect  # soft-tissue envelope
    vertebrae: tuple[Vertebra, ...] = ()
    bones: tuple[LongBone, ...] = ()
    extras: tuple[tuple[Shape, float], ...] = ()  # (shape, density) of other bony parts
    air: tuple[Shape, ...] = ()  # air columns (trachea) inside the soft tissue
    gain: float = 2.2
    texture: np.ndarray = field(repr=False, compare=False)

    @property
    def is_spine(self) -> bool:
        return self.variant in SPINE_LEVELS

    def vertebra(self, level: str) -> Vertebra:
        return next(v for v in self.vertebrae if v.level == level)

    def bone(self, name: str) -> LongBone:
        return next(b for b in self.bones if b.name == name)


class SkeletalRadiograph(Modality):
    name = "skeletal_radiograph"
    label = "radiograph"
    variants = ("lumbar_spine", "cervical_spine", "forearm", "leg")

    def sample(self, rng: np.random.Generator, grid: Grid, difficulty: Difficulty,
               variant: str) -> SkeletalAnatomy:
        size = grid.size
        common = dict(variant=variant, noise=grain(rng, size, 0.4), noise_sigma=0.018 * difficulty.noise,
                      gain=uniform(rng, 2.0, 2.4), texture=fractal_noise(rng, size, 28, octaves=2))
        if variant in SPINE_LEVELS:
            base = self._spine(rng, variant, common)
        else:
            base = self._limb(rng, variant, common)
        return base.with_overlays(*_distractors(rng, base, difficulty.distractors))

    def _spine(self, rng, variant: str, common: dict) -> SkeletalAnatomy:
        lumbar = variant == "lumbar_spine"
        hw, hh = (0.25, 0.125) if lumbar else (0.18, 0.1)
        step = 2 * hh + (0.085 if lumbar else 0.07)
        x0 = uniform(rng, -0.22, -0.12)
        curve = uniform(rng, 0.05, 0.1) * (1 if lumbar else -1)
        top = -2 * step + uniform(rng, -0.04, 0.04)
        vertebrae = []
        for k, level in enumerate(SPINE_LEVELS[variant]):
            f = (k - 2) / 2
            vertebrae.append(Vertebra(level, x0 + curve * (1 - f * f), top + k * step, hw * uniform(rng, 0.97, 1.03),
                                      hh * uniform(rng, 0.97, 1.03), -0.12 * curve / 0.08 * f))
        extras = []
        for v in vertebrae:  # pedicle, facet and spinous process behind each body
            p = v.posterior(0.15)
            extras.append((Capsule(v.posterior(-0.05), (p[0] + 0.12, p[1]), v.hh * 0.45, v.hh * 0.4, edge=1.5), 0.14))
            extras.append((Ellipse(p[0] + 0.16, p[1] + 0.02, 0.06, v.hh * 0.75, 0.3, edge=1.5), 0.16))
            extras.append((Capsule((p[0] + 0.2, p[1] + 0.02), (p[0] + 0.42, p[1] + 0.12), 0.035, 0.025,
                                   edge=1.5), 0.13))
        last = vertebrae[-1]
        if lumbar:
            sy = last.cy + step * 1.05
            extras.append((Quad(((last.cx - 0.22, sy - 0.08), (last.cx + 0.2, sy - 0.14),
                                 (last.cx + 0.3, sy + 0.3), (last.cx - 0.05, sy + 0.35)), edge=1.5), 0.3))
            body, air = RoundedRect(0.0, 0.0, 1.4, 1.4, edge=4), ()
        else:
            body = RoundedRect(x0 + 0.35, 0.0, 0.85, 1.4, 0.2, edge=4)
            air = (Capsule((x0 - 0.36, -1.1), (x0 - 0.34, 1.1), 0.06, 0.07, edge=3),)
            first = vertebrae[0]  # C2 with the dens above C3
            extras.append((Quad(((first.cx - first.hw, first.cy - step + first.hh),
                                 (first.cx + first.hw, first.cy - step + first.hh),
                                 (first.cx + first.hw, first.cy - step - first.hh * 1.2),
                                 (first.cx - first.hw, first.cy - step - first.hh * 1.2)), edge=1.2), 0.32))
        return SkeletalAnatomy(fov_mm=uniform(rng, 300, 340) if lumbar else uniform(rng, 180, 210),
                               body=body, vertebrae=tuple(vertebrae), extras=tuple(extras), air=air,
                               **common)

    def _limb(self, rng, variant: str, common: dict) -> SkeletalAnatomy:
        names = LIMB_BONES[variant]
        tilt = uniform(rng, -0.06, 0.06)
        gap = uniform(rng, 0.3, 0.36)
        cx = uniform(rng, -0.05, 0.05)
        radii = (0.085, 0.065) if variant == "forearm" else (0.11, 0.05)
        bones = []
        for k, name in enumerate(names):
            x = cx + (k - 0.5) * gap
            bottom_y = uniform(rng, 0.55, 0.62)
            bones.append(LongBone(name, (x + tilt * -1.1, -1.15), (x + tilt * bottom_y, bottom_y),
                                  radii[k] * uniform(rng, 0.95, 1.05)))
        extras = []
        for k in range(4):  # carpal / tarsal bones below the joint
            extras.append((Ellipse(cx + uniform(rng, -0.3, 0.3), uniform(rng, 0.84, 1.0), uniform(rng, 0.07, 0.1),
                                   uniform(rng, 0.05, 0.08), uniform(rng, 0, math.pi), edge=1.5), 0.3))
        body = RoundedRect(cx, 0.0, uniform(rng, 0.5, 0.56), 1.4, 0.1, tilt, edge=4)
        return SkeletalAnatomy(fov_mm=uniform(rng, 260, 300), body=body, bones=tuple(bones),
                               extras=tuple(extras), **common)

    def draw(self, a: SkeletalAnatomy, grid: Grid) -> Drawn:
        size = grid.size
        d = np.zeros((size, size), np.float32)
        a.body.stamp(grid).paint(d, SOFT)
        for column in a.air:
            column.stamp(grid).paint(d, 0.1)
        regions: dict[str, np.ndarray] = {}
        drawn = Drawn(d, regions)
        paint_stage(a, TISSUE, drawn, grid)
        for shape, density in a.extras:
            stamp = shape.stamp(grid)
            if stamp is not None:
                stamp.add(d, density)
        for v in a.vertebrae:
            outer = v.body().stamp(grid)
            outer.add(d, 0.36)
            inner = v.body(shrink=0.018).stamp(grid)
            inner.add(d, -0.12)
            d[inner.rows, inner.cols] += 0.035 * a.texture[inner.rows, inner.cols] * inner.alpha
        for bone in a.bones:
            cover = Union((bone.shaft(), bone.head())).stamp(grid).full(size)
            regions[f"bone_{bone.name}"] = cover
            d += 0.42 * cover
            bone.medulla().stamp(grid).add(d, -0.16)
            bone.head().stamp(grid).add(d, -0.08)
            d += 0.03 * a.texture * cover
        paint_stage(a, BONE, drawn, grid)
        paint_stage(a, DEVICE, drawn, grid)
        return drawn

    def render(self, a: SkeletalAnatomy, drawn: Drawn) -> np.ndarray:
        signal = (1.0 - np.exp(-a.gain * drawn.density)) / (1.0 - math.exp(-a.gain * 0.9))
        signal = np.clip(signal, 0.0, 1.0)
        return to_uint8(signal + a.noise_sigma * a.noise * (0.5 + 0.5 * signal))


def _distractors(rng: np.random.Generator, a: SkeletalAnatomy, count: int) -> list[Overlay]:
    """Bowel gas over a lumbar spine, skin folds, and a nutrient canal (a thin line in one cortex)."""
    out: list[Overlay] = []
    for _ in range(count):
        if a.is_spine:
            kind = choice(rng, ("bowel_gas", "skin_fold"))
        else:
            kind = choice(rng, ("nutrient_canal", "skin_fold"))
        if kind == "bowel_gas":
            cx, cy = uniform(rng, -0.9, -0.6), uniform(rng, -0.8, 0.8)
            out.append(Overlay(Ellipse(cx, cy, uniform(rng, 0.06, 0.12), uniform(rng, 0.04, 0.08),
                                       uniform(rng, 0, math.pi), edge=3), "add", -0.12, TISSUE))
        elif kind == "skin_fold":
            x = uniform(rng, -0.5, 0.5) if a.is_spine else a.body.cx + uniform(rng, -0.45, 0.45)
            pts = tuple((x + 0.04 * math.sin(2.5 * t), -0.9 + 1.6 * t) for t in np.linspace(0, 1, 5))
            out.append(Overlay(Polyline(pts, 0.01, edge=3), "add", 0.04, TISSUE))
        else:
            bone = a.bones[int(rng.integers(len(a.bones)))]
            x, y = bone.at(uniform(rng, 0.35, 0.6))
            side = 1.0 if rng.random() < 0.5 else -1.0
            px = x + side * bone.radius * 0.75
            out.append(Overlay(Capsule((px - side * 0.01, y - 0.03), (px + side * 0.01, y + 0.03), 0.005,
                                       0.005, edge=1), "add", -0.08, BONE))
    return out


# --- findings --------------------------------------------------------------------------------

def _spine_categories(a: SkeletalAnatomy) -> tuple[str, ...]:
    return ("Spinal",) if a.variant == "lumbar_spine" else ("Spinal", "Head and Neck")


def _region_word(a: SkeletalAnatomy) -> str:
    return "lumbar" if a.variant == "lumbar_spine" else "cervical"


def _compress(a: SkeletalAnatomy, level: str, d: Difficulty) -> tuple[SkeletalAnatomy, Mark, float]:
    v = a.vertebra(level)
    loss = min(0.75, 0.45 * d.finding_scale)
    squashed = replace(v, anterior_height=1.0 - loss)
    edited = replace(a, vertebrae=tuple(squashed if x.level == level else x for x in a.vertebrae))
    return edited, Mark(Union((v.body(), squashed.body()))), loss


def _level_slots(a: SkeletalAnatomy, level: str) -> dict[str, str]:
    return {"level": level, "region": _region_word(a)}


def compression_pair(rng, a: SkeletalAnatomy, d: Difficulty) -> PairFinding:
    level = choice(rng, [v.level for v in a.vertebrae])
    edited, mark, loss = _compress(a, level, d)
    zone = "upper" if a.vertebrae.index(a.vertebra(level)) < 2 else "lower"
    where = {"side": "midline", "zone": zone, "level": level, "structure": f"{level} vertebral body"}
    slots = _level_slots(a, level) | {"loss": str(int(round(loss * 100, -1)))}
    return PairFinding("fracture", (
        ImageFinding(edited, "present", "vertebral_compression_fracture", True, (mark,), where, None, slots),
        ImageFinding(a, "absent", "vertebral_compression_fracture", False, (mark,), where, None, slots),
    ), "fracture.vertebra", _spine_categories(a), slots)


def spine_zone_pair(rng, a: SkeletalAnatomy, d: Difficulty) -> PairFinding:
    """A compression fracture at an upper level on one image and at a lower level on the other."""
    levels = [v.level for v in a.vertebrae]
    images = []
    for zone, pool in (("upper", levels[:2]), ("lower", levels[3:])):
        level = choice(rng, pool)
        edited, mark, _ = _compress(a, level, d)
        where = {"side": "midline", "zone": zone, "level": level, "structure": f"{level} vertebral body"}
        images.append(ImageFinding(edited, zone, "vertebral_compression_fracture", True, (mark,), where, None,
                                   _level_slots(a, level)))
    slots = {"region": _region_word(a), "upper_levels": "-".join(levels[:2]),
             "lower_levels": "-".join(levels[3:])}
    return PairFinding("zone", (images[0], images[1]), "zone.spine_fracture", _spine_categories(a), slots)


def _screw(head: Point, tip: Point, radius: float, contrast: float) -> tuple[Overlay, ...]:
    angle = math.atan2(tip[1] - head[1], tip[0] - head[0])
    threads = Striped(Capsule(head, tip, radius, radius * 0.8, edge=1), period=radius * 1.4, angle=angle,
                      duty=0.55)
    core = Capsule(head, tip, radius * 0.55, radius * 0.45, edge=1)
    cap = Ellipse(head[0], head[1], radius * 1.6, radius * 2.0, angle, edge=1)
    return (Overlay(threads, "add", 0.9 * contrast, DEVICE), Overlay(core, "add", 1.0 * contrast, DEVICE),
            Overlay(cap, "add", 1.1 * contrast, DEVICE))


def spine_screw_pair(rng, a: SkeletalAnatomy, d: Difficulty) -> PairFinding:
    """Posterior fixation (pedicle screws at two adjacent levels joined by a rod) versus none."""
    k = int(rng.integers(0, len(a.vertebrae) - 1))
    overlays: list[Overlay] = []
    heads = []
    s = d.finding_scale
    for v in a.vertebrae[k:k + 2]:
        head = v.posterior(0.9)
        tip = (v.cx - v.hw * 0.45, v.cy + uniform(rng, -0.02, 0.02))
        overlays += _screw(head, tip, 0.022 * s, d.contrast)
        heads.append(head)
    rod = Capsule((heads[0][0] + 0.02, heads[0][1] - 0.06), (heads[1][0] + 0.02, heads[1][1] + 0.06),
                  0.014 * s, 0.014 * s, edge=1)
    overlays.append(Overlay(rod, "add", 1.0 * d.contrast, DEVICE))
    levels = f"{a.vertebrae[k].level}-{a.vertebrae[k + 1].level}"
    where = {"side": "midline", "zone": "upper" if k < 2 else "lower", "level": levels,
             "structure": "posterior elements"}
    return presence("device", a, tuple(overlays), tuple(Mark(o.shape) for o in overlays), "pedicle_screws",
                    "device.pedicle_screws", _spine_categories(a), location=where, size_mm=None,
                    slots={"level": levels, "region": _region_word(a)})


def _fracture_line(rng, bone: LongBone, t: float, d: Difficulty) -> tuple[Overlay, Mark]:
    """A lucent, slightly jagged line across the whole shaft at fraction ``t`` (transverse or oblique)."""
    cx, cy = bone.at(t)
    across = bone.heading + math.pi / 2 + uniform(rng, -0.5, 0.5)
    half = bone.radius * 1.5
    pts = []
    for f in np.linspace(-1, 1, 5):
        jitter = uniform(rng, -0.012, 0.012) if abs(f) < 1 else 0.0
        pts.append((cx + f * half * math.cos(across) - jitter * math.sin(across),
                    cy + f * half * math.sin(across) + jitter * math.cos(across)))
    line = Polyline(tuple(pts), 0.012 * d.finding_scale, edge=1.0)
    value = 0.42 * (1 - min(d.contrast, 1.0)) + SOFT
    return Overlay(line, "paint", value, BONE, clip=f"bone_{bone.name}"), Mark(line, clip=f"bone_{bone.name}")


THIRDS = {"proximal": (0.2, 0.3), "middle": (0.42, 0.55), "distal": (0.68, 0.78)}


def limb_fracture_pair(rng, a: SkeletalAnatomy, d: Difficulty) -> PairFinding:
    bone = a.bones[int(rng.integers(len(a.bones)))]
    third = choice(rng, tuple(THIRDS))
    overlay, mark = _fracture_line(rng, bone, uniform(rng, *THIRDS[third]), d)
    where = {"side": None, "zone": third, "structure": f"{bone.name} shaft"}
    return presence("fracture", a, (overlay,), (mark,), "long_bone_fracture", "fracture.limb",
                    ("Musculoskeletal",), location=where, size_mm=None,
                    slots={"bone": bone.name, "third": third, "limb": a.variant})


def limb_zone_pair(rng, a: SkeletalAnatomy, d: Difficulty) -> PairFinding:
    """A fracture of the same bone in its proximal third on one image and its distal third on the other."""
    bone = a.bones[int(rng.integers(len(a.bones)))]
    images = []
    shape_seed = int(rng.integers(2**31))
    for third in ("proximal", "distal"):
        sub = np.random.default_rng(shape_seed)
        lo, hi = THIRDS[third]
        overlay, mark = _fracture_line(sub, bone, lo + (hi - lo) * float(rng.random()), d)
        where = {"side": None, "zone": third, "structure": f"{bone.name} shaft"}
        images.append(ImageFinding(a.with_overlays(overlay), third, "long_bone_fracture", True, (mark,), where,
                                   None, {"bone": bone.name, "third": third, "limb": a.variant}))
    return PairFinding("zone", (images[0], images[1]), "zone.limb_fracture", ("Musculoskeletal",),
                       {"bone": bone.name, "limb": a.variant})


def limb_screw_pair(rng, a: SkeletalAnatomy, d: Difficulty) -> PairFinding:
    """Two or three cortical screws across one bone, versus none."""
    bone = a.bones[0]
    t0 = uniform(rng, 0.3, 0.5)
    count = int(rng.integers(2, 4))
    overlays: list[Overlay] = []
    side = 1.0 if rng.random() < 0.5 else -1.0
    for j in range(count):
        cx, cy = bone.at(t0 + 0.12 * j)
        across = bone.heading + math.pi / 2 + uniform(rng, -0.2, 0.2)
        reach = bone.radius * 1.35
        head = (cx + side * reach * math.cos(across), cy + side * reach * math.sin(across))
        tip = (cx - side * reach * math.cos(across), cy - side * reach * math.sin(across))
        overlays += _screw(head, tip, 0.018 * d.finding_scale, d.contrast)
    where = {"side": None, "zone": "middle", "structure": f"{bone.name} shaft"}
    return presence("device", a, tuple(overlays), tuple(Mark(o.shape) for o in overlays), "cortical_screws",
                    "device.cortical_screws", ("Musculoskeletal",), location=where, size_mm=None,
                    slots={"bone": bone.name, "limb": a.variant})
