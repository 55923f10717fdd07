"""Head CT (axial slice at the level of the lateral ventricles), in Hounsfield units, brain window.

Anterior is at the top of the image; radiological convention puts the patient's left on the
image right. Skull and metal saturate to white in the brain window, air is black.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from robustness.data.phantom.canvas import (Capsule, Ellipse, Grid, Polyline, Ring, Union,
                                            fractal_noise, grain, smoothstep)
from robustness.data.phantom.scene import (BONE, DEVICE, TISSUE, Anatomy, Drawn, ImageFinding, Mark,
                                           Modality, Overlay, PairFinding, choice, paint_stage,
                                           presence, size_mm, to_uint8, uniform, window)
from robustness.data.phantom.settings import Difficulty

SIDES = ("right", "left")
LOBES = {"anterior": "frontal", "posterior": "parieto-occipital"}

GREY, WHITE, CSF, BONE_HU, SCALP = 38.0, 27.0, 6.0, 1100.0, 35.0


@dataclass(frozen=True, kw_only=True)
class HeadAnatomy(Anatomy):
    cx: float
    cy: float
    rx: float  # outer skull radii
    ry: float
    thickness: float  # skull thickness
    angle: float
    ventricles: tuple[Ellipse, ...]
    level: float  # window level / width
    width: float
    white: np.ndarray = field(repr=False, compare=False)  # grey/white matter boundary field
    sulci: np.ndarray = field(repr=False, compare=False)
    texture: np.ndarray = field(repr=False, compare=False)

    def brain(self) -> Ellipse:
        t = self.thickness
        return Ellipse(self.cx, self.cy, self.rx - t, self.ry - t, self.angle, edge=1.2)

    def skull(self) -> Ring:
        t = self.thickness
        return Ring(self.cx, self.cy, self.rx - t / 2, self.ry - t / 2, t, self.angle, edge=1.0)

    def scalp(self) -> Ellipse:
        return Ellipse(self.cx, self.cy, self.rx + 0.04, self.ry + 0.04, self.angle, edge=1.5)

    def point(self, fx: float, fy: float) -> tuple[float, float]:
        """A point at fractions (fx, fy) of the brain radii, in image coordinates."""
        b = self.brain()
        c, s = math.cos(self.angle), math.sin(self.angle)
        u, v = fx * b.rx, fy * b.ry
        return self.cx + u * c - v * s, self.cy + u * s + v * c


class HeadCT(Modality):
    name = "head_ct"
    label = "head CT"
    variants = ("axial",)

    def sample(self, rng: np.random.Generator, grid: Grid, difficulty: Difficulty,
               variant: str) -> HeadAnatomy:
        size = grid.size
        cx, cy = uniform(rng, -0.03, 0.03), uniform(rng, -0.01, 0.04)
        angle = uniform(rng, -0.06, 0.06)
        spread = uniform(rng, 0.075, 0.095)
        vy = uniform(rng, -0.08, -0.02)
        ventricles = []
        for s in (-1.0, 1.0):
            ventricles.append(Ellipse(cx + s * spread, cy + vy, 0.045, uniform(rng, 0.19, 0.23),
                                      s * 0.18 + angle, edge=1.2))
            ventricles.append(Ellipse(cx + s * (spread + 0.05), cy + vy + 0.22, 0.04, 0.07,
                                      -s * 0.5 + angle, edge=1.2))
        base = HeadAnatomy(
            variant=variant, fov_mm=uniform(rng, 230, 250),
            noise=grain(rng, size, 0.6), noise_sigma=3.0 * difficulty.noise,
            cx=cx, cy=cy, rx=uniform(rng, 0.74, 0.8), ry=uniform(rng, 0.88, 0.92),
            thickness=uniform(rng, 0.05, 0.06), angle=angle, ventricles=tuple(ventricles),
            level=uniform(rng, 36, 44), width=uniform(rng, 80, 90),
            white=fractal_noise(rng, size, 5, octaves=2),
            sulci=fractal_noise(rng, size, 9, octaves=2, persistence=0.4),
            texture=fractal_noise(rng, size, 24, octaves=2),
        )
        return base.with_overlays(*_distractors(rng, base, difficulty.distractors))

    def draw(self, a: HeadAnatomy, grid: Grid) -> Drawn:
        size = grid.size
        d = np.full((size, size), -1000.0, np.float32)
        a.scalp().stamp(grid).paint(d, SCALP)
        brain = a.brain()
        brain_cover = brain.stamp(grid).full(size)
        x, y = grid.full()
        c, s = math.cos(a.angle), math.sin(a.angle)
        u, v = (x - a.cx) * c + (y - a.cy) * s, -(x - a.cx) * s + (y - a.cy) * c
        radius = np.sqrt((u / brain.rx) ** 2 + (v / brain.ry) ** 2)
        white = smoothstep(0.0, 0.12, 0.72 - radius + 0.08 * a.white)
        tissue = GREY + (WHITE - GREY) * white + 1.5 * a.texture
        cortex_band = smoothstep(0.8, 0.95, radius)
        sulci = cortex_band * np.exp(-(a.sulci / 0.12) ** 2)
        tissue = tissue + (CSF - tissue) * sulci
        d += brain_cover * (tissue - d)
        regions = {"brain": brain_cover}
        for ventricle in a.ventricles:
            ventricle.stamp(grid).paint(d, CSF)
        top, bottom = a.point(0.0, -1.0), a.point(0.0, 1.0)
        Capsule(top, (a.cx, a.cy - 0.3), 0.01, 0.006, edge=1).stamp(grid).paint(d, 50.0)
        Capsule((a.cx, a.cy + 0.35), bottom, 0.006, 0.01, edge=1).stamp(grid).paint(d, 50.0)
        drawn = Drawn(d, regions)
        paint_stage(a, TISSUE, drawn, grid)
        skull = a.skull().stamp(grid)
        regions["skull"] = skull.full(size)
        skull.paint(d, BONE_HU)
        paint_stage(a, BONE, drawn, grid)
        paint_stage(a, DEVICE, drawn, grid)
        return drawn

    def render(self, a: HeadAnatomy, drawn: Drawn) -> np.ndarray:
        return to_uint8(window(drawn.density + a.noise_sigma * a.noise, a.level, a.width))


def _distractors(rng: np.random.Generator, a: HeadAnatomy, count: int) -> list[Overlay]:
    """Normal variants: frontal sinus air, a cavum septum pellucidum, scalp fat; beyond two
    distractors, physiological choroid plexus calcifications (inside the ventricles) join in."""
    out: list[Overlay] = []
    pool = ("frontal_sinus", "cavum_septum", "scalp_fat") + (("choroid_calcification",) if count > 2 else ())
    for _ in range(count):
        kind = choice(rng, pool)
        if kind == "frontal_sinus":
            px, py = a.point(0.0, -1.0)
            for s in (-1.0, 1.0):
                shape = Ellipse(px + s * uniform(rng, 0.03, 0.05), py - a.thickness * 0.5,
                                uniform(rng, 0.025, 0.04), a.thickness * 0.35, edge=1)
                out.append(Overlay(shape, "paint", -700.0, BONE, clip="skull"))
        elif kind == "choroid_calcification":
            for horn in a.ventricles[1::2]:  # the posterior horns (atria)
                out.append(Overlay(Ellipse(horn.cx, horn.cy, 0.016, 0.016, edge=1), "paint", 180.0, TISSUE))
        elif kind == "cavum_septum":
            px, py = a.point(0.0, uniform(rng, -0.2, -0.05))
            out.append(Overlay(Ellipse(px, py, 0.014, 0.09, a.angle, edge=1), "paint", CSF, TISSUE))
        else:
            theta = uniform(rng, 0, 2 * math.pi)
            px = a.cx + (a.rx + 0.02) * math.cos(theta)
            py = a.cy + (a.ry + 0.02) * math.sin(theta)
            out.append(Overlay(Ellipse(px, py, 0.05, 0.016, theta + math.pi / 2, edge=1.5), "paint",
                               -90.0, TISSUE))
    return out


# --- findings --------------------------------------------------------------------------------

def _site(rng: np.random.Generator, a: HeadAnatomy, side: str, region: str) -> tuple[float, float]:
    """A parenchymal point in one hemisphere, anterior or posterior, clear of the ventricles."""
    fx = (1.0 if side == "left" else -1.0) * uniform(rng, 0.42, 0.56)
    fy = uniform(rng, 0.25, 0.45) * (-1.0 if region == "anterior" else 1.0)
    return a.point(fx, fy)


def _hemorrhage(rng: np.random.Generator, a: HeadAnatomy, d: Difficulty, cx: float, cy: float,
                kind: str = "hemorrhage") -> tuple[tuple[Overlay, ...], Mark, float]:
    """A hyperdense clot with a rim of hypodense oedema (or, for ``infarct``, a hypodense area)."""
    r = 0.075 * d.finding_scale * uniform(rng, 0.9, 1.15)
    angle = uniform(rng, 0, math.pi)
    if kind == "infarct":
        core = Ellipse(cx, cy, r * 1.3, r, angle, edge=3)
        value = GREY - 20.0 * d.contrast
        return (Overlay(core, "paint", value, TISSUE, clip="brain"),), Mark(core, clip="brain"), 2.6 * r
    parts = (Ellipse(cx, cy, r, r * 0.8, angle, edge=1.5),
             Ellipse(cx + 0.4 * r * math.cos(angle + 1), cy + 0.4 * r * math.sin(angle + 1),
                     r * 0.7, r * 0.55, angle + 0.8, edge=1.5))
    oedema = Ellipse(cx, cy, r * 1.55, r * 1.4, angle, edge=3)
    clot = Union(parts)
    overlays = (Overlay(oedema, "paint", GREY - 12.0 * d.contrast, TISSUE, clip="brain"),
                Overlay(clot, "paint", GREY + 34.0 * d.contrast, TISSUE, clip="brain"))
    return overlays, Mark(oedema, clip="brain"), 2 * r


def hemorrhage_pair(rng, a: HeadAnatomy, d: Difficulty) -> PairFinding:
    side, region = choice(rng, SIDES), choice(rng, tuple(LOBES))
    cx, cy = _site(rng, a, side, region)
    overlays, mark, diameter = _hemorrhage(rng, a, d, cx, cy)
    zone = region
    return presence("hemorrhage", a, overlays, (mark,), "intraparenchymal_hemorrhage",
                    "hemorrhage.head", ("Cerebral",),
                    location={"side": side, "zone": zone, "structure": f"{side} {LOBES[region]} lobe"},
                    size_mm=size_mm(diameter, a),
                    slots={"side": side, "lobe": LOBES[region], "size": str(int(size_mm(diameter, a)))})


def laterality_pair(rng, a: HeadAnatomy, d: Difficulty) -> PairFinding:
    """The same haemorrhage in the right hemisphere on one image and mirrored to the left on the other."""
    region = choice(rng, tuple(LOBES))
    fx = uniform(rng, 0.42, 0.56)
    fy = uniform(rng, 0.25, 0.45) * (-1.0 if region == "anterior" else 1.0)
    shape_seed = int(rng.integers(2**31))  # the same clot on both sides
    images = []
    for side in SIDES:
        cx, cy = a.point(fx if side == "left" else -fx, fy)
        overlays, mark, diameter = _hemorrhage(np.random.default_rng(shape_seed), a, d, cx, cy)
        where = {"side": side, "zone": region,
                 "structure": f"{side} {LOBES[region]} lobe"}
        images.append(ImageFinding(a.with_overlays(*overlays), side, "intraparenchymal_hemorrhage", True,
                                   (mark,), where, size_mm(diameter, a),
                                   {"side": side, "lobe": LOBES[region]}))
    return PairFinding("laterality", (images[0], images[1]), "laterality.head_hemorrhage", ("Cerebral",),
                       {"lobe": LOBES[region]})


def calcification_pair(rng, a: HeadAnatomy, d: Difficulty) -> PairFinding:
    side, region = choice(rng, SIDES), choice(rng, tuple(LOBES))
    cx, cy = _site(rng, a, side, region)
    r = 0.026 * d.finding_scale * uniform(rng, 0.95, 1.15)
    shape = Ellipse(cx, cy, r, r * 0.9, uniform(rng, 0, math.pi), edge=1)
    overlay = Overlay(shape, "paint", GREY + 400.0 * d.contrast, TISSUE)
    return presence("calcification", a, (overlay,), (Mark(shape),), "parenchymal_calcification",
                    "calcification.head", ("Cerebral",),
                    location={"side": side, "zone": region,
                              "structure": f"{side} {LOBES[region]} lobe"},
                    size_mm=size_mm(2 * r, a),
                    slots={"side": side, "lobe": LOBES[region], "size": str(int(size_mm(2 * r, a)))})


def fracture_pair(rng, a: HeadAnatomy, d: Difficulty) -> PairFinding:
    """A linear skull fracture (a lucent gap through the calvarium) with a small scalp haematoma."""
    side = choice(rng, SIDES)
    sign = 1.0 if side == "left" else -1.0
    theta = uniform(rng, -0.9, 0.6)  # angle from the lateral direction
    direction = (sign * math.cos(theta), math.sin(theta))

    def on_ellipse(scale: float, jitter: float = 0.0) -> tuple[float, float]:
        t = theta + jitter
        return (a.cx + sign * math.cos(t) * a.rx * scale, a.cy + math.sin(t) * a.ry * scale)

    inner = 1.0 - a.thickness / a.rx
    pts = (on_ellipse(1.04), on_ellipse(1.0 - 0.3 * a.thickness / a.rx, uniform(rng, -0.025, 0.025)),
           on_ellipse(1.0 - 0.65 * a.thickness / a.rx, uniform(rng, -0.025, 0.025)),
           on_ellipse(inner - 0.03))
    gap = Polyline(pts, 0.017 * d.finding_scale, edge=1.0)
    hx, hy = on_ellipse(1.05)
    hematoma = Ellipse(hx, hy, 0.035 * d.finding_scale, 0.11 * d.finding_scale,
                       math.atan2(direction[1], direction[0]), edge=2)
    overlays = (Overlay(gap, "paint", 30.0 + 30.0 * (1.0 - min(d.contrast, 1.0)), BONE, clip="skull"),
                Overlay(hematoma, "max", SCALP + 20.0 * d.contrast, BONE))
    zone = "anterior" if theta < -0.35 else "lateral"
    return presence("fracture", a, overlays, (Mark(gap, clip="skull"), Mark(hematoma)), "skull_fracture",
                    "fracture.skull", ("Cerebral", "Head and Neck"),
                    location={"side": side, "zone": zone, "structure": f"{side} calvarium"},
                    size_mm=None, slots={"side": side})


def normality_pair(rng, a: HeadAnatomy, d: Difficulty) -> PairFinding:
    """A normal head CT versus one with a haemorrhage or a hypodense infarct."""
    kind = choice(rng, ("hemorrhage", "infarct"))
    side, region = choice(rng, SIDES), choice(rng, tuple(LOBES))
    cx, cy = _site(rng, a, side, region)
    overlays, mark, diameter = _hemorrhage(rng, a, d, cx, cy, kind)
    name = "intraparenchymal_hemorrhage" if kind == "hemorrhage" else "infarct"
    where = {"side": side, "zone": region,
             "structure": f"{side} {LOBES[region]} lobe"}
    slots = {"side": side, "lobe": LOBES[region]}
    abnormal = ImageFinding(a.with_overlays(*overlays), "abnormal", name, True, (mark,), where,
                            size_mm(diameter, a), slots)
    normal = ImageFinding(a, "normal", name, False, (mark,), where, None, {})
    return PairFinding("normality", (abnormal, normal), "normality.head", ("Cerebral",))
