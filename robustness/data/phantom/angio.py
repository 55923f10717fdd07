"""Angiogram (digital subtraction): a contrast-filled arterial tree, dark on a grey background.

Three territories share the drawing: a cerebral (internal carotid / middle cerebral) tree rising
from the bottom of the image, a left coronary tree, and a superficial femoral artery running down
a thigh. Density is contrast opacity in [0, 1+]; metal (stent struts) adds to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from robustness.data.phantom.canvas import (Capsule, Ellipse, Grid, Point, Polyline, Ring, Striped,
                                            Union, fractal_noise, grain)
from robustness.data.phantom.scene import (BONE, DEVICE, TISSUE, Anatomy, Drawn, ImageFinding, Mark,
                                           Modality, Overlay, PairFinding, choice, paint_stage,
                                           presence, size_mm, to_uint8, uniform)
from robustness.data.phantom.settings import Difficulty

# territory -> (artery named in questions, categories, root, initial heading, trunk length, radius)
TERRITORIES: dict[str, tuple[str, tuple[str, ...], Point, float, float, float]] = {
    "cerebral": ("middle cerebral artery", ("Cerebral", "Vascular"), (0.0, 1.05), -math.pi / 2, 0.75, 0.03),
    "coronary": ("left coronary artery", ("Cardiac", "Vascular"), (-0.62, -0.72), 0.75, 0.65, 0.028),
    "peripheral": ("superficial femoral artery", ("Vascular",), (0.05, -1.05), math.pi / 2, 1.0, 0.03),
}


@dataclass(frozen=True)
class Branch:
    """One vessel from a branch point to the next: a wiggly polyline with one radius per point.

    ``origin`` is the index of the parent's point where this branch leaves it (the parent's last
    point for a bifurcation, a middle point for a side branch).
    """

    id: int
    parent: int | None
    depth: int
    points: tuple[Point, ...]
    radii: tuple[float, ...]
    origin: int = 0

    @property
    def r0(self) -> float:
        return self.radii[0]

    def shape(self) -> Polyline:
        return Polyline(self.points, edge=1.0, radii=self.radii)

    def at(self, t: float) -> tuple[Point, float, float]:
        """Point, radius and heading at fraction ``t`` of the branch (by segment index)."""
        n = len(self.points) - 1
        k = min(int(t * n), n - 1)
        f = t * n - k
        (ax, ay), (bx, by) = self.points[k], self.points[k + 1]
        radius = self.radii[k] + f * (self.radii[k + 1] - self.radii[k])
        return (ax + f * (bx - ax), ay + f * (by - ay)), radius, math.atan2(by - ay, bx - ax)


@dataclass(frozen=True, kw_only=True)
class AngioAnatomy(Anatomy):
    tree: tuple[Branch, ...]
    background: float
    contrast_gain: float
    texture: np.ndarray = field(repr=False, compare=False)

    @property
    def artery(self) -> str:
        return TERRITORIES[self.variant][0]

    @property
    def categories(self) -> tuple[str, ...]:
        return TERRITORIES[self.variant][1]

    def beyond(self, branch: Branch, index: int) -> set[int]:
        """Branches leaving ``branch`` after its point ``index``, with their whole subtrees."""
        out: set[int] = set()
        for child in self.tree:
            if child.parent == branch.id and child.origin > index:
                out |= self.descendants(child.id)
        return out

    def descendants(self, branch_id: int) -> set[int]:
        out = {branch_id}
        changed = True
        while changed:
            changed = False
            for b in self.tree:
                if b.parent in out and b.id not in out:
                    out.add(b.id)
                    changed = True
        return out


def grow_tree(rng: np.random.Generator, variant: str) -> tuple[Branch, ...]:
    """A random binary arterial tree with side branches, curving gently (all randomness here)."""
    _, _, root, heading, length, radius = TERRITORIES[variant]
    branches: list[Branch] = []
    max_depth = 5
    stack = [(root, heading, length, radius, 0, None, 0)]
    while stack:
        start, angle, seg_len, r, depth, parent, origin = stack.pop(0)
        pts = [start]
        a = angle
        steps = 6
        for _ in range(steps):
            a += float(rng.normal(0.0, 0.16))
            x, y = pts[-1]
            pts.append((x + seg_len / steps * math.cos(a), y + seg_len / steps * math.sin(a)))
        r_end = r * 0.82
        bid = len(branches)
        radii = tuple(r + (r_end - r) * i / steps for i in range(steps + 1))
        branches.append(Branch(bid, parent, depth, tuple(pts), radii, origin))
        if depth >= max_depth or r_end < 0.006:
            continue
        spread = uniform(rng, 0.4, 0.7)
        bias = uniform(rng, -0.25, 0.25)
        ratio = uniform(rng, 0.7, 0.9)
        stack.append((pts[-1], a - spread + bias, seg_len * uniform(rng, 0.62, 0.8), r_end * 0.9, depth + 1, bid,
                      steps))
        stack.append((pts[-1], a + spread + bias, seg_len * uniform(rng, 0.55, 0.75), r_end * 0.9 * ratio,
                      depth + 1, bid, steps))
        if depth <= 2:  # a small side branch from the middle of the vessel
            k = int(rng.integers(2, steps - 1))
            side = 1.0 if rng.random() < 0.5 else -1.0
            stack.append((pts[k], a + side * uniform(rng, 0.9, 1.3), seg_len * 0.45, r * 0.5,
                          max_depth - 1, bid, k))
    return tuple(branches)


class Angiogram(Modality):
    name = "angiogram"
    label = "angiogram"
    variants = tuple(TERRITORIES)

    def sample(self, rng: np.random.Generator, grid: Grid, difficulty: Difficulty,
               variant: str) -> AngioAnatomy:
        size = grid.size
        base = AngioAnatomy(
            variant=variant, fov_mm=uniform(rng, 180, 220),
            noise=grain(rng, size, 0.5), noise_sigma=0.022 * difficulty.noise,
            tree=grow_tree(rng, variant), background=uniform(rng, 0.66, 0.74),
            contrast_gain=uniform(rng, 0.58, 0.66),
            texture=fractal_noise(rng, size, 3, octaves=3),
        )
        return base.with_overlays(*_distractors(rng, base, difficulty.distractors))

    def draw(self, a: AngioAnatomy, grid: Grid) -> Drawn:
        d = np.zeros((grid.size, grid.size), np.float32)
        drawn = Drawn(d, {})
        paint_stage(a, TISSUE, drawn, grid)
        root_r = a.tree[0].r0
        for branch in a.tree:
            stamp = branch.shape().stamp(grid)
            if stamp is not None:
                stamp.maximum(d, 0.55 + 0.45 * min(1.0, branch.r0 / (0.6 * root_r)))
        paint_stage(a, BONE, drawn, grid)
        paint_stage(a, DEVICE, drawn, grid)
        return drawn

    def render(self, a: AngioAnatomy, drawn: Drawn) -> np.ndarray:
        display = a.background + 0.03 * a.texture - a.contrast_gain * drawn.density
        return to_uint8(display + a.noise_sigma * a.noise)


def _distractors(rng: np.random.Generator, a: AngioAnatomy, count: int) -> list[Overlay]:
    """A guiding catheter in the parent vessel, a faint bone edge left by subtraction, a venous blush."""
    out: list[Overlay] = []
    for _ in range(count):
        kind = choice(rng, ("catheter", "bone_edge", "blush"))
        if kind == "catheter":
            root = a.tree[0]
            (x0, y0), _, heading = root.at(0.0)
            back = (x0 - 0.5 * math.cos(heading), y0 - 0.5 * math.sin(heading))
            tip, _, _ = root.at(0.15)
            out.append(Overlay(Polyline((back, (x0, y0), tip), 0.008, edge=1), "max", 0.8, DEVICE))
        elif kind == "bone_edge":
            cx, cy = uniform(rng, -0.6, 0.6), uniform(rng, -0.6, 0.6)
            out.append(Overlay(Ring(cx, cy, uniform(rng, 0.5, 0.9), uniform(rng, 0.4, 0.8), 0.02,
                                    uniform(rng, 0, math.pi), edge=4), "add", -0.05, TISSUE))
        else:
            cx, cy = uniform(rng, -0.7, 0.7), uniform(rng, -0.7, 0.7)
            out.append(Overlay(Ellipse(cx, cy, uniform(rng, 0.15, 0.3), uniform(rng, 0.1, 0.2),
                                       uniform(rng, 0, math.pi), edge=8), "add", 0.07, TISSUE))
    return out


# --- findings --------------------------------------------------------------------------------

def _pick(rng: np.random.Generator, branches: list[Branch]) -> Branch:
    return branches[int(rng.integers(len(branches)))]


def _inside(point: Point, margin: float = 0.12) -> bool:
    return abs(point[0]) < 1 - margin and abs(point[1]) < 1 - margin


def _patient_side(x: float) -> str:
    """The patient's side of an image x (radiological convention: image right = patient's left)."""
    return "left" if x > 0 else "right"


def _visible_length(branches) -> float:
    """Length of the vessel centre lines that lie well inside the image."""
    total = 0.0
    for b in branches:
        for p, q in zip(b.points, b.points[1:]):
            if _inside(p, 0.06) and _inside(q, 0.06):
                total += math.dist(p, q)
    return total


def occlusion_pair(rng, a: AngioAnatomy, d: Difficulty) -> PairFinding:
    """A patent tree versus the same tree with one branch cut off abruptly (distal vessels absent)."""
    candidates = [b for b in a.tree if b.depth in (1, 2, 3) and len(a.beyond(b, len(b.points) - 2)) >= 2
                  and _inside(b.at(0.4)[0], 0.2)
                  and _visible_length([c for c in a.tree if c.id in a.beyond(b, len(b.points) - 2)]) > 0.6]
    candidates = candidates or [b for b in a.tree if b.depth >= 1]
    branch = _pick(rng, candidates)
    t = uniform(rng, 0.3, 0.55)
    n = len(branch.points) - 1
    k = int(t * n)
    cut, r_cut, _ = branch.at(t)
    stump = replace(branch, points=branch.points[:k + 1] + (cut,), radii=branch.radii[:k + 1] + (r_cut,))
    removed = a.beyond(branch, k)
    occluded_tree = tuple(stump if b.id == branch.id else b for b in a.tree if b.id not in removed)
    occluded = replace(a, tree=occluded_tree)
    remainder = Polyline((cut,) + branch.points[k + 1:], edge=1.0, radii=(r_cut,) + branch.radii[k + 1:])
    marks = (Mark(remainder),) + tuple(Mark(b.shape()) for b in a.tree if b.id in removed)
    where = {"side": _patient_side(cut[0]), "zone": "upper" if cut[1] < 0 else "lower",
             "structure": f"{a.artery} branch", "branch_depth": branch.depth}
    return PairFinding("occlusion", (
        ImageFinding(occluded, "occluded", "vessel_occlusion", True, marks, where, None,
                     {"artery": a.artery}),
        ImageFinding(a, "patent", "vessel_occlusion", False, marks, where, None, {"artery": a.artery}),
    ), "occlusion.angio", a.categories, {"artery": a.artery})


def aneurysm_pair(rng, a: AngioAnatomy, d: Difficulty) -> PairFinding:
    """A saccular aneurysm arising from the side of a proximal branch, versus none."""
    candidates = [b for b in a.tree if b.depth <= 2 and b.r0 >= 0.012 and _inside(b.at(0.5)[0], 0.2)] \
        or list(a.tree[:3])
    branch = _pick(rng, candidates)
    (px, py), r, heading = branch.at(uniform(rng, 0.3, 0.7))
    side = 1.0 if rng.random() < 0.5 else -1.0
    normal = heading + side * math.pi / 2 + uniform(rng, -0.4, 0.4)
    radius = max(2.4 * r, 0.042) * d.finding_scale * uniform(rng, 0.95, 1.15)
    centre = (px + (r + 0.75 * radius) * math.cos(normal), py + (r + 0.75 * radius) * math.sin(normal))
    sac = Ellipse(centre[0], centre[1], radius, radius * uniform(rng, 0.8, 1.0), normal, edge=1.2)
    neck = Capsule((px, py), centre, max(r * 0.8, 0.008), radius * 0.55, edge=1.2)
    shape = Union((sac, neck))
    overlay = Overlay(shape, "max", min(1.0, 0.95 * d.contrast), BONE)
    where = {"side": _patient_side(centre[0]),
             "zone": "upper" if centre[1] < 0 else "lower", "structure": f"{a.artery} branch"}
    return presence("aneurysm", a, (overlay,), (Mark(shape),), "saccular_aneurysm", "aneurysm.angio",
                    a.categories, location=where, size_mm=size_mm(2 * radius, a),
                    slots={"artery": a.artery, "size": str(int(size_mm(2 * radius, a)))})


def stent_pair(rng, a: AngioAnatomy, d: Difficulty) -> PairFinding:
    """A metallic mesh stent along a proximal segment, versus the same vessel without it."""
    candidates = [b for b in a.tree if b.depth <= 1 and _inside(b.at(0.5)[0], 0.15)] or list(a.tree[:1])
    branch = _pick(rng, candidates)
    t0 = uniform(rng, 0.2, 0.45)
    t1 = t0 + 0.35 * min(d.finding_scale, 1.5)
    pts = tuple(branch.at(min(t, 1.0))[0] for t in np.linspace(t0, t1, 6))
    r = branch.at(t0)[1]
    tube = Polyline(pts, max(r * 1.9, 0.032) * min(d.finding_scale, 1.5), edge=1.0)
    mesh = Striped(tube, period=0.036, angle=0.8, duty=0.3, crossed=True)
    markers = Union(tuple(Ellipse(p[0], p[1], 0.016, 0.016, edge=1) for p in (pts[0], pts[-1])))
    overlays = (Overlay(mesh, "max", 0.75 * d.contrast, DEVICE),
                Overlay(markers, "max", 1.2 * d.contrast, DEVICE))
    where = {"side": _patient_side(pts[2][0]),
             "zone": "upper" if pts[2][1] < 0 else "lower", "structure": f"{a.artery}"}
    return presence("device", a, overlays, (Mark(tube), Mark(markers)), "stent", "device.stent",
                    a.categories, location=where, size_mm=None, slots={"artery": a.artery})
