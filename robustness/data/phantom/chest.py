"""Chest radiograph (PA): torso, lungs with vascular markings, heart, mediastinum, ribs, clavicles.

Density is attenuation along the beam (0 = air); the detector response ``1 - exp(-gain * d)``
makes lungs dark and bone, heart and metal bright. Radiological convention: the patient's left
is on the image right, so the heart bulges to the image right and a pacemaker sits there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from robustness.data.phantom.canvas import (Capsule, Ellipse, Grid, Polyline, RoundedRect, Ring,
                                            Union, fractal_noise, grain)
from robustness.data.phantom.scene import (BONE, DEVICE, TISSUE, Anatomy, Drawn, ImageFinding, Mark,
                                           Modality, Overlay, PairFinding, choice, paint_stage,
                                           presence, size_mm, to_uint8, uniform)
from robustness.data.phantom.settings import Difficulty

SIDES = ("right", "left")  # patient sides; right lung is on the image left


@dataclass(frozen=True, kw_only=True)
class ChestAnatomy(Anatomy):
    torso: Ellipse
    lungs: dict[str, Ellipse]  # keyed by patient side
    heart: Ellipse
    heart_scale: float = 1.0
    mediastinum: RoundedRect
    trachea: Capsule
    spine: RoundedRect
    ribs: tuple[Polyline, ...]
    anterior_ribs: tuple[Polyline, ...]
    clavicles: tuple[Polyline, ...]
    shoulders: tuple[Ellipse, ...]
    girdle: RoundedRect  # neck and shoulders
    domes: dict[str, Ellipse]  # hemidiaphragms, keyed by patient side
    gain: float
    markings: np.ndarray = field(repr=False, compare=False)
    mottle: np.ndarray = field(repr=False, compare=False)


def image_x(side: str) -> float:
    """Sign of the image x for a patient side (radiological convention)."""
    return 1.0 if side == "left" else -1.0


def heart_shape(anatomy: ChestAnatomy, scale: float | None = None) -> Ellipse:
    """The cardiac silhouette; enlargement grows it towards the patient's left and down."""
    s = anatomy.heart_scale if scale is None else scale
    h = anatomy.heart
    return replace(h, cx=h.cx + (s - 1.0) * 0.45 * h.rx, cy=h.cy + (s - 1.0) * 0.25 * h.ry,
                   rx=h.rx * s, ry=h.ry * s)


class ChestRadiograph(Modality):
    name = "chest_radiograph"
    label = "chest radiograph"
    variants = ("pa",)

    def sample(self, rng: np.random.Generator, grid: Grid, difficulty: Difficulty,
               variant: str) -> ChestAnatomy:
        size = grid.size
        shift = uniform(rng, -0.03, 0.03)
        lung_rx, lung_ry = uniform(rng, 0.31, 0.34), uniform(rng, 0.6, 0.65)
        lungs = {
            "right": Ellipse(-0.39 + shift, -0.02, lung_rx, lung_ry, uniform(rng, -0.08, -0.02), edge=3),
            "left": Ellipse(0.4 + shift, 0.0, lung_rx * 0.96, lung_ry * 0.97,
                            uniform(rng, 0.02, 0.08), edge=3),
        }
        heart = Ellipse(0.11 + shift + uniform(rng, -0.02, 0.02), 0.3 + uniform(rng, -0.03, 0.03),
                        uniform(rng, 0.27, 0.3), uniform(rng, 0.22, 0.25), -0.3, edge=3)
        dome_y = uniform(rng, 0.5, 0.56)
        domes = {"right": Ellipse(-0.39 + shift, dome_y + 0.34, 0.4, 0.32, edge=3),
                 "left": Ellipse(0.4 + shift, dome_y + 0.4, 0.4, 0.32, edge=3)}
        ribs, anterior = [], []
        spacing = uniform(rng, 0.145, 0.16)
        for side in (-1.0, 1.0):
            for k in range(9):
                y0 = -0.8 + spacing * k
                width = 0.58 + 0.03 * min(k, 5)
                pts = tuple((shift + side * (0.07 + width * t), y0 - 0.07 * math.sin(math.pi * t)
                             + (0.16 + 0.02 * k) * t * t) for t in np.linspace(0, 1, 7))
                ribs.append(Polyline(pts, 0.021, 0.024, edge=1.5))
                a0 = y0 + 0.12
                apts = tuple((shift + side * (0.78 - 0.55 * t), a0 + 0.24 * t + 0.05 * math.sin(math.pi * t))
                             for t in np.linspace(0, 1, 5))
                anterior.append(Polyline(apts, 0.02, 0.016, edge=2.5))
        clav_y = uniform(rng, -0.78, -0.72)
        clavicles = tuple(Polyline(((shift + s * 0.08, clav_y + 0.03), (shift + s * 0.35, clav_y - 0.02),
                                    (shift + s * 0.62, clav_y - 0.09)), 0.03, 0.026, edge=1.5)
                          for s in (-1.0, 1.0))
        base = ChestAnatomy(
            variant=variant, fov_mm=uniform(rng, 340, 380),
            noise=grain(rng, size, 0.4), noise_sigma=0.018 * difficulty.noise,
            torso=Ellipse(shift, 0.55, uniform(rng, 0.88, 0.94), 1.6, edge=4),
            lungs=lungs, heart=heart,
            mediastinum=RoundedRect(shift, -0.3, 0.13, 0.45, 0.06, edge=4),
            trachea=Capsule((shift, -1.05), (shift + 0.01, -0.38), 0.038, 0.034, edge=2),
            spine=RoundedRect(shift, 0.0, 0.075, 1.3, edge=2),
            ribs=tuple(ribs), anterior_ribs=tuple(anterior), clavicles=clavicles,
            shoulders=(Ellipse(shift - 0.9, -0.74, 0.12, 0.14, edge=2),
                       Ellipse(shift + 0.9, -0.74, 0.12, 0.14, edge=2)),
            girdle=RoundedRect(shift, -0.9, 1.05, 0.22, 0.22, edge=6), domes=domes,
            gain=uniform(rng, 2.0, 2.4),
            markings=fractal_noise(rng, size, 10, octaves=3, persistence=0.6),
            mottle=fractal_noise(rng, size, 4, octaves=2),
        )
        return base.with_overlays(*_distractors(rng, base, difficulty.distractors))

    def draw(self, anatomy: ChestAnatomy, grid: Grid) -> Drawn:
        a = anatomy
        size = grid.size
        d = np.zeros((size, size), np.float32)
        regions: dict[str, np.ndarray] = {}
        a.torso.stamp(grid).paint(d, 0.4)
        a.girdle.stamp(grid).paint(d, 0.4)
        d += 0.03 * a.mottle * (d > 0)
        for shoulder in a.shoulders:
            stamp = shoulder.stamp(grid)
            if stamp is not None:
                stamp.add(d, 0.3)
        lung_cover = np.zeros_like(d)
        for side, lung in a.lungs.items():
            cover = lung.stamp(grid).full(size) * (1.0 - a.domes[side].stamp(grid).full(size))
            regions[f"lung_{side}"] = cover
            np.maximum(lung_cover, cover, out=lung_cover)
        d += lung_cover * (0.12 - d)
        x, y = grid.full()
        hilum = np.exp(-(((np.abs(x - a.spine.cx) - 0.2) / 0.35) ** 2 + ((y + 0.05) / 0.5) ** 2))
        ridges = np.exp(-(a.markings / 0.45) ** 2)  # thin branching lines along zero crossings
        d += lung_cover * (0.03 + 0.08 * hilum) * ridges
        a.mediastinum.stamp(grid).paint(d, 0.5)
        heart = heart_shape(a)
        heart_cover = heart.stamp(grid).full(size)
        regions["heart"] = heart_cover
        d += heart_cover * (0.5 - d)
        paint_stage(a, TISSUE, Drawn(d, regions), grid)
        a.trachea.stamp(grid).paint(d, 0.32)
        a.spine.stamp(grid).add(d, 0.16)
        for rib in a.ribs:
            stamp = rib.stamp(grid)
            if stamp is not None:
                stamp.add(d, 0.09)
        for rib in a.anterior_ribs:
            stamp = rib.stamp(grid)
            if stamp is not None:
                stamp.add(d, 0.035)
        for clavicle in a.clavicles:
            clavicle.stamp(grid).add(d, 0.14)
        drawn = Drawn(d, regions)
        paint_stage(a, BONE, drawn, grid)
        paint_stage(a, DEVICE, drawn, grid)
        return drawn

    def render(self, anatomy: ChestAnatomy, drawn: Drawn) -> np.ndarray:
        signal = (1.0 - np.exp(-anatomy.gain * drawn.density)) / (1.0 - math.exp(-anatomy.gain * 0.8))
        signal = np.clip(signal, 0.0, 1.0)
        noisy = signal + anatomy.noise_sigma * anatomy.noise * (0.5 + 0.5 * signal)
        return to_uint8(np.clip(noisy, 0.0, 1.0) ** 1.1)


def _distractors(rng: np.random.Generator, a: ChestAnatomy, count: int) -> list[Overlay]:
    """ECG electrodes, clothing snaps and skin folds outside the lung zones findings use; beyond two
    distractors, nipple shadows (faint round opacities over the lower zones) join in as look-alikes."""
    pool = ("electrode", "snap", "skin_fold") + (("nipple_shadow",) if count > 2 else ())
    spots = [(-0.78, -0.84), (0.78, -0.84), (-0.3, -0.88), (0.3, -0.88), (-0.55, 0.86), (0.55, 0.86),
             (0.0, 0.9), (-0.8, 0.45), (0.8, 0.45)]
    order = rng.permutation(len(spots))
    out: list[Overlay] = []
    for i in range(count):
        kind = choice(rng, pool)
        cx, cy = spots[int(order[i % len(spots)])]
        cx += uniform(rng, -0.04, 0.04) + a.torso.cx
        cy += uniform(rng, -0.03, 0.03)
        if kind == "electrode":
            out.append(Overlay(Ring(cx, cy, 0.04, 0.04, 0.012), "add", 0.7, DEVICE))
            out.append(Overlay(Ellipse(cx, cy, 0.012, 0.012), "add", 0.9, DEVICE))
        elif kind == "snap":
            out.append(Overlay(Ellipse(cx, cy, 0.022, 0.022, edge=1), "add", 0.9, DEVICE))
        elif kind == "nipple_shadow":
            for side in SIDES:
                lung = a.lungs[side]
                shape = Ellipse(lung.cx - image_x(side) * 0.05, lung.cy + 0.5 * lung.ry, 0.035, 0.03, edge=3)
                out.append(Overlay(shape, "add", 0.06, TISSUE))
        else:
            side = 1.0 if cx > 0 else -1.0
            xs = a.torso.cx + side * uniform(rng, 0.72, 0.8)
            pts = tuple((xs + 0.03 * math.sin(3 * t), -0.5 + 0.9 * t) for t in np.linspace(0, 1, 5))
            out.append(Overlay(Polyline(pts, 0.012, edge=3), "add", 0.05, TISSUE))
    return out


# --- findings --------------------------------------------------------------------------------

ZONES = ("upper", "lower")


def nodule_site(rng: np.random.Generator, a: ChestAnatomy, side: str, zone: str) -> tuple[float, float]:
    """A point in the lateral part of one lung, in its upper or lower zone (away from the heart)."""
    lung = a.lungs[side]
    lateral = image_x(side)
    fy = uniform(rng, 0.32, 0.5) * (-1.0 if zone == "upper" else 1.0)
    fx = lateral * uniform(rng, 0.18, 0.38)
    return lung.cx + fx * lung.rx, lung.cy + fy * lung.ry


def nodule_overlay(rng: np.random.Generator, cx: float, cy: float, d: Difficulty) -> tuple[Overlay, float]:
    r = 0.052 * d.finding_scale * uniform(rng, 0.9, 1.15)
    shape = Ellipse(cx, cy, r, r * uniform(rng, 0.85, 1.0), uniform(rng, 0, math.pi), edge=1.6)
    return Overlay(shape, "add", 0.24 * d.contrast, TISSUE), 2 * r


def _lung_finding(kind: str, rng: np.random.Generator, a: ChestAnatomy, d: Difficulty, side: str,
                  zone: str) -> tuple[Overlay, Mark, float, str]:
    """A nodule or a pleural effusion in one lung: overlay, mark, diameter, finding name."""
    if kind == "nodule":
        cx, cy = nodule_site(rng, a, side, zone)
        overlay, diameter = nodule_overlay(rng, cx, cy, d)
        return overlay, Mark(overlay.shape), diameter, "pulmonary_nodule"
    lung = a.lungs[side]
    depth = 0.55 * min(d.finding_scale, 1.6) * uniform(rng, 0.9, 1.1)
    shape = Ellipse(lung.cx + image_x(side) * 0.9 * lung.rx, lung.cy + lung.ry * 1.02,
                    lung.rx * 1.25, lung.ry * depth, edge=4)
    overlay = Overlay(shape, "paint", 0.14 + 0.36 * min(d.contrast, 1.5), TISSUE, clip=f"lung_{side}")
    return overlay, Mark(shape, clip=f"lung_{side}"), lung.ry * depth, "pleural_effusion"


def nodule_pair(rng, a: ChestAnatomy, d: Difficulty) -> PairFinding:
    side, zone = choice(rng, SIDES), choice(rng, ZONES)
    overlay, mark, diameter, name = _lung_finding("nodule", rng, a, d, side, zone)
    return presence("nodule", a, (overlay,), (mark,), name, "nodule.chest", ("Pulmonary",),
                    location={"side": side, "zone": zone, "structure": f"{side} lung"},
                    size_mm=size_mm(diameter, a),
                    slots={"side": side, "zone": zone, "size": f"{int(size_mm(diameter, a))}"})


def laterality_pair(rng, a: ChestAnatomy, d: Difficulty) -> PairFinding:
    """The same lesion in the right lung on one image and in the left lung on the other."""
    kind = choice(rng, ("nodule", "effusion"))
    zone = choice(rng, ZONES) if kind == "nodule" else "lower"
    shape_seed = int(rng.integers(2**31))  # the same lesion on both sides
    images = []
    for side in SIDES:
        overlay, mark, diameter, name = _lung_finding(kind, np.random.default_rng(shape_seed), a, d,
                                                      side, zone)
        images.append(ImageFinding(a.with_overlays(overlay), side, name, True, (mark,),
                                   {"side": side, "zone": zone, "structure": f"{side} lung"},
                                   size_mm(diameter, a), {"side": side, "zone": zone}))
    key = "laterality.chest_nodule" if kind == "nodule" else "laterality.chest_effusion"
    return PairFinding("laterality", (images[0], images[1]), key, ("Pulmonary",), {"zone": zone})


def zone_pair(rng, a: ChestAnatomy, d: Difficulty) -> PairFinding:
    """A nodule in the upper zone on one image and in the lower zone of the same lung on the other."""
    side = choice(rng, SIDES)
    shape_seed = int(rng.integers(2**31))  # the same nodule in both zones
    images = []
    for zone in ZONES:
        overlay, mark, diameter, name = _lung_finding("nodule", np.random.default_rng(shape_seed), a, d,
                                                      side, zone)
        images.append(ImageFinding(a.with_overlays(overlay), zone, name, True, (mark,),
                                   {"side": side, "zone": zone, "structure": f"{side} lung"},
                                   size_mm(diameter, a), {"side": side, "zone": zone}))
    return PairFinding("zone", (images[0], images[1]), "zone.chest_nodule", ("Pulmonary",),
                       {"side": side})


def cardiomegaly_pair(rng, a: ChestAnatomy, d: Difficulty) -> PairFinding:
    """Normal versus enlarged cardiac silhouette (cardiothoracic ratio above one half)."""
    scale = 1.0 + 0.34 * d.finding_scale * uniform(rng, 0.9, 1.1)
    enlarged = replace(a, heart_scale=scale)
    marks = (Mark(Union((heart_shape(a, 1.0), heart_shape(a, scale)))),)
    width = 2 * heart_shape(a, scale).rx
    location = {"side": "midline", "zone": "lower", "structure": "heart"}
    return PairFinding("cardiomegaly", (
        ImageFinding(enlarged, "present", "cardiomegaly", True, marks, location, size_mm(width, a)),
        ImageFinding(a, "absent", "cardiomegaly", False, marks, location, None),
    ), "cardiomegaly.chest", ("Cardiac",))


def pacemaker_overlays(rng, a: ChestAnatomy, d: Difficulty) -> tuple[Overlay, ...]:
    s = d.finding_scale
    gx, gy = a.torso.cx + uniform(rng, 0.48, 0.56), uniform(rng, -0.6, -0.52)
    angle = uniform(rng, -0.3, 0.1)
    box = RoundedRect(gx, gy, 0.085 * s, 0.062 * s, 0.03 * s, angle, edge=1)
    heart = heart_shape(a)
    apex = (heart.cx + 0.45 * heart.rx, heart.cy + 0.35 * heart.ry)
    x0 = a.spine.cx
    lead = Polyline(((gx - 0.06 * s, gy + 0.01), (gx - 0.25, gy - 0.1), (x0 + 0.02, -0.6),
                     (x0 - 0.07, -0.38), (x0 - 0.06, -0.05), (x0 + 0.08, 0.2), apex), 0.011 * s, edge=1)
    return (Overlay(box, "add", 1.4 * d.contrast, DEVICE), Overlay(lead, "add", 0.9 * d.contrast, DEVICE))


def device_pair(rng, a: ChestAnatomy, d: Difficulty) -> PairFinding:
    """Pacemaker, endotracheal tube or central venous catheter: present versus absent."""
    kind = choice(rng, ("pacemaker", "endotracheal_tube", "central_venous_catheter"))
    s = d.finding_scale
    if kind == "pacemaker":
        overlays = pacemaker_overlays(rng, a, d)
        categories, where = ("Cardiac",), {"side": "left", "zone": "upper", "structure": "chest wall"}
    elif kind == "endotracheal_tube":
        x0 = a.trachea.p0[0]
        tip = uniform(rng, -0.5, -0.44)
        stripe = Polyline(((x0, -1.05), (x0 + 0.004, (tip - 1.05) / 2), (x0 + 0.008, tip)), 0.01 * s, edge=1)
        body = Polyline(((x0, -1.05), (x0 + 0.008, tip)), 0.03 * s, edge=1.5)
        overlays = (Overlay(body, "add", 0.05 * d.contrast, DEVICE),
                    Overlay(stripe, "add", 0.75 * d.contrast, DEVICE))
        categories, where = ("Pulmonary",), {"side": "midline", "zone": "upper", "structure": "trachea"}
    else:
        x0 = a.spine.cx
        line = Polyline(((x0 - 0.24, -1.05), (x0 - 0.16, -0.82), (x0 - 0.09, -0.6), (x0 - 0.06, -0.42),
                         (x0 - 0.05, uniform(rng, -0.3, -0.22))), 0.009 * s, edge=1)
        overlays = (Overlay(line, "add", 0.8 * d.contrast, DEVICE),)
        categories, where = ("Vascular",), {"side": "right", "zone": "upper",
                                            "structure": "superior vena cava"}
    marks = tuple(Mark(o.shape) for o in overlays)
    return presence("device", a, overlays, marks, kind, f"device.{kind}", categories,
                    location=where, size_mm=None, slots={})


def normality_pair(rng, a: ChestAnatomy, d: Difficulty) -> PairFinding:
    """A normal radiograph versus one with a nodule, an effusion or cardiomegaly."""
    kind = choice(rng, ("nodule", "effusion", "cardiomegaly"))
    if kind == "cardiomegaly":
        inner = cardiomegaly_pair(rng, a, d)
        abnormal, normal = inner.images
    else:
        side = choice(rng, SIDES)
        zone = choice(rng, ZONES) if kind == "nodule" else "lower"
        overlay, mark, diameter, name = _lung_finding(kind, rng, a, d, side, zone)
        where = {"side": side, "zone": zone, "structure": f"{side} lung"}
        abnormal = ImageFinding(a.with_overlays(overlay), "abnormal", name, True, (mark,), where,
                                size_mm(diameter, a), {"side": side, "zone": zone})
        normal = ImageFinding(a, "normal", name, False, (mark,), where, None, {})
    abnormal = replace(abnormal, answer="abnormal")
    normal = replace(normal, answer="normal")
    return PairFinding("normality", (abnormal, normal), "normality.chest",
                       ("Cardiac",) if kind == "cardiomegaly" else ("Pulmonary",))
