"""Throughput of GD and PS: the official one-question-per-call pattern vs the adapter, honestly.

Builds a randomly initialised LLaVA with a scaled LLaVA-1.5 shape — CLIP tower (64 image
tokens), Llama decoder 512 wide, 8 layers, 2,048-token vocabulary, so the output layer is ~4%
of the parameters as in the 7B model (2%) rather than the 40% a toy model with a 32k vocabulary
would have — saves it to a temporary folder and loads it through ``HFAdapter`` by path. The
same requests (image + two-option question, the modes' own prompts) are answered on the CPU:

* **official pattern**, one question per call with the official decision rules: GD compares the
  last position's logits of ``encode('A')`` and ``encode('B')``; PS runs one forward per option
  and log-softmaxes the answer positions only (mean per token);
* **adapter, batched** (``--batch-size``): GD keeps only the last position's logits and merges
  the letters' spellings; PS runs each prompt once and scores both options from its KV cache.

``--repeats`` (3) interleaved repetitions — official then adapter, then the other way round —
and the median time of each way counts. The two ways' choices are compared and their agreement
printed separately (GD's rules differ by design: the official rule reads one spelling of each
letter). Last line: ``speedup: X`` = median official time ÷ median adapter time, the smaller of
the GD and PS ratios.

    python benchmarks/throughput.py [--requests 32] [--batch-size 8] [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

SHAPE = dict(image_size=112, patch_size=14, vision_hidden=256, vision_layers=4, vision_heads=4,
             vision_intermediate=1024, hidden=512, layers=8, heads=8, intermediate=1376,
             vocab=2048)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import torch
    from transformers.utils import logging as hf_logging

    from gpu_throughput import build, official_gd_choices, official_ps_choices
    from robustness.models.base import LoglikelihoodRequest, NextTokenRequest
    from robustness.models.hf import HFAdapter
    from robustness.modes import mode_from_config
    from robustness.testing.tiny_models import make_queries

    torch.set_num_threads(args.threads)
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    with tempfile.TemporaryDirectory() as tmp:
        path = build(SHAPE, Path(tmp) / "scaled_llava", "cpu", torch.float32)
        adapter = HFAdapter(path, batch_size=args.batch_size, device="cpu", dtype="float32",
                            local_files_only=True)
        loaded = adapter.load()
        model, tok = loaded.model, loaded.tokenizer
        total = sum(p.numel() for p in model.parameters())
        head = model.lm_head.weight.numel()
        queries = make_queries(args.requests, seed=1)
        gd_prompts = mode_from_config("gd").build_prompts(adapter, queries)
        ps_prompts = mode_from_config("ps").build_prompts(adapter, queries)
        print(f"model: scaled LLaVA-1.5, {total / 1e6:.1f}M parameters (output layer "
              f"{100 * head / total:.1f}%), 64 image tokens, float32, CPU, {args.threads} "
              f"thread(s); {len(queries)} requests; adapter batch size {args.batch_size}; "
              f"median of {args.repeats} interleaved repetitions")
        def gd_official() -> list[str]:
            return official_gd_choices(adapter, model, tok, gd_prompts)

        def gd_adapter() -> list[str]:
            adapter.clear_reuse()  # each pass from scratch, as a run's first condition
            res = adapter.next_token_scores([NextTokenRequest(p, ("A", "B")) for p in gd_prompts])
            return [max(r.logprobs, key=r.logprobs.get) for r in res]

        def ps_official() -> list[str]:
            return official_ps_choices(adapter, model, tok, ps_prompts, queries)

        def ps_adapter() -> list[str]:
            adapter.clear_reuse()
            res = adapter.loglikelihood([LoglikelihoodRequest(p, q.options)
                                         for p, q in zip(ps_prompts, queries)])
            return ["AB"[int(r.scores[1].logprob / r.scores[1].n_tokens
                             > r.scores[0].logprob / r.scores[0].n_tokens)] for r in res]

        gd_adapter(), gd_official()  # warm-up
        ratios = {}
        for name, official, ours in (("GD", gd_official, gd_adapter),
                                     ("PS", ps_official, ps_adapter)):
            times: dict[str, list[float]] = {"official": [], "adapter": []}
            picks: dict[str, list[str]] = {}
            for rep in range(args.repeats):
                ways = [("official", official), ("adapter", ours)]
                for way, fn in (ways if rep % 2 == 0 else ways[::-1]):
                    start = time.perf_counter()
                    picks[way] = fn()
                    times[way].append(time.perf_counter() - start)
            t_official = statistics.median(times["official"])
            t_adapter = statistics.median(times["adapter"])
            agree = 100.0 * sum(a == b for a, b in zip(picks["official"], picks["adapter"]))
            n = len(queries)
            print(f"{name}: official pattern {t_official:.2f} s ({n / t_official:.1f} req/s), "
                  f"adapter {t_adapter:.2f} s ({n / t_adapter:.1f} req/s): "
                  f"x{t_official / t_adapter:.2f}; runs "
                  f"{', '.join(f'{t:.2f}' for t in times['official'])} | "
                  f"{', '.join(f'{t:.2f}' for t in times['adapter'])} s; same choice on "
                  f"{agree / n:.0f}% of requests")
            ratios[name] = t_official / t_adapter
        print(f"ratios (official pattern / adapter, medians): GD x{ratios['GD']:.2f}, "
              f"PS x{ratios['PS']:.2f}")
        print(f"speedup: {min(ratios.values()):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
