"""Probes: determinism, severity tables, truth remapping, few-shot hygiene, configs, metrics.

Fast and model-free: tiny synthetic pairs and hand-built answers.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import yaml

from attacks import build_probes
from attacks.base import Condition, Probe, ProbeContext, derive_seed, scoring_pair, truth
from attacks.corruptions import ImageCorruption
from attacks.option_order import OptionSwap, order_metrics, position_logprobs, swap_options
from attacks.pair import Blend, SameImage, SwapImages, blend_pixels
from attacks.prompting import ChainOfThought, ExpertPersona, FewShot, Paraphrase
from tests.helpers.paths import ROOT
from robustness.data.types import Benchmark, MediConfusionFields, Pair
from robustness.errors import ConfigError
from robustness.data.image import ImageInput
from robustness.data.query import Answer, Query, clean_queries

PROBE_CONF = ROOT / "conf" / "probe"
# conf/ is the registry: every shipped probe is a YAML there naming its class.
TARGETS = {p.stem: yaml.safe_load(p.read_text())["_target_"] for p in PROBE_CONF.glob("*.yaml")}
CORRUPTIONS = sorted(n for n, t in TARGETS.items() if t.startswith("attacks.corruptions.")
                     and t != "attacks.corruptions.Corruption")


def probe_class(name: str) -> type:
    """The class ``conf/probe/NAME.yaml`` builds."""
    from hydra.utils import get_class

    return get_class(TARGETS[name])


# ----------------------------------------------------------------------------- fixtures


def radiograph(seed: int = 0, size: int = 96, rgb: bool = False) -> np.ndarray:
    """A textured stand-in for a radiograph: soft lobes, ribs, a small bright nodule, fine grain."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    img = 50 + 90 * np.exp(-((xx - size * 0.32) ** 2 + (yy - size / 2) ** 2 / 2.5) / (size * 4))
    img += 90 * np.exp(-((xx - size * 0.68) ** 2 + (yy - size / 2) ** 2 / 2.5) / (size * 4))
    img += 50 * (np.sin(yy / 3.0 + seed) > 0.6) + 30 * (np.sin(xx / 4.0 - seed) > 0.7)
    img += 60 * (((xx - size * 0.6) ** 2 + (yy - size * 0.35) ** 2) < (size * 0.04) ** 2)
    img += rng.normal(0, 4, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    return np.stack([img] * 3, axis=-1) if rgb else img


def make_pair(i: int, correct=("A", "B"), cats=("Cerebral",), locals_=None) -> Pair:
    local = locals_ or (f"L{i}a", f"L{i}b")
    return Pair(pair_id=f"p{i}", question=f"Question {i}?", options=(f"yes {i}", f"no {i}"),
                correct=correct, categories=(cats, cats),
                mediconfusion=MediConfusionFields(
                    image_refs=(f"roco/{local[0]}.jpg", f"roco/{local[1]}.jpg"), local_ids=local,
                    ai_question=f"AI question {i}?",
                    ai_options=(f"present {i}", f"absent {i}")))


def pixels_of(pair: Pair) -> tuple[ImageInput, ImageInput]:
    n = int(pair.pair_id[1:])
    return ImageInput(radiograph(2 * n)), ImageInput(radiograph(2 * n + 1))


@pytest.fixture
def bench() -> Benchmark:
    pairs = [make_pair(i, correct=("A", "B") if i % 2 else ("B", "A"),
                       cats=("Cerebral",) if i < 4 else ("Pulmonary",)) for i in range(8)]
    # p8 shares an image with p0: it must never serve as p0's example (nor p0 as p8's)
    pairs.append(make_pair(8, locals_=("L0a", "L8b")))
    return Benchmark(name="tiny", pairs=tuple(pairs))


@pytest.fixture
def ctx(bench) -> ProbeContext:
    return ProbeContext(benchmark=bench, seed=0,
                        load_queries=lambda p: clean_queries(p, pixels_of(p)))


def queries_of(pair: Pair) -> tuple[Query, Query]:
    return clean_queries(pair, pixels_of(pair))


def run(probe: Probe, condition: Condition, pair: Pair, ctx: ProbeContext) -> tuple[Query, ...]:
    out = tuple(probe.apply(condition, pair, queries_of(pair), ctx))
    assert len(out) == 2 and [q.image_index for q in out] == [1, 2]
    return out


def level(probe: ImageCorruption, severity: int) -> Condition:
    return next(c for c in probe.conditions() if c.params["severity"] == severity)


# ----------------------------------------------------------------------- corruptions


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_corruption_is_deterministic_and_keeps_dtype_and_shape(name, bench, ctx):
    probe = probe_class(name)()
    pair = bench.pairs[1]
    first = run(probe, level(probe, 3), pair, ctx)
    run(probe, level(probe, 3), bench.pairs[2], ctx)  # other work in between changes nothing
    again = run(probe, level(probe, 3), pair, ctx)
    clean = queries_of(pair)
    for a, b, c in zip(first, again, clean):
        assert a.image.digest == b.image.digest
        assert a.image.pixels.dtype == np.uint8 and a.image.pixels.shape == c.image.pixels.shape
        assert a.image.digest != c.image.digest  # the image did change
        assert (a.correct, a.label_map, a.options) == (c.correct, c.label_map, c.options)
    rgb = radiograph(5, rgb=True)
    out = probe.corrupt(rgb, 2, seed=7)
    assert out.shape == rgb.shape and out.dtype == np.uint8


RANDOM = ["gaussian_noise", "shot_noise", "salt_pepper", "motion_blur", "elastic"]


@pytest.mark.parametrize("name", RANDOM)
def test_random_corruptions_depend_on_seed_and_image(name, bench, ctx):
    probe = probe_class(name)()
    pixels = radiograph(3)
    base = probe.corrupt(pixels, 3, seed=probe.image_seed(3, "p1", 1, 0))
    other_image = probe.corrupt(pixels, 3, seed=probe.image_seed(3, "p1", 2, 0))
    other_run = probe.corrupt(pixels, 3, seed=probe.image_seed(3, "p1", 1, 1))
    assert not np.array_equal(base, other_image)
    assert not np.array_equal(base, other_run)
    ctx1 = replace(ctx, seed=1)
    a = run(probe, level(probe, 3), bench.pairs[1], ctx)
    b = run(probe, level(probe, 3), bench.pairs[1], ctx1)
    assert a[0].image.digest != b[0].image.digest


def test_seeds_come_from_probe_level_pair_image_and_base_seed():
    probe = probe_class("gaussian_noise")()
    seeds = {probe.image_seed(lv, pid, im, s) for lv in (1, 2) for pid in ("p1", "p2")
             for im in (1, 2) for s in (0, 1)}
    assert len(seeds) == 16
    assert probe.image_seed(2, "p1", 1, 0) == derive_seed("gaussian_noise", 2, "p1", 1, 0)


def test_same_pixels_in_a_fresh_process(bench, ctx):
    """No hidden global state: another interpreter (other hash seed) yields the same bytes."""
    probe = probe_class("gaussian_noise")()
    here = run(probe, level(probe, 4), bench.pairs[3], ctx)[1].image.digest
    code = ("from tests.attacks.test_probes import *\n"
            "b = Benchmark(name='t', pairs=(make_pair(3, correct=('A','B')),))\n"
            "c = ProbeContext(benchmark=b, seed=0)\n"
            "p = probe_class('gaussian_noise')()\n"
            "print(p.apply(level(p, 4), b.pairs[0], queries_of(b.pairs[0]), c)[1].image.digest)")
    env = {**os.environ, "PYTHONHASHSEED": "123", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == here


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_severity_is_monotone(name):
    """Mean absolute pixel change grows with the level (averaged over a few seeds)."""
    probe = probe_class(name)()
    images = [radiograph(s) for s in range(3)]
    change = []
    for lv in (1, 2, 3, 4, 5):
        diffs = [np.abs(probe.corrupt(img, lv, seed=derive_seed(name, lv, s)).astype(float)
                        - img).mean() for s, img in enumerate(images)]
        change.append(float(np.mean(diffs)))
    assert all(b > a for a, b in zip(change, change[1:])), change
    assert change[0] > 0


def test_target_selects_one_image(bench, ctx):
    probe = probe_class("gaussian_blur")(severities=[2], target="image2")
    pair = bench.pairs[1]
    q1, q2 = run(probe, probe.conditions()[0], pair, ctx)
    c1, c2 = queries_of(pair)
    assert q1.image.digest == c1.image.digest and q2.image.digest != c2.image.digest
    # image 2 gets the same pixels as under target=both (seed does not depend on the target)
    both = probe_class("gaussian_blur")(severities=[2])
    assert run(both, both.conditions()[0], pair, ctx)[1].image.digest == q2.image.digest


def test_corruption_conditions_and_bad_parameters():
    probe = probe_class("jpeg_compression")(severities=[1, 5])
    assert [c.name for c in probe.conditions()] == ["jpeg_compression@1", "jpeg_compression@5"]
    assert probe.conditions()[1].params == {"severity": 5, "target": "both", "quality": 7}
    for bad in ([0], [6], [2, 2], [], ["3"]):
        with pytest.raises(ConfigError):
            probe_class("jpeg_compression")(severities=bad)
    with pytest.raises(ConfigError, match="target"):
        probe_class("contrast")(target="left")


# ------------------------------------------------------------------------- option swap


def test_option_swap_remaps_labels_and_truth(bench, ctx):
    pair = bench.pairs[0]  # correct = (B, A)
    swapped = run(OptionSwap(), OptionSwap().conditions()[0], pair, ctx)
    for q, c in zip(swapped, queries_of(pair)):
        assert q.options == (c.options[1], c.options[0])
        assert q.label_map == ("B", "A")
        assert q.to_original("A") == "B" and q.to_original("B") == "A"
        assert truth(q) == truth(c)  # the same option text is right
        assert q.options["AB".index(q.correct)] == pair.option_text(truth(c))
        assert q.image.digest == c.image.digest
    twice, clean = swap_options(swapped[0]), queries_of(pair)[0]  # swapping twice: identity
    assert replace(twice, image=clean.image) == clean


def answer(q: Query, displayed: str | None, raw: dict | None = None) -> Answer:
    return Answer(pair_id=q.pair_id, image_index=q.image_index, choice=q.to_original(displayed),
                  displayed_choice=displayed, raw=raw or {})


def both_orders(bench, ctx):
    clean = [q for p in bench.pairs for q in queries_of(p)]
    swapped = [q for p in bench.pairs
               for q in run(OptionSwap(), OptionSwap().conditions()[0], p, ctx)]
    return clean, swapped


def test_always_a_model_is_fully_position_biased(bench, ctx):
    clean_q, swap_q = both_orders(bench, ctx)
    clean = [answer(q, "A") for q in clean_q]
    swapped = [answer(q, "A") for q in swap_q]
    probe = OptionSwap()
    m = probe.extra_metrics(probe.conditions()[0], clean, swapped, swap_q)
    assert m["position_bias_clean"] == m["position_bias_swapped"] == m["position_bias"] == 100.0
    assert m["order_consistency"] == 0.0 and m["n_images"] == 2 * len(bench)
    assert "pride" not in m  # no probabilities in MC-style answers


def test_perfect_model_is_consistent_and_unbiased(bench, ctx):
    clean_q, swap_q = both_orders(bench, ctx)
    clean = [answer(q, q.correct) for q in clean_q]
    swapped = [answer(q, q.correct) for q in swap_q]
    m = order_metrics({(a.pair_id, a.image_index): a for a in clean},
                      {(a.pair_id, a.image_index): a for a in swapped},
                      {(q.pair_id, q.image_index): q for q in swap_q})
    assert m["order_consistency"] == 100.0 and m["position_bias"] == 50.0
    invalid = [replace(a, choice=None, displayed_choice=None) for a in swapped]
    m = OptionSwap().extra_metrics(OptionSwap().conditions()[0], clean, invalid, swap_q)
    assert m["order_consistency"] == 0.0 and m["position_bias_swapped"] is None


def test_pride_recovers_the_prior_and_removes_the_bias(bench, ctx):
    """A model whose letter probabilities are prior(position) × evidence(option)."""
    clean_q, swap_q = both_orders(bench, ctx)
    prior = {"A": 0.8, "B": 0.2}

    def probs(q: Query, key: str) -> Answer:
        scores = {}
        for d in "AB":
            evidence = 0.6 if q.to_original(d) == truth(q) else 0.4  # weak but right evidence
            scores[d] = prior[d] * evidence
        total = sum(scores.values())
        raw = {"letter_probs": {d: s / total for d, s in scores.items()}} if key == "letter_probs" \
            else {"option_scores": {d: math.log(s) for d, s in scores.items()}}
        return answer(q, max(scores, key=scores.get), raw)

    for key in ("letter_probs", "option_scores"):
        clean = [probs(q, key) for q in clean_q]
        swapped = [probs(q, key) for q in swap_q]
        m = OptionSwap().extra_metrics(OptionSwap().conditions()[0], clean, swapped, swap_q)
        pride = m["pride"]
        assert pride["n_images"] == 2 * len(bench)
        assert pride["prior"]["A"] == pytest.approx(0.8, abs=1e-3)
        assert pride["observed"]["individual_accuracy"] == 50.0  # says A whatever the image
        assert pride["observed"]["confusion"] == 100.0
        assert pride["debiased"]["individual_accuracy"] == 100.0
        assert pride["debiased"]["set_accuracy"] == 100.0
        assert pride["permutation_averaged"]["set_accuracy"] == 100.0
        assert m["position_bias"] == 100.0


def test_position_logprobs_reads_raw_scores():
    a = Answer(pair_id="p", image_index=1, choice="A", displayed_choice="A",
               raw={"letter_probs": {"A": 0.3, "B": 0.1}})
    assert position_logprobs(a) == pytest.approx((math.log(0.75), math.log(0.25)))
    b = replace(a, raw={"letter_logprobs": {"A": -1.0, "B": -1.0}})
    assert position_logprobs(b) == pytest.approx((math.log(0.5), math.log(0.5)))
    assert position_logprobs(replace(a, raw={"text": "A"})) is None
    assert position_logprobs(replace(a, error="timeout")) is None
    assert position_logprobs(replace(a, raw={"letter_probs": {"A": 0, "B": 0}})) is None


# ------------------------------------------------------------------------ pair probes


def test_swap_images_moves_images_and_truths(bench, ctx):
    pair = bench.pairs[1]  # correct = (A, B)
    c1, c2 = queries_of(pair)
    q1, q2 = run(SwapImages(), SwapImages().conditions()[0], pair, ctx)
    assert q1.image.digest == c2.image.digest and q2.image.digest == c1.image.digest
    assert (truth(q1), truth(q2)) == ("B", "A")
    assert q1.meta["source_image"] == 2 and q1.meta["truth_image"] == 2
    assert scoring_pair(pair, (q1, q2)).correct == ("B", "A")
    assert scoring_pair(pair, queries_of(pair)) is pair
    # composes with an option swap: truths follow the option text
    s1, s2 = SwapImages().apply(None, pair, tuple(swap_options(q) for q in (c1, c2)), ctx)
    assert (truth(s1), truth(s2)) == ("B", "A") and s1.correct == "A"


def test_swap_images_answer_follows_image(bench, ctx):
    clean_q = [q for p in bench.pairs for q in queries_of(p)]
    probe_q = [q for p in bench.pairs
               for q in run(SwapImages(), SwapImages().conditions()[0], p, ctx)]
    oracle = lambda q: answer(q, q.correct)  # answers from the image: always its truth
    m = SwapImages().extra_metrics(None, [oracle(q) for q in clean_q], [oracle(q) for q in probe_q],
                                   probe_q)
    assert m["answer_follows_image"] == 100.0
    slot_bound = [answer(q, "A") if q.image_index == 1 else answer(q, "B") for q in probe_q]
    clean_slot = [answer(q, "A") if q.image_index == 1 else answer(q, "B") for q in clean_q]
    m = SwapImages().extra_metrics(None, clean_slot, slot_bound, probe_q)
    assert m["answer_follows_image"] == 0.0


def test_same_image_duplicates_image_one(bench, ctx):
    pair = bench.pairs[0]  # correct = (B, A)
    c1, _ = queries_of(pair)
    q1, q2 = run(SameImage(), SameImage().conditions()[0], pair, ctx)
    assert q1.image.digest == q2.image.digest == c1.image.digest
    assert (truth(q1), truth(q2)) == ("B", "B")
    assert scoring_pair(pair, (q1, q2)).correct == ("B", "B")
    r1, r2 = run(SameImage(source=2), SameImage(source=2).conditions()[0], pair, ctx)
    assert (truth(r1), truth(r2)) == ("A", "A") and r1.meta["source_image"] == 2
    with pytest.raises(ConfigError):
        SameImage(source=3)
    clean = [answer(q, q.correct) for q in (c1, queries_of(pair)[1])]
    m = SameImage().extra_metrics(None, clean, [answer(q1, "B"), answer(q2, "B")], (q1, q2))
    assert m == {"self_consistency": 100.0, "agreement_with_clean": 100.0}


def test_blend_weights_and_truth(bench, ctx):
    probe = Blend(weights=[0.25, 0.5])
    assert [c.name for c in probe.conditions()] == ["blend@0.25", "blend@0.5"]
    pair = bench.pairs[1]
    c1, c2 = queries_of(pair)
    a1, a2 = c1.image.pixels.astype(float), c2.image.pixels.astype(float)
    q1, q2 = run(probe, probe.conditions()[0], pair, ctx)
    assert np.array_equal(q1.image.pixels, np.rint(0.75 * a1 + 0.25 * a2).astype(np.uint8))
    assert np.array_equal(q2.image.pixels, np.rint(0.75 * a2 + 0.25 * a1).astype(np.uint8))
    assert (truth(q1), truth(q2)) == pair.correct  # the truth stays with the dominant image
    h1, h2 = run(probe, probe.conditions()[1], pair, ctx)
    assert h1.image.digest == h2.image.digest  # at 0.5 both slots show the same picture
    assert (truth(h1), truth(h2)) == pair.correct
    for bad in ([0.0], [0.6], [-0.1], [], [0.2, 0.2]):
        with pytest.raises(ConfigError):
            Blend(weights=bad)


def test_blend_resizes_and_converts_the_other_image():
    base = radiograph(1, size=64)
    other = radiograph(2, size=80, rgb=True)
    out = blend_pixels(base, other, 0.4)
    assert out.shape == base.shape and out.dtype == np.uint8
    out_rgb = blend_pixels(np.stack([base] * 3, -1), radiograph(2, size=48), 0.4)
    assert out_rgb.shape == (64, 64, 3)


def test_blend_follow_metrics(bench, ctx):
    probe = Blend(weights=[0.4])
    pair = bench.pairs[1]
    clean = [answer(q, q.correct) for q in queries_of(pair)]
    probed = run(probe, probe.conditions()[0], pair, ctx)
    fooled = [answer(q, "B" if q.image_index == 1 else "A") for q in probed]
    m = probe.extra_metrics(None, clean, fooled, probed)
    assert m == {"n_images": 2, "follows_base": 0.0, "follows_other": 100.0}


# --------------------------------------------------------------------- prompting probes


def test_strategy_probes_set_query_fields(bench, ctx):
    pair = bench.pairs[2]
    cot = run(ChainOfThought(), ChainOfThought().conditions()[0], pair, ctx)
    assert {q.strategy for q in cot} == {"cot"} and ChainOfThought().strategies() == {"cot"}
    persona = ExpertPersona(system_prompt="You are a neuroradiologist.")
    qs = run(persona, persona.conditions()[0], pair, ctx)
    assert {(q.strategy, q.system_prompt) for q in qs} == {
        ("persona", "You are a neuroradiologist.")}
    for q, c in zip(cot + qs, queries_of(pair) * 2):
        assert (q.image.digest, q.options, q.correct) == (c.image.digest, c.options, c.correct)
    with pytest.raises(ConfigError):
        ExpertPersona(system_prompt="  ")


def test_paraphrase_uses_ai_fields_in_displayed_order(bench, ctx):
    pair = bench.pairs[3]
    q1, _ = run(Paraphrase(), Paraphrase().conditions()[0], pair, ctx)
    ai = pair.mediconfusion
    assert q1.question == ai.ai_question and q1.options == ai.ai_options
    assert truth(q1) == pair.correct[0] and q1.meta["paraphrased"] is True
    swapped = tuple(swap_options(q) for q in queries_of(pair))
    s1, _ = Paraphrase().apply(None, pair, swapped, ctx)
    assert s1.options == (ai.ai_options[1], ai.ai_options[0]) and truth(s1) == pair.correct[0]
    other = bench.pairs[4]
    plain = replace(other, mediconfusion=replace(other.mediconfusion, ai_question="",
                                                 ai_options=("", "")))
    p1, p2 = Paraphrase().apply(None, plain, queries_of(plain), ctx)
    assert p1.question == plain.question and p1.meta["paraphrased"] is False
    m = Paraphrase().extra_metrics(None, [], [], [q1, p1, p2])
    assert m == {"paraphrased": 33.33}


def test_paraphrase_refuses_a_benchmark_without_paraphrases(bench):
    Paraphrase().check(bench)
    bare = Benchmark(name="own", pairs=tuple(replace(p, mediconfusion=None) for p in bench))
    with pytest.raises(ConfigError, match="no paraphrased questions"):
        Paraphrase().check(bare)


def test_few_shot_never_uses_the_asked_pair_and_is_deterministic(bench, ctx):
    probe = FewShot(k=4)
    cond = probe.conditions()[0]
    for pair in bench.pairs:
        q1, q2 = run(probe, cond, pair, ctx)
        assert q1.few_shot == q2.few_shot and q1.strategy == "few_shot"
        sources = {e.source_pair_id for e in q1.few_shot}
        assert len(sources) == 4 and pair.pair_id not in sources
        for e in q1.few_shot:
            ex = bench.pair(e.source_pair_id)
            assert not set(ex.image_keys) & set(pair.image_keys)
            image = int(next(s for s in q1.meta["few_shot_examples"]
                             if s.startswith(ex.pair_id + "/")).split("/")[1])
            assert e.answer == ex.correct[image - 1]  # the example's answer is its truth
            assert e.image.digest == pixels_of(ex)[image - 1].digest
        assert sorted(e.answer for e in q1.few_shot) == ["A", "A", "B", "B"]  # balanced
        again = run(probe, cond, pair, ctx)
        assert [e.source_pair_id for e in again[0].few_shot] == \
            [e.source_pair_id for e in q1.few_shot]
    picks = {tuple(e.source_pair_id for e in run(probe, cond, p, ctx)[0].few_shot)
             for p in bench.pairs}
    assert len(picks) > 1  # seeded per pair, not one fixed set
    other_seed = replace(ctx, seed=5)
    assert any(run(probe, cond, p, ctx)[0].few_shot != run(probe, cond, p, other_seed)[0].few_shot
               for p in bench.pairs)


def test_few_shot_category_match_and_errors(bench, ctx):
    probe = FewShot(k=2, match_category=True)
    for pair in bench.pairs[:4]:  # Cerebral pairs p0..p3 (p8 shares p0's image)
        shots = run(probe, probe.conditions()[0], pair, ctx)[0].few_shot
        assert all("Cerebral" in bench.pair(e.source_pair_id).pair_categories for e in shots)
    with pytest.raises(ConfigError, match="k=9"):
        run(FewShot(k=9), FewShot(k=9).conditions()[0], bench.pairs[0], ctx)
    no_loader = ProbeContext(benchmark=bench, seed=0)
    with pytest.raises(ConfigError, match="images of other pairs"):
        run(FewShot(k=1), FewShot(k=1).conditions()[0], bench.pairs[1], no_loader)
    with pytest.raises(ConfigError):
        FewShot(k=0)


# ------------------------------------------------------------------------------ configs


CONFIGS = sorted(PROBE_CONF.glob("*.yaml"))


def test_every_shipped_probe_class_has_a_config():
    """Each concrete Probe class in ``attacks/`` is built by some YAML in ``conf/probe``."""
    import importlib
    import inspect
    import pkgutil

    import attacks

    found = []
    for info in pkgutil.iter_modules(attacks.__path__):
        module = importlib.import_module(f"attacks.{info.name}")
        found += [obj for obj in vars(module).values()
                  if inspect.isclass(obj) and issubclass(obj, Probe)
                  and obj.__module__ == module.__name__ and not inspect.isabstract(obj)]
    leaves = {f"{c.__module__}.{c.__qualname__}" for c in found
              if not any(other is not c and issubclass(other, c) for other in found)}
    assert len(leaves) >= 19 and leaves <= set(TARGETS.values()), leaves - set(TARGETS.values())


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_probe_config_instantiates(path):
    from hydra.utils import instantiate

    lines = path.read_text().splitlines()
    assert lines[0] == f"# @package probe.{path.stem}"
    assert 5 <= len(lines) <= 50
    node = yaml.safe_load(path.read_text())
    if node.get("source", "given") is None:  # needs the user's input (transfer: a run folder)
        with pytest.raises(Exception, match="source is required"):
            instantiate(node)
        assert issubclass(probe_class(path.stem), Probe)
        return
    probe = instantiate(node)
    assert isinstance(probe, Probe) and probe.name == path.stem
    assert type(probe) is probe_class(path.stem)
    conditions = probe.conditions()
    assert conditions and all(c.probe == probe.name for c in conditions)
    assert len({c.name for c in conditions}) == len(conditions)


def test_probe_list_composes_with_hydra(tmp_path):
    from hydra import compose, initialize_config_dir

    (tmp_path / "probe").symlink_to(PROBE_CONF, target_is_directory=True)
    (tmp_path / "config.yaml").write_text(
        "defaults:\n  - probe: [option_swap, gaussian_noise]\n  - _self_\n")
    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
        cfg = compose("config", overrides=["probe=[option_swap,gaussian_noise,blend]",
                                           "probe.gaussian_noise.severities=[2,4]"])
    probes = build_probes(cfg.probe)
    assert [p.name for p in probes] == ["option_swap", "gaussian_noise", "blend"]
    assert [c.name for c in probes[1].conditions()] == ["gaussian_noise@2", "gaussian_noise@4"]


def test_build_probes_names_from_keys_and_rejects_collisions():
    target = {"_target_": "attacks.corruptions.GaussianNoise", "severities": [1]}
    probes = build_probes({"noise_left": {**target, "target": "image1"}, "gaussian_noise": target})
    assert [c.name for p in probes for c in p.conditions()] == ["noise_left@1", "gaussian_noise@1"]
    with pytest.raises(ConfigError, match="also used"):
        build_probes({"a": {**target, "name": "x"}, "b": {**target, "name": "x"}})
    with pytest.raises(ConfigError, match="severity"):
        build_probes({"gaussian_noise": {**target, "severities": [9]}})
    with pytest.raises(ConfigError, match="not a Probe"):
        build_probes({"x": {"_target_": "builtins.dict"}})
    assert build_probes(None) == []


# ------------------------------------------------------- adversarial (separate kind)


class LinearOracle:
    """A toy white-box model: score(A) = w·x/255 + b, score(B) = 0; margin of the right answer."""

    def __init__(self, shape, seed=0, bias=0.0):
        self.w = np.random.default_rng(seed).normal(0, 1, shape)
        self.b = bias
        self.calls = 0

    def score_a(self, pixels: np.ndarray) -> float:
        return float((self.w * pixels).sum() / 255 + self.b)

    def __call__(self, queries, images, labels=None):
        self.calls += 1
        out = []
        labels = labels or [q.correct for q in queries]
        for label, img in zip(labels, images):
            sign = 1.0 if label == "A" else -1.0
            out.append((sign * self.score_a(img), sign * self.w / 255))
        return out


def perturb(attack, condition, pair, clean, oracle, ctx):
    """One pair through an attack (the runner hands it whole batches of pairs)."""
    return attack.perturb(condition, [(pair, clean)], oracle, ctx, {})[0]


def test_fgsm_takes_the_optimal_linf_step_and_stays_in_budget(bench, ctx):
    from attacks.adversarial import FGSM

    pair = bench.pairs[1]
    clean = queries_of(pair)
    oracle = LinearOracle(clean[0].image.pixels.shape)
    attack = FGSM(eps=[2, 4])
    assert [c.name for c in attack.conditions()] == ["fgsm@2", "fgsm@4"]
    adv = perturb(attack, attack.conditions()[1], pair, clean, oracle, ctx)
    for q, c in zip(adv, clean):
        delta = q.image.pixels.astype(int) - c.image.pixels.astype(int)
        assert np.abs(delta).max() <= 4 and q.image.pixels.dtype == np.uint8
        assert (q.correct, q.label_map) == (c.correct, c.label_map)
        before = oracle([c], [c.image.pixels.astype(float)])[0][0]
        after = oracle([q], [q.image.pixels.astype(float)])[0][0]
        interior = (c.image.pixels >= 4) & (c.image.pixels <= 251)
        # a linear margin drops by eps·‖w‖₁ (over pixels the range does not clip)
        assert before - after >= 4 * np.abs(oracle.w[interior]).sum() / 255 - 1e-6


def test_pgd_is_seeded_bounded_and_flips_a_toy_model(bench, ctx):
    from attacks.adversarial import PGD, AdversarialAttack

    pair = bench.pairs[1]
    clean = queries_of(pair)
    shape = clean[0].image.pixels.shape
    oracle = LinearOracle(shape, seed=3)
    # a bias that makes the toy model right on image 1 (truth A) by a small margin
    oracle.b = -oracle.score_a(clean[0].image.pixels.astype(float)) + 1.0
    attack = PGD(eps=[2], steps=5, target="image1")
    cond = attack.conditions()[0]
    assert cond.params == {"eps": 2, "target": "image1", "norm": "linf", "steps": 5,
                           "step_size": 0.25, "random_start": True}
    a1, a2 = perturb(attack, cond, pair, clean, oracle, ctx)
    assert a2.image.digest == clean[1].image.digest  # target=image1 leaves slot 2 alone
    assert oracle.score_a(clean[0].image.pixels.astype(float)) > 0  # right before the attack
    assert oracle.score_a(a1.image.pixels.astype(float)) < 0  # wrong after it
    assert np.abs(a1.image.pixels.astype(int) - clean[0].image.pixels.astype(int)).max() <= 2
    again = perturb(attack, cond, pair, clean, LinearOracle(shape, seed=3, bias=oracle.b), ctx)
    assert again[0].image.digest == a1.image.digest
    one_step = PGD(eps=[8], steps=1, step_size=0.1)
    x = perturb(one_step, one_step.conditions()[0], pair, clean, oracle, ctx)
    y = perturb(one_step, one_step.conditions()[0], pair, clean, oracle, replace(ctx, seed=1))
    assert x[0].image.digest != y[0].image.digest  # the random start follows the run seed
    assert isinstance(attack, Probe) and isinstance(attack, AdversarialAttack)
    zero = perturb(PGD(eps=[0]), PGD(eps=[0]).conditions()[0], pair, clean, oracle, ctx)
    assert [q.image.digest for q in zero] == [q.image.digest for q in clean]  # eps 0: unchanged
    for bad in ({"eps": [-1]}, {"eps": [2, 2]}, {"steps": 0}, {"step_size": 2.0}):
        with pytest.raises(ConfigError):
            PGD(**bad)


def test_pride_survives_extreme_scores(bench, ctx):
    clean_q, swap_q = both_orders(bench, ctx)
    # the same option content in both orders, overwhelmingly: no position prior, no underflow
    clean = [answer(q, "A", {"option_scores": {"A": 0.0, "B": -3000.0}}) for q in clean_q]
    swapped = [answer(q, "B", {"option_scores": {"A": -3000.0, "B": 0.0}}) for q in swap_q]
    m = OptionSwap().extra_metrics(OptionSwap().conditions()[0], clean, swapped, swap_q)
    assert m["pride"]["prior"] == {"A": 0.5, "B": 0.5} and m["order_consistency"] == 100.0
