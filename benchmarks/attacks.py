"""Time PGD on the reference model: gradients batched vs one image at a time, equal pixels.

Attacks ``--pairs`` phantom pairs (seed 0; both images of each) with PGD (``--steps`` steps,
``--eps`` grey levels, seeded random start) through the white-box oracle twice: margins and
gradients of up to ``--batch-size`` images per forward/backward pass, and of one image per pass.
Both must give the same adversarial pixels: batched and single passes agree on margins and
gradients to float precision (~1e-9), but a gradient entry that is itself ~0 can take the other
sign, and PGD then walks on from there; the script prints how many pixel values differ and fails
above 0.1%. Passes are interleaved ``--repeats`` times and the fastest of each counts (other
processes on shared cores slow single passes). Prints seconds per pair per step for both, then
``speedup: X`` (one at a time ÷ batched).

    python benchmarks/attacks.py [--pairs 16] [--steps 10] [--eps 8] [--mode mc] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--eps", type=int, default=8)
    parser.add_argument("--mode", default="mc", choices=("mc", "gd", "ps"))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)

    import torch

    from attacks.adversarial import PGD
    from attacks.base import derive_seed
    from explain.whitebox import AdapterGradientOracle
    from robustness.data.image import ImageInput
    from robustness.data.query import clean_queries
    from robustness.models.hf import HFAdapter
    from robustness.modes import mode_from_config
    from robustness.reference import checkpoint_path
    from robustness.sources import PhantomSource

    torch.set_num_threads(args.threads)
    adapter = HFAdapter(checkpoint_path("reference"), device="cpu", dtype="float32",
                        local_files_only=True, batch_size=args.batch_size)
    mode = mode_from_config(args.mode)
    with_cache = Path(os.environ.get("ROBUSTNESS_CACHE_DIR", ".cache/robustness")) / "phantom"
    bench = PhantomSource(pairs=args.pairs, cache_dir=with_cache).load()
    queries = [q for p in bench for q in clean_queries(
        p, (ImageInput.open(p.images[0]), ImageInput.open(p.images[1])))]
    labels = [q.correct for q in queries]
    seeds = [derive_seed("pgd", args.eps, q.pair_id, q.image_index, 0) for q in queries]
    attack = PGD(eps=[args.eps], steps=args.steps)
    oracles = {"batched": AdapterGradientOracle(adapter, mode, batch_size=args.batch_size),
               "one at a time": AdapterGradientOracle(adapter, mode, batch_size=1)}
    attack.attack(queries[:2], oracles["batched"], args.eps, seeds[:2], labels[:2])  # warm up
    best = {name: float("inf") for name in oracles}
    pixels = {}
    for _ in range(args.repeats):
        for name, oracle in oracles.items():
            start = time.perf_counter()
            pixels[name] = attack.attack(queries, oracle, args.eps, seeds, labels)
            best[name] = min(best[name], time.perf_counter() - start)
    differing = sum(int((a != b).sum()) for a, b in zip(pixels["batched"],
                                                        pixels["one at a time"]))
    total = sum(a.size for a in pixels["batched"])
    print(f"PGD {args.steps} steps, eps {args.eps}, {args.mode.upper()}, {args.pairs} pairs "
          f"({len(queries)} images), {args.threads} threads")
    for name, seconds in best.items():
        print(f"{name:>14}: {seconds:6.2f} s  ({seconds / args.pairs / args.steps:.4f} s per "
              f"pair per step)")
    print(f"adversarial pixel values that differ: {differing} of {total} "
          f"({100 * differing / total:.4f}%)")
    if differing > total / 1000:
        return 1
    print(f"speedup: {best['one at a time'] / best['batched']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
