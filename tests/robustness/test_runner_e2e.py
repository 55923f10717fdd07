"""The main job end to end with real parts: phantom set, Hugging Face adapter, the four modes.

A randomly initialised tiny LLaVA (:mod:`robustness.testing.tiny_models`) answers a small phantom set
through the real adapter, modes, probes, cache and trackers, configured by Hydra exactly as a
user's command line would. The answers mean nothing; the plumbing is what is tested.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robustness.cli import main

torch = pytest.importorskip("torch")
torch.set_num_threads(2)


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory) -> Path:
    from robustness.testing.tiny_models import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("tiny") / "llava")


def hf_args(tmp: Path, model: Path, mode: str, *extra: str, run: str = "run") -> list[str]:
    short = ["mode.max_new_tokens=6"] if mode in ("mc", "ff") else []  # random weights ramble
    return [*short, "model=llava_1_5", f"model.model_id={model}", "model.revision=null",
            "model.dtype=float32", "model.device=cpu", "model.local_files_only=true",
            "model.batch_size=4", f"mode={mode}", "dataset=phantom", "dataset.pairs=6",
            "dataset.size=64", f"cache.dir={tmp / 'cache'}", f"hydra.run.dir={tmp / run}",
            "progress=false", "resamples=200", *extra]


@pytest.mark.parametrize("mode", ["mc", "gd", "ps", "ff"])
def test_phantom_run_through_a_real_adapter_in_each_mode(tmp_path, tiny_llava, mode):
    probes = "probe=[option_swap,gaussian_blur]"
    code = main(hf_args(tmp_path, tiny_llava, mode, probes, "probe.gaussian_blur.severities=[4]",
                        "logger=wandb" if mode == "mc" else "logger=none"))
    assert code == 0
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["mode"] == mode and summary["dataset"] == "phantom"
    assert summary["n_pairs"] == 6 and summary["benchmark"]["n_pairs"] == 6
    assert list(summary["conditions"]) == ["clean", "option_swap", "gaussian_blur@4"]
    assert summary["model_identity"]["model_id"] == str(tiny_llava)
    swap = summary["conditions"]["option_swap"]
    assert {"order_consistency", "position_bias"} <= set(swap["probe_metrics"])
    for name in summary["conditions"]:
        records = [json.loads(line) for line in
                   (run / "predictions" / f"{name}.jsonl").read_text().splitlines()]
        assert len(records) == 12
        assert all(r["choice"] in ("A", "B", None) for r in records)
    if mode == "mc":
        assert (run / "wandb").is_dir()
        # the same command again: every answer from the cache, identical predictions
        assert main(hf_args(tmp_path, tiny_llava, mode, probes,
                            "probe.gaussian_blur.severities=[4]", "logger=none",
                            run="again")) == 0
        again = json.loads((tmp_path / "again" / "summary.json").read_text())
        assert again["cache"]["misses"] == 0 and again["cache"]["hits"] == 36
        for name in summary["conditions"]:
            first = [json.loads(x)["choice"] for x in
                     (run / "predictions" / f"{name}.jsonl").read_text().splitlines()]
            second = [json.loads(x)["choice"] for x in
                      (tmp_path / "again" / "predictions" / f"{name}.jsonl").read_text().splitlines()]
            assert first == second


def test_strategy_a_mode_cannot_serve_fails_before_any_work(tmp_path, tiny_llava, capsys):
    code = main(hf_args(tmp_path, tiny_llava, "gd", "probe=[chain_of_thought]", "logger=none"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "cot" in err[0]
    assert not (tmp_path / "run" / "predictions" / "clean.jsonl").exists()


def test_phantom_set_is_generated_once_and_reused(tmp_path, tiny_llava):
    assert main(hf_args(tmp_path, tiny_llava, "gd", "probe=[]", "logger=none")) == 0
    folders = list((tmp_path / "cache" / "phantom").iterdir())
    assert len(folders) == 1 and (folders[0] / ".complete").is_file()
    stamp = (folders[0] / "dataset.json").stat().st_mtime_ns
    assert main(hf_args(tmp_path, tiny_llava, "gd", "probe=[]", "logger=none",
                        run="again")) == 0
    assert (folders[0] / "dataset.json").stat().st_mtime_ns == stamp
    first = json.loads((tmp_path / "run" / "summary.json").read_text())["benchmark"]
    second = json.loads((tmp_path / "again" / "summary.json").read_text())["benchmark"]
    assert first["content_hash"] == second["content_hash"]
    assert main(hf_args(tmp_path, tiny_llava, "gd", "probe=[]", "logger=none",
                        "dataset.seed=3", run="other")) == 0
    assert len(list((tmp_path / "cache" / "phantom").iterdir())) == 2
