"""Every model family, proven offline on a tiny random checkpoint built from its transformers
classes: the adapter batched equals unbatched, PS from the prompt's KV cache equals whole
sequences, the four modes run end to end through the family's preset with a pixel probe, and
Integrated Gradients explains the adapter's own score. ``docs/models.md``'s verification table
lists exactly what these tests prove."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from explain.methods import IntegratedGradients
from explain.scoring import AnswerScorer
from explain.whitebox import WhiteBoxScorer
from robustness.cli import main
from robustness.data.image import ImageInput
from robustness.errors import ConfigError
from robustness.models.base import (GenerateRequest, GenerateResult, GenerationSettings,
                                    LoglikelihoodRequest,
                                    NextTokenRequest, Prompt, text_message)
from robustness.models.hf import HFAdapter
from robustness.modes import mode_from_config
from robustness.testing.tiny_families import PRESETS
from robustness.testing.tiny_models import make_queries
from tests.helpers.model_fixtures import FAMILIES

TOL = 1e-4
# the family spec each checkpoint's model_type selects (SmolVLM shares Idefics3's quirks)
SPEC = {**{f: f for f in FAMILIES}, "qwen2_5_vl": "qwen2_vl", "smolvlm": "idefics3"}


def prompts(n: int) -> list[Prompt]:
    return [Prompt(messages=(text_message("user", f"{q.question} A: {q.options[0]} B: "
                                                  f"{q.options[1]}", with_image=True),),
                   images=(q.image,)) for q in make_queries(n)]


def adapter(path, batch_size: int = 1, **kw) -> HFAdapter:
    return HFAdapter(path, batch_size=batch_size, device="cpu", dtype="float32", **kw)


@pytest.mark.parametrize("family", FAMILIES)
def test_batched_equals_unbatched_and_prefix_cache_equals_sequences(build_family, family):
    path = build_family(family)
    one, three = adapter(path, 1), adapter(path, 3)
    assert one.spec.name == SPEC[family]
    gen = [GenerateRequest(p, GenerationSettings(max_new_tokens=4)) for p in prompts(5)]
    a, b = one.generate(gen), three.generate(gen)
    assert all(r.error is None for r in a + b)
    assert [r.text for r in a] == [r.text for r in b]

    nxt = [NextTokenRequest(p, ("A", "B")) for p in prompts(5)]
    a, b = one.next_token_scores(nxt), three.next_token_scores(nxt)
    for x, y in zip(a, b):
        assert x.logprobs["A"] == pytest.approx(y.logprobs["A"], abs=TOL)
        assert x.logprobs["B"] == pytest.approx(y.logprobs["B"], abs=TOL)
    assert len({round(r.logprobs["A"], 4) for r in a}) > 1  # image and text matter

    scored = [LoglikelihoodRequest(p, q.options) for p, q in zip(prompts(5), make_queries(5))]
    paths = ["sequences"] + (["prefix_cache"] if one.spec.prefix_cache else [])
    runs = [adapter(path, bs, score_with=how).loglikelihood(scored)
            for how in paths for bs in (1, 3)]
    reference = runs[0]
    for results in runs:
        assert all(r.error is None for r in results)
        for x, y in zip(reference, results):
            for s, t in zip(x.scores, y.scores):
                assert s.n_tokens == t.n_tokens
                assert s.logprob == pytest.approx(t.logprob, abs=TOL)


def swapped_prompts(n: int, flip: bool = False) -> list[Prompt]:
    """``prompts(n)`` with the options swapped (text after the image changes), optionally on
    mirrored pixels (the same tokens over different images)."""
    out = []
    for q in make_queries(n):
        image = ImageInput(q.image.pixels[:, ::-1].copy()) if flip else q.image
        out.append(Prompt(messages=(text_message("user", f"{q.question} A: {q.options[1]} B: "
                                                         f"{q.options[0]}", with_image=True),),
                          images=(image,)))
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_image_prefix_reuse_answers_exactly_as_without_it(build_family, family):
    path = build_family(family)
    plain, reuse = adapter(path, 3, image_prefix_mb=0), adapter(path, 2)
    settings = GenerationSettings(max_new_tokens=4)
    reuse.generate([GenerateRequest(p, settings) for p in prompts(6)])  # records the prefixes
    for requests in ([GenerateRequest(p, settings) for p in swapped_prompts(5)],
                     [NextTokenRequest(p, ("A", "B")) for p in swapped_prompts(5)]):
        run = reuse.generate if isinstance(requests[0], GenerateRequest) else \
            reuse.next_token_scores
        got, want = run(requests), (plain.generate if run == reuse.generate
                                    else plain.next_token_scores)(requests)
        assert all(r.error is None for r in got + want)
        for g, w in zip(got, want):
            if isinstance(g, GenerateResult):
                assert g.text == w.text
                assert g.usage.input_tokens == w.usage.input_tokens
            else:
                assert g.logprobs["A"] == pytest.approx(w.logprobs["A"], abs=TOL)
                assert g.logprobs["B"] == pytest.approx(w.logprobs["B"], abs=TOL)
    stats = reuse.stats()
    if not reuse.spec.image_prefix_reuse:
        assert "image_prefixes" not in stats
        return
    assert stats["image_prefixes"]["reused"] == 10  # every swapped request, both kinds
    mirrored = [NextTokenRequest(p, ("A", "B")) for p in swapped_prompts(5, flip=True)]
    got, want = reuse.next_token_scores(mirrored), plain.next_token_scores(mirrored)
    assert reuse.stats()["image_prefixes"]["reused"] == 10  # other pixels: nothing reused
    for g, w in zip(got, want):
        assert g.logprobs["A"] == pytest.approx(w.logprobs["A"], abs=TOL)


@pytest.mark.parametrize("family", FAMILIES)
def test_stored_image_features_answer_exactly_as_the_vision_tower(build_family, family):
    path = build_family(family)
    plain = adapter(path, 3, image_prefix_mb=0, image_features_mb=0)
    reuse = adapter(path, 2, image_prefix_mb=0)
    settings = GenerationSettings(max_new_tokens=4)
    reuse.generate([GenerateRequest(p, settings) for p in prompts(6)])  # stores the features
    swapped = swapped_prompts(5)
    got = reuse.generate([GenerateRequest(p, settings) for p in swapped])
    want = plain.generate([GenerateRequest(p, settings) for p in swapped])
    assert [g.text for g in got] == [w.text for w in want]
    got = reuse.next_token_scores([NextTokenRequest(p, ("A", "B")) for p in swapped])
    want = plain.next_token_scores([NextTokenRequest(p, ("A", "B")) for p in swapped])
    for g, w in zip(got, want):
        assert g.logprobs["A"] == pytest.approx(w.logprobs["A"], abs=TOL)
    scored = [LoglikelihoodRequest(p, q.options) for p, q in zip(prompts(5), make_queries(5))]
    for how in ["sequences"] + (["prefix_cache"] if plain.spec.prefix_cache else []):
        reuse.score_with = plain.score_with = how
        for g, w in zip(reuse.loglikelihood(scored), plain.loglikelihood(scored)):
            assert g.error is None and w.error is None
            for s, t in zip(g.scores, w.scores):
                assert s.logprob == pytest.approx(t.logprob, abs=TOL)
    stats = reuse.stats()
    if not reuse.spec.image_features_reuse:
        assert "image_features" not in stats
        return
    assert stats["image_features"]["encoded"] == 6  # each image once, whatever asked for it
    assert stats["image_features"]["reused"] >= 5 + 5 + 5 * 2


@pytest.mark.parametrize("family", ["blip2", "instructblip"])
def test_families_without_a_prefix_cache_refuse_it_in_one_line(build_family, family):
    scored = [LoglikelihoodRequest(prompts(1)[0], ("left", "right"))]
    with pytest.raises(ConfigError, match="score_with=prefix_cache.*score_with=sequences"):
        adapter(build_family(family), score_with="prefix_cache").loglikelihood(scored)


@pytest.mark.parametrize("family", FAMILIES)
def test_four_modes_end_to_end_through_the_preset_with_a_pixel_probe(build_family, family,
                                                                      tmp_path):
    path = build_family(family)
    common = [f"model={PRESETS[family]}", f"model.model_id={path}", "model.revision=null",
              "model.dtype=float32", "model.device=cpu", "model.local_files_only=true",
              "model.batch_size=4", "dataset=phantom", "dataset.pairs=2", "dataset.size=64",
              "probe=[option_swap,gaussian_blur]", "probe.gaussian_blur.severities=[4]",
              "logger=none", "explain=none", "resamples=50", "progress=false",
              f"cache.dir={tmp_path / 'cache'}"]
    for modes, extra, sweep in (("mc,ff", ["mode.max_new_tokens=4"], "generating"),
                                ("gd,ps", [], "scoring")):
        assert main(["-m", f"mode={modes}", *extra, *common,
                     f"hydra.sweep.dir={tmp_path / 'sweep' / sweep}"]) == 0
    jobs = sorted(p for p in (tmp_path / "sweep").glob("*/*") if (p / "summary.json").is_file())
    assert sorted(json.loads((j / "summary.json").read_text())["mode"] for j in jobs) == \
        ["ff", "gd", "mc", "ps"]
    for job in jobs:
        summary = json.loads((job / "summary.json").read_text())
        assert list(summary["conditions"]) == ["clean", "option_swap", "gaussian_blur@4"]
        assert summary["failures"] == {}, summary["failures"]
        blurred = [json.loads(x) for x in
                   (job / "predictions" / "gaussian_blur@4.jsonl").read_text().splitlines()]
        clean = [json.loads(x) for x in
                 (job / "predictions" / "clean.jsonl").read_text().splitlines()]
        assert len(blurred) == 4 and all(r["choice"] in ("A", "B", None) for r in blurred)
        assert all(b["query"]["image_sha256"] != c["query"]["image_sha256"]
                   for b, c in zip(blurred, clean))  # the probe changed what the model saw


def smooth(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32]
    img = 128 + 70 * np.sin(xx / 5 + rng.uniform(0, 6)) * np.cos(yy / 6 + rng.uniform(0, 6))
    img = np.clip(img, 0, 255).astype(np.uint8)
    return np.stack([img, 255 - img, img // 2], axis=-1)


@pytest.mark.parametrize("family", FAMILIES)
def test_integrated_gradients_explains_the_adapters_own_score(build_family, family):
    ad, mode = adapter(build_family(family), 4), mode_from_config("gd")
    q = replace(make_queries(1)[0], image=ImageInput(smooth(1)))
    ig = IntegratedGradients(n_steps=8, internal_batch_size=8)
    expected = AnswerScorer(ad, mode).margins([q], ["A"])[0]
    scorer = WhiteBoxScorer(ad, mode)
    got = float(scorer.function(q, "A")(torch.tensor(q.image.pixels,
                                                     dtype=torch.float32)[None])[0].detach())
    # the float path runs the family's own processor on tensors: equal up to resampling noise
    # (SmolVLM's splitting resizes the image up and its global view down: more of it)
    assert got == pytest.approx(expected, abs=0.05 if family == "smolvlm" else 0.02)
    (m,) = ig.attribute(ad, mode, [q], ["A"])
    assert m.attributions.shape == q.image.pixels.shape
    assert np.isfinite(m.attributions).all() and np.abs(m.attributions).sum() > 0


def test_a_processor_that_tiles_is_refused_for_white_box_methods_in_one_line(build_family):
    """InternVL cuts a non-square image into crops plus a thumbnail, which the differentiable
    path does not reproduce: IG says so (occlusion works on any model)."""
    ad, mode = adapter(build_family("internvl"), 4), mode_from_config("gd")
    wide = np.concatenate([smooth(1), smooth(2)[:, :8]], axis=1)  # 32 × 40
    q = replace(make_queries(1)[0], image=ImageInput(wide))
    with pytest.raises(ConfigError, match="use explain=occlusion"):
        IntegratedGradients(n_steps=8, internal_batch_size=8).attribute(ad, mode, [q], ["A"])
