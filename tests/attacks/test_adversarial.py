"""White-box attacks as run conditions on the shipped reference model: budgets in grey levels,
success that grows with the budget, the confusion attack, transfer sets within their budget."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from attacks.adversarial import PGD, distances, project, ssim
from robustness.cli import main
from robustness.data.image import ImageInput

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def attacked(tmp_path_factory) -> Path:
    """One GD run on 8 phantom pairs: PGD at 0, 2 and 8 grey levels, the confusion attack at 8."""
    tmp = tmp_path_factory.mktemp("attack")
    code = main(["model=reference", "mode=gd", "dataset.pairs=8", "logger=wandb", "explain=none",
                 "probe=[pgd,pgd_confusion]", "probe.pgd.eps=[0,2,8]", "probe.pgd.steps=5",
                 "probe.pgd_confusion.eps=[8]", "probe.pgd_confusion.steps=5",
                 f"cache.dir={tmp / 'cache'}", f"hydra.run.dir={tmp / 'run'}", "resamples=100"])
    assert code == 0
    return tmp / "run"


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def records(run: Path, condition: str) -> list[dict]:
    return [json.loads(x) for x in (run / "predictions" / f"{condition}.jsonl").read_text()
            .splitlines()]


def test_a_zero_budget_answers_exactly_as_clean(attacked):
    clean, zero = records(attacked, "clean"), records(attacked, "pgd@0")
    assert [r["choice"] for r in zero] == [r["choice"] for r in clean]
    assert [r["query"]["image_sha256"] for r in zero] == [r["query"]["image_sha256"]
                                                          for r in clean]
    metrics = summary(attacked)["conditions"]["pgd@0"]["probe_metrics"]
    assert metrics["attack_success_rate"] == 0 and metrics["linf_mean"] == 0


def test_success_grows_with_the_budget_and_pgd_at_8_breaks_most(attacked):
    conds = summary(attacked)["conditions"]
    rates = [conds[f"pgd@{e}"]["probe_metrics"]["attack_success_rate"] for e in (0, 2, 8)]
    assert rates == sorted(rates) and rates[-1] > 50
    acc = [conds[c]["overall"]["set_accuracy"] for c in ("clean", "pgd@2", "pgd@8")]
    assert acc[2] < acc[1] < acc[0]
    m8 = conds["pgd@8"]["probe_metrics"]
    assert m8["linf_mean"] <= 8 and 20 < m8["psnr_mean"] < 60 and 0 < m8["ssim_mean"] < 1
    smallest = m8["min_eps_per_pair"]
    assert set(smallest) == {f"ph0-{i:04d}" for i in range(1, 9)}
    assert set(smallest.values()) <= {None, 2, 8}
    assert smallest == conds["pgd@2"]["probe_metrics"]["min_eps_per_pair"]  # one per attack
    assert conds["pgd@8"]["probe"]["params"]["eps"] == 8


def test_the_confusion_attack_makes_the_model_answer_both_images_alike(attacked):
    conds = summary(attacked)["conditions"]
    clean = conds["clean"]["overall"]["confusion"]
    assert conds["pgd_confusion@8"]["overall"]["confusion"] >= clean + 25
    metrics = conds["pgd_confusion@8"]["probe_metrics"]
    assert metrics["attacked_images"] <= 8  # one image per pair at most


def test_saved_adversarial_images_lie_within_their_budget(attacked):
    clean_pixels = {}
    from robustness.data.mediconfusion import load_benchmark

    bench_path = summary(attacked)["benchmark"]["path"]
    bench = load_benchmark(bench_path, require_images=True)
    for pair in bench:
        for i, path in enumerate(pair.images, start=1):
            clean_pixels[(pair.pair_id, i)] = ImageInput.open(path)
    for condition, eps in (("pgd@2", 2), ("pgd@8", 8), ("pgd_confusion@8", 8)):
        folder = attacked / "adversarial" / condition
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["benchmark_hash"] == summary(attacked)["benchmark"]["content_hash"]
        assert manifest["surrogate"]["model_id"].endswith("reference")
        assert manifest["attack"]["params"]["eps"] == eps and manifest["images"]
        for entry in manifest["images"]:
            adv = ImageInput.open(folder / entry["file"])  # lossless: the exact pixels
            src = clean_pixels[(entry["pair_id"], entry["image"])]
            assert adv.digest == entry["adversarial_sha256"]
            assert src.digest == entry["source_sha256"]
            delta = adv.pixels.astype(int) - src.pixels.astype(int)
            assert np.abs(delta).max() <= eps


def test_attack_runs_log_adversarial_sets_and_budget_curves(attacked):
    from tests.helpers.wandb_records import run_facts

    facts = run_facts(attacked)
    sets = {a["metadata"]["condition"]: a for a in facts["artifacts"]
            if a["type"] == "adversarial-set"}
    assert set(sets) == {"pgd@0", "pgd@2", "pgd@8", "pgd_confusion@8"}
    assert not sets["pgd@8"]["used"] and "manifest.json" in sets["pgd@8"]["paths"]
    assert sum(p.endswith(".png") for p in sets["pgd@8"]["paths"]) == 16
    rows = [r for r in facts["history"] if "curve/pgd/eps" in r]
    assert [r["curve/pgd/eps"] for r in rows] == [0, 2, 8]
    rates = summary(attacked)["conditions"]
    assert rows[2]["curve/pgd/attack_success_rate"] == \
        rates["pgd@8"]["probe_metrics"]["attack_success_rate"]
    html = (attacked / "report.html").read_text()
    assert "<h2>Attacks</h2>" in html and "pgd: attack success" in html


def test_attacks_refuse_what_cannot_work_before_any_work(tmp_path, capsys):
    base = ["probe=[pgd]", "dataset.pairs=2", "logger=none", "explain=none",
            f"cache.dir={tmp_path}", f"hydra.run.dir={tmp_path / 'run'}"]
    assert main([*base, "mode=ff"]) == 2
    assert "FF answers are judged free text" in capsys.readouterr().err
    assert main([*base, "model=gpt4o"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs gradients" in err[0]
    assert not (tmp_path / "run" / "summary.json").exists()


def test_budgets_and_projection():
    clean = np.full((8, 8), 100.0)
    assert np.abs(project(clean, clean + 50, 4, "linf") - clean).max() == 4
    moved = project(clean, clean + np.arange(64).reshape(8, 8), 2, "l2")
    assert np.linalg.norm(moved - clean) <= 2 * 8 + 1e-9  # radius eps * sqrt(pixels)
    with pytest.raises(Exception, match="eps must be integers"):
        PGD(eps=[-1])
    with pytest.raises(Exception, match="norm must be one of"):
        PGD(norm="l1")
    img = (np.arange(256, dtype=np.uint8).reshape(16, 16))
    assert ssim(img, img) == pytest.approx(1.0)
    d = distances(img, img)
    assert d["linf"] == 0 and d["psnr"] is None and d["ssim"] == pytest.approx(1.0)


def transfer_args(source: Path, tmp: Path, run: str, *extra: str) -> list[str]:
    return ["dataset.pairs=8", "logger=none", "explain=none", "probe=[transfer]",
            f"probe.transfer.source={source}", f"cache.dir={tmp / 'cache'}",
            f"hydra.run.dir={tmp / run}", "resamples=100", *extra]


def test_a_transfer_set_replays_on_another_model(attacked, tmp_path):
    assert main(transfer_args(attacked, tmp_path, "biased", "model=reference_biased",
                              "mode=gd")) == 0
    conds = summary(tmp_path / "biased")["conditions"]
    assert list(conds) == ["clean", "transfer@pgd@0", "transfer@pgd@2", "transfer@pgd@8",
                           "transfer@pgd_confusion@8"]
    assert conds["transfer@pgd@8"]["probe"]["params"]["surrogate"].endswith("reference")
    assert [r["choice"] for r in records(tmp_path / "biased", "transfer@pgd@0")] == \
        [r["choice"] for r in records(tmp_path / "biased", "clean")]
    assert conds["transfer@pgd@8"]["probe_metrics"]["replayed_images"] == 16


def test_a_transfer_set_replays_on_a_loopback_api_model(attacked, tmp_path, monkeypatch):
    from robustness.testing.fake_api import fake_api_server

    monkeypatch.setenv("OPENAI_API_KEY", "sk-loopback-0123456789")
    with fake_api_server() as server:
        assert main(transfer_args(attacked, tmp_path, "api", "model=gpt4o",
                                  f"model.base_url={server.openai_base_url}", "mode=mc",
                                  "probe.transfer.conditions=[pgd@8]")) == 0
    conds = summary(tmp_path / "api")["conditions"]
    assert list(conds) == ["clean", "transfer@pgd@8"] and conds["transfer@pgd@8"]["n_answers"] == 16


def test_a_transfer_set_from_another_benchmark_is_refused(attacked, tmp_path, capsys):
    args = transfer_args(attacked, tmp_path, "other", "model=reference", "mode=gd")
    assert main([*args, "dataset.pairs=4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "was made on another benchmark" in err[0]


def test_the_gate_compares_attack_conditions_like_any_probe(attacked):
    import robustness

    verdict = robustness.gate.compare(attacked, attacked, rules="strict")
    checks = {c.name: c for c in verdict.checks}
    assert verdict.verdict == "pass" and "pgd@8/set_accuracy_shift" in checks
    success = checks["pgd@8/attack_success_rate"]
    recorded = summary(attacked)["conditions"]["pgd@8"]["probe_metrics"]["attack_success_rate"]
    assert success.baseline == pytest.approx(recorded, abs=0.01) and success.gating
    assert "option_swap/order_consistency" not in checks


def test_batched_gradients_equal_one_image_at_a_time(tmp_path):
    """The oracle's left-padded batches give the margins and gradients of single passes."""
    from explain.whitebox import AdapterGradientOracle
    from robustness.data.query import clean_queries
    from robustness.models.hf import HFAdapter
    from robustness.modes import mode_from_config
    from robustness.reference import checkpoint_path
    from robustness.sources import PhantomSource

    adapter = HFAdapter(checkpoint_path("reference"), device="cpu", dtype="float32",
                        local_files_only=True)
    bench = PhantomSource(pairs=3, cache_dir=tmp_path).load()
    queries = [q for p in bench for q in clean_queries(
        p, (ImageInput.open(p.images[0]), ImageInput.open(p.images[1])))]
    assert len({q.question for q in queries}) > 1  # prompts of different lengths: padding
    images = [q.image.pixels.astype(np.float64) + 3.0 for q in queries]
    for mode in ("mc", "gd"):
        batched = AdapterGradientOracle(adapter, mode_from_config(mode), batch_size=6)
        single = AdapterGradientOracle(adapter, mode_from_config(mode), batch_size=1)
        for (m1, g1), (m2, g2) in zip(batched(queries, images), single(queries, images)):
            assert m1 == pytest.approx(m2, abs=1e-4)
            assert np.allclose(g1, g2, atol=1e-6 * max(1e-12, np.abs(g2).max()) + 1e-9)
