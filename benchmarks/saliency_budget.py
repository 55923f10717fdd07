"""Time (and score) saliency: explaining 8 phantom pairs (16 images) of the reference model.

For each method (its shipped config, ``conf/explain/<method>.yaml``) this explains ``--pairs``
pairs of a phantom evaluation set (seed 0, picked round-robin over finding families) exactly as
a run does — image maps of the chosen option's margin plus the Shapley part shares — and
prints the seconds it took (model loading, answering and overlays excluded), then the grounding
numbers over the abnormal images: mean mask energy ratio, pointing game, image reliance and
per family. The budget is ≤ 60 s per method on 2 CPU cores; the last line is
``seconds: <integrated_gradients> <occlusion>``: wall clock, the fastest of ``--repeats`` passes
(methods interleaved), since other processes on shared cores slow single passes a lot. On a
busy machine ``--threads 1`` gives a fairer figure: two OpenMP threads whose partner core is
taken by another process spend most of their time waiting at barriers (10× slower here).

    python benchmarks/saliency_budget.py [--pairs 8] [--threads 2] [--mode gd]
                                         [--model PATH] [--methods integrated_gradients,occlusion]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

METHODS = ("integrated_gradients", "occlusion")


def build_explainer(method: str, pairs: int, overrides: list[str]):
    """The run object of ``conf/explain/<method>.yaml`` with ``pairs`` pairs, no probes."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(ROOT / "conf" / "explain" / f"{method}.yaml")
    cfg.merge_with(OmegaConf.from_dotlist([f"pairs={pairs}", "under_probes=false",
                                           "overlays=false", *overrides]))
    return instantiate(cfg, _convert_="all")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mode", default="gd", choices=("mc", "gd", "ps"))
    parser.add_argument("--model", default=None, help="checkpoint folder (default: the shipped "
                                                      "reference model)")
    parser.add_argument("--seed", type=int, default=0, help="phantom evaluation seed (< 1000)")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override an explain setting, e.g. --set method.n_steps=16")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2, help="passes per method (the fastest "
                                                                  "counts)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from hydra.utils import instantiate
    from omegaconf import OmegaConf
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()

    from robustness.data.mediconfusion import load_benchmark
    from robustness.data.phantom import generate_phantom_benchmark
    from robustness.data.image import ImageInput
    from robustness.models.hf import HFAdapter
    from robustness.data.query import clean_queries

    from explain.run import select_pairs

    if args.model is None:
        from robustness.reference import checkpoint_path

        args.model = checkpoint_path("reference")
    adapter = HFAdapter(args.model, device=args.device, dtype="float32", batch_size=16)
    mode = instantiate(OmegaConf.load(ROOT / "conf" / "mode" / f"{args.mode}.yaml"),
                       _convert_="all")
    with tempfile.TemporaryDirectory() as tmp:
        path = generate_phantom_benchmark(Path(tmp) / "phantom", pairs=max(args.pairs, 48),
                                          seed=args.seed, size=224)
        bench = load_benchmark(path, path.parent / "images", require_images=True,
                               name="phantom")
        pairs = select_pairs(bench, args.pairs, "diverse")
        queries = {}
        for pair in pairs:
            images = tuple(ImageInput.open(p) for p in pair.images)  # type: ignore[union-attr]
            for q in clean_queries(pair, images):  # type: ignore[arg-type]
                queries[q.key] = q
        adapter.load()
        answers = {a_q.key: a for a_q, a in zip(queries.values(),
                                                mode.answer(adapter, list(queries.values())))}
        correct = sum(a.choice == q.to_original(q.correct) for q, a in
                      zip(queries.values(), answers.values()))
        print(f"model {args.model} · mode {args.mode} · {len(pairs)} pairs "
              f"({len(queries)} images), {correct} answered right · {args.threads} threads")
        best: dict[str, float] = {}
        for attempt in range(args.repeats):
            for method in args.methods.split(","):
                run = build_explainer(method, len(pairs), args.set)
                run.pair_ids = tuple(p.pair_id for p in pairs)
                start, cpu = time.perf_counter(), time.process_time()
                summary = run.explain(adapter, mode, bench, queries, answers, None, None)
                elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
                best[method] = min(best.get(method, elapsed), elapsed)
                print(f"{method} (pass {attempt + 1}): {elapsed:.1f} s wall, {cpu:.1f} s CPU "
                      f"(maps {summary['elapsed_s']['maps']} s, parts "
                      f"{summary['elapsed_s']['parts']} s)")
                if attempt == 0:
                    keep = {k: summary[k] for k in (
                        "n_images", "n_abnormal", "mask_energy_ratio",
                        "model_free_mask_energy_ratio", "mask_energy_gain", "pointing_game",
                        "pointing_game_n", "pointing_game_ci", "completeness",
                        "image_reliance", "part_shares", "pair_rank_correlation", "per_family",
                        "completeness_gap", "settings") if k in summary}
                    print(f"  {method}: " + json.dumps(keep))
        seconds = [best[m] for m in args.methods.split(",")]
        print("seconds: " + " ".join(f"{s:.1f}" for s in seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
