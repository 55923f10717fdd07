"""Saliency in an experiment: SaliencyRun on a phantom set, its configs, and the real app."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from tests.helpers.paths import ROOT
from robustness.modes import mode_from_config
from robustness.errors import ConfigError
from tests.helpers.explain_support import (FormulaAdapter, RecordingTracker, answer, phantom_benchmark,
                                  queries_of)

from explain.grounding import finding
from explain.methods import IntegratedGradients, Occlusion
from explain.run import SaliencyRun, select_pairs

CONTRACT = {"method", "n_images", "mask_energy_ratio", "pointing_game", "image_reliance",
            "per_family"}



@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    bench = phantom_benchmark(tmp_path_factory.mktemp("ph") / "set", pairs=6, size=64)
    return bench, queries_of(bench)


def test_occlusion_on_a_grounded_model_scores_high_and_writes_everything(phantom, tmp_path):
    bench, queries = phantom
    model = FormulaAdapter(lambda px, text: 0.0)
    masks = {}
    for q in queries.values():
        truth = finding(bench, bench.pair(q.pair_id), q.image_index)
        masks[q.key] = truth.mask if truth.abnormal else None

    class PerQuery(Occlusion):
        """Occlusion of a model that reads only the current image's finding region (its mask;
        the whole image when it has no finding): its saliency must sit on the masks."""

        def attribute(self, adapter, mode, qs, targets):
            out = []
            for q, t in zip(qs, targets):
                region = masks[q.key]
                model.formula = (lambda px, text, r=region:
                                 (px[r].mean() if r is not None else px.mean()) / 50.0)
                self._scorers.clear()
                out += super().attribute(adapter, mode, [q], [t])
            return out

    answers = {k: answer(q, "A") for k, q in queries.items()}
    tracker = RecordingTracker()
    run = SaliencyRun(PerQuery(window=8, stride=4), pairs=4, parts=False, under_probes=False)
    summary = run.explain(model, mode_from_config("gd"), bench, queries, answers, tmp_path,
                          tracker)
    assert CONTRACT <= set(summary)
    assert summary["method"] == "occlusion" and summary["n_images"] == 8
    assert summary["n_abnormal"] >= 4
    assert summary["mask_energy_ratio"] > 5
    # fewer than 10 abnormal images: the count, but no pointing rate (a random model on 4
    # images points right 75% of the time)
    assert summary["pointing_game"] is None and summary["pointing_game_n"] == summary["n_abnormal"]
    assert all(r["pointing_hit"] for r in json.loads(
        (tmp_path / "saliency" / "images.json").read_text())["images"] if r["pointing_hit"] is not None)
    assert summary["mask_energy_gain"] == pytest.approx(
        summary["mask_energy_ratio"] / summary["model_free_mask_energy_ratio"], rel=0.01)
    assert sum(f["n_images"] for f in summary["per_family"].values()) == summary["n_abnormal"]
    assert summary["image_reliance"] is None  # parts were switched off
    folder = tmp_path / "saliency"
    assert sorted(p.name for p in folder.glob("*.png")) == sorted(
        f"{pid}.png" for pid in summary["pairs"])
    from PIL import Image

    from explain.overlay import MASK_COLOUR, PANEL

    overlay = np.asarray(Image.open(folder / f"{summary['pairs'][0]}.png").convert("RGB"))
    assert overlay.shape[1] == 2 * PANEL + 3 * 12 and overlay.shape[0] > PANEL
    assert np.all(overlay == MASK_COLOUR, axis=-1).sum() > 20  # the finding's outline is drawn
    maps = np.load(folder / "maps.npz")
    assert len(maps.files) == 8 and maps[maps.files[0]].shape == (64, 64)
    detail = json.loads((folder / "images.json").read_text())
    assert {r["pair_id"] for r in detail["images"]} == set(summary["pairs"])
    assert len(tracker.examples["saliency"]) == 4
    table = tracker.tables["saliency"]
    assert len(table.rows) == 8 and "mask_energy_ratio" in table.columns


def test_chosen_target_probes_and_parts(phantom, tmp_path):
    bench, queries = phantom
    model = FormulaAdapter(lambda px, text: px.mean() / 100.0 + 0.3 * ("?" in text))
    answers = {k: answer(q, "B" if k[1] == 1 else None) for k, q in queries.items()}

    def probe_queries(condition, pair):  # a brightening "probe": same maps up to scale
        from dataclasses import replace

        from robustness.data.image import ImageInput

        return [replace(queries[(pair.pair_id, i)], image=ImageInput(np.clip(
            queries[(pair.pair_id, i)].image.pixels.astype(int) + 10, 0, 255).astype(np.uint8)))
            for i in (1, 2)]

    run = SaliencyRun(Occlusion(window=16, stride=16), pairs=2, select="first", probe_pairs=1)
    tracker = RecordingTracker()
    summary = run.explain(model, mode_from_config("gd"), bench, queries, answers, tmp_path,
                          tracker, probe_queries=probe_queries, conditions=["brighter"])
    rows = json.loads((tmp_path / "saliency" / "images.json").read_text())["images"]
    assert [r["target_source"] for r in rows] == ["chosen", "correct (invalid answer)"] * 2
    assert rows[0]["target"] == "B" and rows[0]["margin"] < 0  # B is the weaker letter here
    assert 0 < summary["image_reliance"] < 100
    assert set(summary["part_shares"]) == {"image", "question", "option_A", "option_B"}
    probe = summary["under_probes"]["brighter"]
    assert probe["n_images"] == 2 and probe["rank_correlation"] > 0.9
    assert "saliency_under_probes" in tracker.tables


def test_pair_selection(phantom):
    bench, _ = phantom
    first = select_pairs(bench, 3, "first")
    assert [p.pair_id for p in first] == [p.pair_id for p in bench.pairs[:3]]
    diverse = select_pairs(bench, 3, "diverse")
    families = [p.extra["phantom"]["family"] for p in diverse]
    assert len(set(families)) == len(families)
    assert [p.pair_id for p in select_pairs(bench, 9, pair_ids=[bench.pairs[2].pair_id])] == \
        [bench.pairs[2].pair_id]
    with pytest.raises(ConfigError, match="not in the benchmark"):
        select_pairs(bench, 1, pair_ids=["nope"])


def test_a_model_the_method_cannot_explain_fails_or_is_skipped_as_configured(phantom, tmp_path):
    """Integrated Gradients needs gradients: a scores-only model is a one-line config error when
    asked for explicitly, and skipped (no saliency block) under the default experiment's
    ``if_unsupported: skip``."""
    bench, queries = phantom
    model = FormulaAdapter(lambda px, text: px.mean() / 100.0)
    answers = {k: answer(q, "A") for k, q in queries.items()}
    with pytest.raises(ConfigError):
        SaliencyRun(IntegratedGradients(), pairs=1).explain(
            model, mode_from_config("gd"), bench, queries, answers, tmp_path)
    skipped = SaliencyRun(IntegratedGradients(), pairs=1, if_unsupported="skip").explain(
        model, mode_from_config("gd"), bench, queries, answers, tmp_path)
    assert skipped == {} and not (tmp_path / "saliency").exists()


def test_the_default_experiment_explains_a_few_pairs_and_skips_what_it_cannot():
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        cfg = compose(config_name="config")
    run = instantiate(cfg.explain, _convert_="all")
    assert isinstance(run.method, IntegratedGradients) and 1 <= run.pairs <= 4
    assert run.if_unsupported == "skip"


@pytest.mark.parametrize("kwargs", [{"pairs": 0}, {"select": "best"}, {"target": "wrong"},
                                    {"sign": "signed"}, {"tolerance": 2.0},
                                    {"if_unsupported": "ignore"}])
def test_bad_settings_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        SaliencyRun(Occlusion(), **kwargs)


@pytest.mark.parametrize("kwargs", [{"n_steps": 0}, {"baseline": "white"}, {"method": "simpson"}])
def test_bad_method_settings_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        IntegratedGradients(**kwargs)
    with pytest.raises(ConfigError):
        Occlusion(window=1.5)


@pytest.mark.parametrize("choice,cls", [("integrated_gradients", IntegratedGradients),
                                        ("occlusion", Occlusion)])
def test_explain_configs_compose_and_build(choice, cls):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        cfg = compose(config_name="config", overrides=[f"explain={choice}", "explain.pairs=3",
                                                        "model=llava_1_5"])
    run = instantiate(cfg.explain, _convert_="all")
    assert isinstance(run, SaliencyRun) and isinstance(run.method, cls) and run.pairs == 3


def test_the_app_explains_a_phantom_run_and_logs_it(tiny_llava, tmp_path):
    """The real Hydra app, HF adapter (tiny LLaVA), GD mode, phantom set, a probe, W&B offline:
    summary.json gains the saliency block, overlays land in saliency/, W&B gets them."""
    from robustness.cli import main
    from tests.helpers.wandb_records import run_facts

    run = tmp_path / "run"
    code = main(["model=llava_1_5", f"model.model_id={tiny_llava}", "model.dtype=float32",
                 "model.device=cpu", "model.revision=null", "model.local_files_only=true",
                 "mode=gd", "dataset=phantom", "dataset.pairs=2", "dataset.size=64",
                 "probe=[gaussian_noise]", "probe.gaussian_noise.severities=[3]",
                 "explain=integrated_gradients", "explain.pairs=1", "explain.method.n_steps=8",
                 f"cache.dir={tmp_path / 'cache'}", f"hydra.run.dir={run}", "progress=false",
                 "resamples=50", "logger=wandb"])
    assert code == 0
    summary = json.loads((run / "summary.json").read_text())
    saliency = summary["saliency"]
    assert CONTRACT <= set(saliency) and saliency["method"] == "integrated_gradients"
    assert saliency["n_images"] == 2
    # the config's baseline: expected gradients over images of the run's other pair
    assert saliency["settings"]["baseline"] == "dataset"
    assert saliency["settings"]["n_references"] == 8
    assert 0 <= saliency["image_reliance"] <= 100
    assert "gaussian_noise@3" in saliency["under_probes"]
    assert len(list((run / "saliency").glob("*.png"))) == 1
    facts = run_facts(run)
    for _ in range(50):  # the offline run file may get its exit record a moment after exit
        if facts["exit_code"] is not None:
            break
        time.sleep(0.2)
        facts = run_facts(run)
    assert facts["exit_code"] == 0
    assert facts["summary"]["examples/saliency/count"] == 1  # the overlay, as a W&B image
    assert facts["summary"]["saliency/nrows"] == 2  # the per-image table
    assert facts["summary"]["run"]["saliency"]["n_images"] == 2  # the W&B run summary
