"""Work a run never repeats: text-only probes continue from the clean prompts' stored KV cache
and vision features with the same answers, PS under option swap is served from the cache (its
prompt shows no options), saliency maps are cached like answers, and graded probes are
re-explained at one level by default."""

from __future__ import annotations

import json

from explain.run import one_level_per_probe
from robustness.cli import main


def run(tmp_path, name: str, *extra: str) -> dict:
    assert main(["dataset.pairs=4", "resamples=100", "progress=false", "logger=none",
                 f"cache.dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / name}",
                 *extra]) == 0
    return json.loads((tmp_path / name / "summary.json").read_text())


def predictions(run_dir) -> dict[str, list]:
    return {p.stem: [(r["choice"], r["raw"]["text"]) for r in map(json.loads,
                                                                   p.read_text().splitlines())]
            for p in sorted((run_dir / "predictions").glob("*.jsonl"))}


def test_text_only_probes_reuse_the_clean_prompts_with_the_same_answers(tmp_path):
    probes = "probe=[option_swap,expert_persona,gaussian_noise]"
    on = run(tmp_path, "on", "mode=mc", probes, "explain=none", "cache.enabled=false")
    off = run(tmp_path, "off", "mode=mc", probes, "explain=none", "cache.enabled=false",
              "model.image_prefix_mb=0", "model.image_features_mb=0")
    assert predictions(tmp_path / "on") == predictions(tmp_path / "off")
    stats = on["model_stats"]
    assert stats["image_prefixes"]["reused"] == 8  # option swap's 8 questions, nothing else
    assert stats["image_prefixes"]["reused_tokens"] > 8 * 65  # the image and the question
    assert stats["image_features"]["encoded"] == 8 + 8 * 5  # clean once, each noise level
    assert stats["image_features"]["reused"] == 8  # persona (option swap needs no features)
    assert stats["image_features"]["pixels_reused"] == 8 + 8  # option swap and persona
    assert "image_prefixes" not in off["model_stats"]


def test_ps_under_option_swap_asks_the_model_nothing(tmp_path):
    summary = run(tmp_path, "ps", "mode=ps", "probe=[option_swap]", "explain=none")
    clean, swap = summary["conditions"]["clean"], summary["conditions"]["option_swap"]
    assert clean["cache"]["misses"] == 8 and swap["cache"]["misses"] == 0
    assert swap["cache"]["hits"] == 8
    records = {c: [json.loads(x) for x in (tmp_path / "ps" / "predictions" / f"{c}.jsonl")
                   .read_text().splitlines()] for c in ("clean", "option_swap")}
    for a, b in zip(records["clean"], records["option_swap"]):
        assert a["choice"] == b["choice"]  # the same option, shown in the other slot
        scores_a, scores_b = a["raw"]["option_scores"], b["raw"]["option_scores"]
        assert (scores_a["A"], scores_a["B"]) == (scores_b["B"], scores_b["A"])


def test_a_rerun_recomputes_no_saliency_map(tmp_path):
    args = ("probe=[option_swap,gaussian_noise]", "probe.gaussian_noise.severities=[2,3,4]",
            "explain.pairs=1", "explain.probe_pairs=1", "explain.method.n_references=2")
    first = run(tmp_path, "first", *args)
    second = run(tmp_path, "second", *args)
    a, b = first["saliency"], second["saliency"]
    assert b["elapsed_s"]["maps"] < 0.5 * max(a["elapsed_s"]["maps"], 0.2)
    assert list(a["under_probes"]) == ["option_swap", "gaussian_noise@3"]  # one level per probe
    for key in ("mask_energy_ratio", "pairs", "completeness_gap", "image_reliance"):
        assert a[key] == b[key], key
    maps = sorted((tmp_path / "cache" / "saliency").rglob("*.npz"))
    assert len(maps) == 2 + 2 * 2  # clean + two probe conditions, two images each
    third = run(tmp_path, "third", *args, "explain.probe_levels=all")
    assert list(third["saliency"]["under_probes"]) == ["option_swap", *(
        f"gaussian_noise@{s}" for s in (2, 3, 4))]


def test_one_level_per_probe_keeps_the_middle_and_the_rest():
    names = ["option_swap", "gaussian_noise@1", "gaussian_noise@2", "gaussian_noise@3",
             "pgd@0", "pgd@2", "pgd@8", "expert_persona"]
    assert one_level_per_probe(names) == ["option_swap", "gaussian_noise@2", "pgd@2",
                                          "expert_persona"]


def test_a_rerun_draws_no_corruption_and_its_report_images_are_the_same(tmp_path, monkeypatch):
    from attacks.corruptions import ImageCorruption

    args = ("probe=[gaussian_noise]", "explain=none", "examples=1")
    run(tmp_path, "first", *args)

    def no_pixels(*a, **k):
        raise AssertionError("a corruption was drawn again")

    monkeypatch.setattr(ImageCorruption, "corrupt", no_pixels)
    run(tmp_path, "second", *args)
    first, second = (sorted((tmp_path / r / "report" / "images").iterdir()) for r in
                     ("first", "second"))
    assert [p.name for p in first] == [p.name for p in second] and len(first) == 8 + 5 * 8
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, second))


def test_a_cached_rerun_imports_no_torch_and_threads_still_apply(tmp_path):
    import subprocess
    import sys

    args = ["dataset.pairs=2", "probe=[]", "explain=none", "logger=none", "progress=false",
            f"cache.dir={tmp_path / 'cache'}"]
    assert main([*args, "threads=2", f"hydra.run.dir={tmp_path / 'first'}"]) == 0
    code = ("import sys; from robustness.cli import main; rc = main(sys.argv[1:]); "
            "loaded = 'torch' in sys.modules; import torch; "
            "print(loaded, torch.get_num_threads()); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, *args, "threads=1",
                          f"hydra.run.dir={tmp_path / 'second'}"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[-2:] == ["False", "1"]  # no model loaded; torch's default would be every core
