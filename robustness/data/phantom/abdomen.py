"""Abdominal CT (axial, portal venous phase), in Hounsfield units, soft-tissue window.

Anterior is at the top; radiological convention puts the patient's right (liver, gallbladder) on
the image left and the spleen on the image right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from robustness.data.phantom.canvas import Ellipse, Grid, Ring, Union, fractal_noise, grain
from robustness.data.phantom.scene import (BONE, DEVICE, TISSUE, Anatomy, Drawn, ImageFinding, Mark,
                                           Modality, Overlay, PairFinding, choice, paint_stage,
                                           presence, size_mm, to_uint8, uniform, window)
from robustness.data.phantom.settings import Difficulty

SIDES = ("right", "left")
FAT, MUSCLE, LIVER, SPLEEN, KIDNEY, FLUID, BONE_HU, AORTA = -100.0, 50.0, 105.0, 110.0, 150.0, 8.0, 700.0, 170.0


@dataclass(frozen=True, kw_only=True)
class AbdomenAnatomy(Anatomy):
    body: Ellipse
    wall: Ring
    liver: tuple[Ellipse, ...]
    spleen: Ellipse
    kidneys: dict[str, Ellipse]  # keyed by patient side
    gallbladder: Ellipse
    vertebra: Ellipse
    canal: Ellipse
    psoas: tuple[Ellipse, ...]
    aorta: Ellipse
    ivc: Ellipse
    bowel: tuple[tuple[Ellipse, float], ...]  # loops with their content (HU)
    ribs: tuple[Ellipse, ...]
    level: float
    width: float
    texture: np.ndarray = field(repr=False, compare=False)

    def liver_shape(self) -> Union:
        return Union(self.liver)


class AbdominalCT(Modality):
    name = "abdominal_ct"
    label = "abdominal CT"
    variants = ("axial",)

    def sample(self, rng: np.random.Generator, grid: Grid, difficulty: Difficulty,
               variant: str) -> AbdomenAnatomy:
        size = grid.size
        cy = uniform(rng, 0.0, 0.06)
        rx, ry = uniform(rng, 0.86, 0.93), uniform(rng, 0.62, 0.7)
        liver = (Ellipse(-0.42, cy - 0.08, uniform(rng, 0.36, 0.4), uniform(rng, 0.36, 0.42), -0.3, edge=1.5),
                 Ellipse(-0.12, cy - 0.28, 0.22, 0.14, 0.2, edge=1.5))
        kidneys = {s: Ellipse(sign * uniform(rng, 0.3, 0.34), cy + 0.3, uniform(rng, 0.09, 0.11),
                              uniform(rng, 0.13, 0.15), sign * 0.45, edge=1.2)
                   for s, sign in (("right", -1.0), ("left", 1.0))}
        bowel = []
        for _ in range(int(rng.integers(6, 10))):
            content = choice(rng, (FLUID + 20, -1000.0, 30.0))
            bowel.append((Ellipse(uniform(rng, -0.05, 0.6), cy + uniform(rng, -0.45, 0.05), uniform(rng, 0.05, 0.09),
                                  uniform(rng, 0.04, 0.07), uniform(rng, 0, math.pi), edge=1.5), content))
        ribs = tuple(Ellipse(s * (rx - 0.13) * math.cos(t), cy + (ry - 0.13) * math.sin(t), 0.03, 0.022,
                             t, edge=1) for s in (-1, 1) for t in (-0.1, 0.4))
        base = AbdomenAnatomy(
            variant=variant, fov_mm=uniform(rng, 340, 380),
            noise=grain(rng, size, 0.6), noise_sigma=9.0 * difficulty.noise,
            body=Ellipse(0.0, cy, rx, ry, edge=1.5),
            wall=Ring(0.0, cy, rx - 0.07, ry - 0.07, 0.035, edge=1.5),
            liver=liver,
            spleen=Ellipse(0.56, cy + 0.08, uniform(rng, 0.12, 0.15), uniform(rng, 0.18, 0.22), 0.6, edge=1.5),
            kidneys=kidneys,
            gallbladder=Ellipse(-0.26, cy + 0.12, uniform(rng, 0.06, 0.075), uniform(rng, 0.08, 0.1), 0.3, edge=1.2),
            vertebra=Ellipse(0.0, cy + 0.38, 0.12, 0.11, edge=1.2),
            canal=Ellipse(0.0, cy + 0.53, 0.045, 0.04, edge=1),
            psoas=(Ellipse(-0.17, cy + 0.4, 0.06, 0.08, edge=1.5), Ellipse(0.17, cy + 0.4, 0.06, 0.08, edge=1.5)),
            aorta=Ellipse(0.04, cy + 0.2, 0.05, 0.05, edge=1),
            ivc=Ellipse(-0.1, cy + 0.2, 0.055, 0.04, edge=1),
            bowel=tuple(bowel), ribs=ribs,
            level=uniform(rng, 35, 50), width=uniform(rng, 350, 420),
            texture=fractal_noise(rng, size, 12, octaves=3),
        )
        return base.with_overlays(*_distractors(rng, base, difficulty.distractors))

    def draw(self, a: AbdomenAnatomy, grid: Grid) -> Drawn:
        size = grid.size
        d = np.full((size, size), -1000.0, np.float32)
        a.body.stamp(grid).paint(d, FAT)
        a.wall.stamp(grid).paint(d, MUSCLE)
        inner = Ellipse(a.body.cx, a.body.cy, a.body.rx - 0.1, a.body.ry - 0.1, edge=3).stamp(grid)
        inner.paint(d, -60.0)
        regions: dict[str, np.ndarray] = {}
        for shape, value in ((a.liver_shape(), LIVER), (a.spleen, SPLEEN)):
            stamp = shape.stamp(grid)
            stamp.paint(d, value)
            d[stamp.rows, stamp.cols] += 4.0 * a.texture[stamp.rows, stamp.cols] * stamp.alpha
        regions["liver"] = a.liver_shape().stamp(grid).full(size)
        for side, kidney in a.kidneys.items():
            stamp = kidney.stamp(grid)
            stamp.paint(d, KIDNEY)
            regions[f"kidney_{side}"] = stamp.full(size)
            sinus = Ellipse(kidney.cx * 0.8, kidney.cy, kidney.rx * 0.35, kidney.ry * 0.45, kidney.angle, edge=2)
            sinus.stamp(grid).paint(d, -40.0)
        gb = a.gallbladder.stamp(grid)
        gb.paint(d, FLUID)
        regions["gallbladder"] = gb.full(size)
        for loop, content in a.bowel:
            Ellipse(loop.cx, loop.cy, loop.rx + 0.012, loop.ry + 0.012, loop.angle, edge=1).stamp(grid).paint(d, 45.0)
            loop.stamp(grid).paint(d, content)
        for shape, value in ((a.aorta, AORTA), (a.ivc, AORTA - 30.0), (a.psoas[0], MUSCLE), (a.psoas[1], MUSCLE)):
            shape.stamp(grid).paint(d, value)
        drawn = Drawn(d, regions)
        paint_stage(a, TISSUE, drawn, grid)
        a.vertebra.stamp(grid).paint(d, BONE_HU)
        Ellipse(a.vertebra.cx, a.vertebra.cy, a.vertebra.rx - 0.02, a.vertebra.ry - 0.02, edge=2).stamp(grid).paint(d, 250.0)
        a.canal.stamp(grid).paint(d, 20.0)
        for rib in a.ribs:
            rib.stamp(grid).paint(d, BONE_HU)
        paint_stage(a, BONE, drawn, grid)
        paint_stage(a, DEVICE, drawn, grid)
        return drawn

    def render(self, a: AbdomenAnatomy, drawn: Drawn) -> np.ndarray:
        return to_uint8(window(drawn.density + a.noise_sigma * a.noise, a.level, a.width))


def _distractors(rng: np.random.Generator, a: AbdomenAnatomy, count: int) -> list[Overlay]:
    """Gas bubbles in bowel loops, a small fluid-filled loop, a skin-fold crease; beyond two
    distractors, dense oral contrast in a bowel loop joins in as a look-alike of a calculus."""
    out: list[Overlay] = []
    pool = ("gas", "fluid_loop", "skin_crease") + (("oral_contrast",) if count > 2 else ())
    for _ in range(count):
        kind = choice(rng, pool)
        if kind == "oral_contrast":
            cx, cy = uniform(rng, 0.05, 0.5), a.body.cy + uniform(rng, -0.45, -0.2)
            out.append(Overlay(Ellipse(cx, cy, 0.03, 0.025, uniform(rng, 0, math.pi), edge=1.5), "paint",
                               300.0, TISSUE))
        elif kind in ("gas", "fluid_loop"):
            cx, cy = uniform(rng, 0.0, 0.5), a.body.cy + uniform(rng, -0.5, -0.2)
            r = uniform(rng, 0.025, 0.04) if kind == "gas" else uniform(rng, 0.05, 0.07)
            out.append(Overlay(Ellipse(cx, cy, r, r * 0.8, uniform(rng, 0, math.pi), edge=1), "paint",
                               -1000.0 if kind == "gas" else FLUID + 15, TISSUE))
        else:
            t = uniform(rng, -2.6, -0.6)
            cx = a.body.cx + (a.body.rx - 0.02) * math.cos(t)
            cy = a.body.cy + (a.body.ry - 0.02) * math.sin(t)
            out.append(Overlay(Ellipse(cx, cy, 0.05, 0.01, t + math.pi / 2, edge=1), "paint", -1000.0, BONE))
    return out


# --- findings --------------------------------------------------------------------------------

def mass_pair(rng, a: AbdomenAnatomy, d: Difficulty) -> PairFinding:
    """A hypodense liver lesion, versus none."""
    lobe = a.liver[0]
    cx = lobe.cx + uniform(rng, -0.35, 0.1) * lobe.rx
    cy = lobe.cy + uniform(rng, -0.45, 0.2) * lobe.ry
    r = 0.075 * d.finding_scale * uniform(rng, 0.9, 1.15)
    shape = Ellipse(cx, cy, r, r * uniform(rng, 0.8, 1.0), uniform(rng, 0, math.pi), edge=2)
    overlay = Overlay(shape, "paint", LIVER - 60.0 * d.contrast, TISSUE, clip="liver")
    zone = "upper" if cy < lobe.cy else "lower"
    return presence("mass", a, (overlay,), (Mark(shape, clip="liver"),), "liver_mass", "mass.liver",
                    ("Gastrointestinal",),
                    location={"side": "right", "zone": zone, "structure": "liver"},
                    size_mm=size_mm(2 * r, a), slots={"size": str(int(size_mm(2 * r, a)))})


def _stone(rng, a: AbdomenAnatomy, d: Difficulty, where: str) -> tuple[Overlay, Mark, float]:
    """A dense calculus in the gallbladder or in one kidney's collecting system."""
    organ = a.gallbladder if where == "gallbladder" else a.kidneys[where]
    if where == "gallbladder":
        cx, cy = organ.cx + uniform(rng, -0.2, 0.2) * organ.rx, organ.cy + 0.35 * organ.ry
    else:
        cx, cy = organ.cx * 0.85, organ.cy + uniform(rng, -0.25, 0.25) * organ.ry
    r = 0.03 * d.finding_scale * uniform(rng, 0.95, 1.15)
    shape = Ellipse(cx, cy, r, r * uniform(rng, 0.8, 1.0), uniform(rng, 0, math.pi), edge=1)
    return Overlay(shape, "paint", 150.0 + 650.0 * d.contrast, TISSUE), Mark(shape), 2 * r


def calcification_pair(rng, a: AbdomenAnatomy, d: Difficulty) -> PairFinding:
    """A gallstone or a renal calculus, versus none."""
    where = choice(rng, ("gallbladder", "right", "left"))
    overlay, mark, diameter = _stone(rng, a, d, where)
    if where == "gallbladder":
        name, key, structure, side = "gallstone", "calcification.gallstone", "gallbladder", "right"
    else:
        name, key, structure, side = "renal_calculus", "calcification.renal", f"{where} kidney", where
    return presence("calcification", a, (overlay,), (mark,), name, key, ("Gastrointestinal",),
                    location={"side": side, "zone": "middle", "structure": structure},
                    size_mm=size_mm(diameter, a),
                    slots={"side": side, "size": str(int(size_mm(diameter, a)))})


def laterality_pair(rng, a: AbdomenAnatomy, d: Difficulty) -> PairFinding:
    """A renal calculus in the right kidney on one image and in the left kidney on the other."""
    shape_seed = int(rng.integers(2**31))
    images = []
    for side in SIDES:
        overlay, mark, diameter = _stone(np.random.default_rng(shape_seed), a, d, side)
        images.append(ImageFinding(a.with_overlays(overlay), side, "renal_calculus", True, (mark,),
                                   {"side": side, "zone": "middle", "structure": f"{side} kidney"},
                                   size_mm(diameter, a), {"side": side}))
    return PairFinding("laterality", (images[0], images[1]), "laterality.renal_calculus",
                       ("Gastrointestinal",))


def normality_pair(rng, a: AbdomenAnatomy, d: Difficulty) -> PairFinding:
    """A normal abdominal CT versus one with a liver lesion or a renal calculus."""
    inner = mass_pair(rng, a, d) if rng.random() < 0.5 else calcification_pair(rng, a, d)
    present, absent = inner.images
    return PairFinding("normality", (replace(present, answer="abnormal"), replace(absent, answer="normal")),
                       "normality.abdomen", ("Gastrointestinal",))
