"""The default experiment, timed: cold vs a cached rerun, text-only probes vs clean, reuse on vs
off, and the answering part vs its compute floor.

1. ``robustness`` (the default run: phantom, reference model, MC, default probes, saliency) in a
   fresh cache folder, then the same command again: whole-process wall times and their ratio.
2. The default run with ``explain=none`` in a fresh cache, ``--repeats`` times (median per
   condition), and once more with the cross-condition reuse off (``model.image_prefix_mb=0
   model.image_features_mb=0``): each condition's time; the text-only probe conditions (same
   pixels as clean) against clean without the model's load (``model_stats.load_s``), against
   clean as recorded, and against the median pixel-probe condition; whether every answer of the
   two ways is identical.
3. The compute floor of that answering part: one vision-tower pass per distinct image and one
   decoder prefill per distinct prompt (the answer cache's misses), each measured batched on the
   loaded model (best of three) right after each run. The machine is shared, so both sides are
   taken at their best: ``floor_ratio`` = the answering part at its best (per condition, the
   fastest of the runs' ``answer_s``, the time in the mode and the model, less the model's
   load) ÷ the fastest floor. The per-run ratios (each run ÷ the floor measured right after
   it) and the same ratio for whole conditions (probes and scoring included) are printed too.

Prints the machine's load average before each step; last line ``floor_ratio: R``.

    python benchmarks/default_run.py [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]
TEXT_ONLY = ("option_swap", "expert_persona")


def run(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "robustness.cli", *args], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def floor_seconds(run_dir: Path, threads: int) -> tuple[float, int, int]:
    """Seconds for one vision pass per distinct image + one prefill per distinct prompt (each
    at its best of three measurements), and how many of each."""
    import torch

    from robustness.data.image import ImageInput
    from robustness.models.hf import HFAdapter
    from robustness.reference import checkpoint_path

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.set_num_threads(threads)
    summary = json.loads((run_dir / "summary.json").read_text())
    records = [json.loads(line) for path in sorted((run_dir / "predictions").glob("*.jsonl"))
               for line in path.read_text().splitlines()]
    n_images = len({r["query"]["image_sha256"] for r in records})
    n_prompts = sum(c["cache"]["misses"] for c in summary["conditions"].values())
    tokens = sum(c["cache"]["input_tokens"] for c in summary["conditions"].values()) / n_prompts
    loaded = HFAdapter(checkpoint_path("reference"), device="cpu", dtype="float32",
                       local_files_only=True).load()
    model, processor = loaded.model, loaded.processor
    phantom = sorted(Path(summary["benchmark"]["settings"]["folder"]).glob("images/*.png"))
    images = [ImageInput.open(p).pil("RGB") for p in phantom[:32]]
    pixels = processor.image_processor(images=images, return_tensors="pt")["pixel_values"]
    hidden = model.config.text_config.hidden_size
    embeds = torch.randn(16, int(round(tokens)), hidden)
    per_image, per_prompt = [], []
    with torch.inference_mode():
        model.model.get_image_features(pixel_values=pixels[:4])  # warm-up
        model.model.language_model(inputs_embeds=embeds[:2])
        for _ in range(3):
            t0 = time.perf_counter()
            model.model.get_image_features(pixel_values=pixels)
            per_image.append((time.perf_counter() - t0) / len(images))
            t0 = time.perf_counter()
            model.lm_head(model.model.language_model(inputs_embeds=embeds).last_hidden_state[:, -1])
            per_prompt.append((time.perf_counter() - t0) / len(embeds))
    return n_images * min(per_image) + n_prompts * min(per_prompt), n_images, n_prompts


def condition_times(run_dir: Path, key: str = "elapsed_s") -> tuple[dict[str, float], float]:
    """Each condition's ``elapsed_s`` (or ``answer_s``) and the seconds the model's load took."""
    summary = json.loads((run_dir / "summary.json").read_text())
    load_s = (summary.get("model_stats") or {}).get("load_s", 0.0)
    return {name: c[key] for name, c in summary["conditions"].items()}, load_s


def same_answers(a: Path, b: Path) -> bool:
    """Whether two runs' predictions hold the same choice and raw text for every question."""
    for path in sorted((a / "predictions").glob("*.jsonl")):
        left = [json.loads(line) for line in path.read_text().splitlines()]
        right = [json.loads(line) for line in (b / "predictions" / path.name).read_text()
                 .splitlines()]
        if [(r["choice"], r["raw"].get("text")) for r in left] != \
                [(r["choice"], r["raw"].get("text")) for r in right]:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    common = ["progress=false", f"threads={args.threads}"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        print(f"1. default run, cold then cached ({load()})")
        cold = run([*common, f"cache.dir={tmp_path / 'c1'}", f"hydra.run.dir={tmp_path / 'r1'}"])
        warm = run([*common, f"cache.dir={tmp_path / 'c1'}", f"hydra.run.dir={tmp_path / 'r2'}"])
        print(f"   cold {cold:.1f} s, cached rerun {warm:.1f} s (whole process): "
              f"rerun_speedup: {cold / warm:.2f}")

        print(f"2. default run with explain=none, cold, {args.repeats} times ({load()})")
        runs, answering_runs, floors = [], [], []
        for k in range(args.repeats):  # each run's floor measured right after it, same load
            run_dir = tmp_path / f"n{k}"
            run([*common, "explain=none", f"cache.dir={tmp_path / f'cn{k}'}",
                 f"hydra.run.dir={run_dir}"])
            runs.append(condition_times(run_dir))
            answering_runs.append(condition_times(run_dir, "answer_s"))
            floors.append(floor_seconds(run_dir, args.threads))
        off_dir = tmp_path / "off"
        run([*common, "explain=none", "model.image_prefix_mb=0", "model.image_features_mb=0",
             f"cache.dir={tmp_path / 'coff'}", f"hydra.run.dir={off_dir}"])
        off, off_load = condition_times(off_dir)
        times = {name: statistics.median(r[0][name] for r in runs) for name in runs[0][0]}
        load_s = statistics.median(r[1] for r in runs)
        pixel = statistics.median(t for n, t in times.items()
                                  if n != "clean" and n not in TEXT_ONLY)
        print("   reuse on (median): " + ", ".join(f"{n} {t:.2f} s" for n, t in times.items())
              + f"; loading the model {load_s:.2f} s (inside clean)")
        print("   reuse off:         " + ", ".join(f"{n} {t:.2f} s" for n, t in off.items()))
        clean_answering = times["clean"] - load_s
        for name in TEXT_ONLY:
            if name in times:
                print(f"   {name}: {times[name] / clean_answering:.2f}x clean without the load "
                      f"({times[name] / times['clean']:.2f}x clean as recorded), "
                      f"{times[name] / pixel:.2f}x the median pixel probe; reuse off "
                      f"{off[name] / (off['clean'] - off_load):.2f}x")
        print(f"   answers identical with and without reuse: "
              f"{'yes' if same_answers(tmp_path / 'n0', off_dir) else 'NO'}")

        print(f"3. compute floor of the answering part ({load()})")
        n_images, n_prompts = floors[0][1], floors[0][2]
        whole = [sum(t.values()) - ld for t, ld in runs]
        answering = [sum(t.values()) - ld for t, ld in answering_runs]
        ratios = [a / f for a, (f, _, _) in zip(answering, floors)]
        unloaded = [{n: t - (ld if n == "clean" else 0.0) for n, t in times.items()}
                    for times, ld in answering_runs]
        best = sum(min(run[n] for run in unloaded) for n in unloaded[0])
        best_floor = min(f for f, _, _ in floors)
        off_answering = sum(condition_times(off_dir, "answer_s")[0].values()) - off_load
        print(f"   {n_prompts} distinct prompts, {n_images} distinct images; per run: answering "
              "(the conditions' answer_s less the model's load) / floor measured right after = "
              + ", ".join(f"{a:.2f} / {f:.2f} s" for a, (f, _, _) in zip(answering, floors))
              + "; whole conditions (probes and scoring too) "
              + ", ".join(f"{w:.2f}" for w in whole)
              + f" s; reuse off {off_answering:.2f} s (ratio {off_answering / floors[-1][0]:.2f} "
              "to the last floor)")
        whole_ratio = statistics.median(w / f for w, (f, _, _) in zip(whole, floors))
        print(f"   per-run ratios {', '.join(f'{r:.2f}' for r in ratios)} (median "
              f"{statistics.median(ratios):.2f}); whole conditions (median) {whole_ratio:.2f}")
        print(f"   at their best: answering {best:.2f} s (each condition's fastest run) / floor "
              f"{best_floor:.2f} s (the fastest measurement)")
        print(f"floor_ratio: {best / best_floor:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
