"""The default experiment, timed: cold vs a cached rerun, text-only probes vs clean, and the
answering part vs its compute floor.

1. ``robustness`` (the default run: phantom, reference model, MC, default probes, saliency) in a
   fresh cache folder, then the same command again: whole-process wall times and their ratio.
2. The default run with ``explain=none`` in a fresh cache: each condition's time; the text-only
   probe conditions (same pixels as clean) against clean and against the median pixel-probe
   condition (the same work as clean without the model's first load).
3. The compute floor of that answering part: one vision-tower pass per distinct image and one
   decoder prefill per distinct prompt (the answer cache's misses), each measured batched on the
   loaded model; ``floor_ratio`` = the conditions' summed time, less the model's load (measured
   here the same way), ÷ that floor; the ratio with the load is printed too.

Prints the machine's load average before each step; last line ``floor_ratio: R``.

    python benchmarks/default_run.py [--threads 2]
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


def floor_seconds(run_dir: Path, threads: int) -> tuple[float, int, int, float]:
    """Seconds for one vision pass per distinct image + one prefill per distinct prompt, and
    the seconds loading the model took (the run's first condition pays it)."""
    import torch

    from robustness.data.image import ImageInput
    from robustness.models.hf import HFAdapter
    from robustness.reference import checkpoint_path

    torch.set_num_threads(threads)
    summary = json.loads((run_dir / "summary.json").read_text())
    records = [json.loads(line) for path in sorted((run_dir / "predictions").glob("*.jsonl"))
               for line in path.read_text().splitlines()]
    n_images = len({r["query"]["image_sha256"] for r in records})
    n_prompts = sum(c["cache"]["misses"] for c in summary["conditions"].values())
    tokens = sum(c["cache"]["input_tokens"] for c in summary["conditions"].values()) / n_prompts
    adapter = HFAdapter(checkpoint_path("reference"), device="cpu", dtype="float32",
                        local_files_only=True)
    t0 = time.perf_counter()
    loaded = adapter.load()
    load_s = time.perf_counter() - t0
    model, processor = loaded.model, loaded.processor
    phantom = sorted(Path(summary["benchmark"]["settings"]["folder"]).glob("images/*.png"))
    images = [ImageInput.open(p).pil("RGB") for p in phantom[:32]]
    pixels = processor.image_processor(images=images, return_tensors="pt")["pixel_values"]
    hidden = model.config.text_config.hidden_size
    embeds = torch.randn(16, int(round(tokens)), hidden)
    with torch.inference_mode():
        model.model.get_image_features(pixel_values=pixels[:4])  # warm-up
        model.model.language_model(inputs_embeds=embeds[:2])
        t0 = time.perf_counter()
        for _ in range(3):
            model.model.get_image_features(pixel_values=pixels)
        per_image = (time.perf_counter() - t0) / (3 * len(images))
        t0 = time.perf_counter()
        for _ in range(3):
            model.lm_head(model.model.language_model(inputs_embeds=embeds).last_hidden_state[:, -1])
        per_prompt = (time.perf_counter() - t0) / (3 * len(embeds))
    return n_images * per_image + n_prompts * per_prompt, n_images, n_prompts, load_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    common = ["progress=false", f"threads={args.threads}"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        print(f"1. default run, cold then cached ({load()})")
        cold = run([*common, f"cache.dir={tmp_path / 'c1'}", f"hydra.run.dir={tmp_path / 'r1'}"])
        warm = run([*common, f"cache.dir={tmp_path / 'c1'}", f"hydra.run.dir={tmp_path / 'r2'}"])
        print(f"   cold {cold:.1f} s, cached rerun {warm:.1f} s (whole process): "
              f"rerun_speedup: {cold / warm:.2f}")

        print(f"2. default run with explain=none, cold ({load()})")
        run([*common, "explain=none", f"cache.dir={tmp_path / 'c2'}",
             f"hydra.run.dir={tmp_path / 'r3'}"])
        summary = json.loads((tmp_path / "r3" / "summary.json").read_text())
        times = {name: c["elapsed_s"] for name, c in summary["conditions"].items()}
        pixel = statistics.median(t for n, t in times.items()
                                  if n != "clean" and n not in TEXT_ONLY)
        print("   " + ", ".join(f"{n} {t:.2f} s" for n, t in times.items()))
        for name in TEXT_ONLY:
            if name in times:
                print(f"   {name}: {times[name] / times['clean']:.2f}x clean (clean includes the "
                      f"model's first load), {times[name] / pixel:.2f}x the median pixel probe")

        print(f"3. compute floor of the answering part ({load()})")
        floor, n_images, n_prompts, load_s = floor_seconds(tmp_path / "r3", args.threads)
        total = sum(times.values())
        answering = total - load_s
        print(f"   {n_prompts} distinct prompts, {n_images} distinct images: floor {floor:.2f} s; "
              f"conditions {total:.2f} s, of which loading the model {load_s:.2f} s "
              f"(ratio with it {total / floor:.2f})")
        print(f"floor_ratio: {answering / floor:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
