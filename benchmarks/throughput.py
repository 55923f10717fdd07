"""Throughput of GD and PS: one request per call (the official code's pattern) vs batched.

Builds a small randomly initialised LLaVA (CLIP ViT + projector + Llama; ~20M parameters, a
32,000-entry output vocabulary like LLaVA-1.5's, 64 image tokens) in a temporary folder, loads
it through ``HFAdapter`` by path like any checkpoint, and answers the same MediConfusion-style
requests (image + two-option question, the modes' own prompts) on the CPU three ways:

* **official pattern**, one request per call, as the MediConfusion code does it: GD runs one
  forward per request and reads the letters from the last position of the full logits; PS runs
  one forward per (question, option), recomputing the prompt for every option;
* **adapter, unbatched**: ``HFAdapter`` with batch size 1 (GD keeps only the last position's
  logits; PS computes each prompt once and scores both options from its KV cache);
* **adapter, batched**: the same with batch size 8 (sorted by length, left-padded).

All three must give identical choices (asserted). Timing is interleaved in chunks of 16
requests (so load from other processes hits every way alike) and the fastest of ``--repeats``
passes counts per chunk. The last line is ``speedup: X``: official pattern ÷ batched adapter,
the smaller of the GD and PS ratios; the lines above also give batching alone.

    python benchmarks/throughput.py [--requests 64] [--batch-size 8] [--threads 2]
"""

from __future__ import annotations
from robustness.modes import mode_from_config

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

CHUNK = 16


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()

    from robustness.models.base import LoglikelihoodRequest, NextTokenRequest
    from robustness.models.hf import HFAdapter
    from robustness.testing.tiny_models import build_tiny_llava, make_queries

    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_llava(Path(tmp) / "bench_llava", hidden=256, layers=4,
                                intermediate=688, vision_hidden=192, vision_layers=3,
                                image_size=64, patch_size=8, init_range=0.05, vocab_size=32000)
        single = HFAdapter(path, batch_size=1, device="cpu", dtype="float32")
        batched = HFAdapter(path, batch_size=args.batch_size, device="cpu", dtype="float32")
        model = batched.load().model
        tok = batched.load().tokenizer
        n_params = sum(p.numel() for p in model.parameters())
        queries = make_queries(args.requests, seed=1)
        gd_prompts = mode_from_config("gd").build_prompts(batched, queries)
        ps_prompts = mode_from_config("ps").build_prompts(batched, queries)
        print(f"model: tiny LLaVA, {n_params / 1e6:.1f}M parameters, vocabulary "
              f"{model.config.text_config.vocab_size}, float32, CPU, {args.threads} thread(s); "
              f"{len(queries)} requests; batch size {args.batch_size}")

        def letters(logprobs: torch.Tensor) -> dict[str, float]:
            return {c: float(torch.logsumexp(logprobs[list(batched.candidate_token_ids(c))], 0))
                    for c in "AB"}

        # -- GD, three ways (each returns per-request letter log-probabilities)
        def gd_official(idx):
            out = []
            for i in idx:
                p = gd_prompts[i]
                inputs = single.encode([single.render(p)], [p.images])
                with torch.inference_mode():
                    logits = model(**inputs).logits[0, -1].float()
                out.append(letters(torch.log_softmax(logits, -1)))
            return out

        def gd_unbatched(idx):
            return [single.next_token_scores([NextTokenRequest(gd_prompts[i])])[0].logprobs
                    for i in idx]

        def gd_batched(idx):
            return [r.logprobs for r in
                    batched.next_token_scores([NextTokenRequest(gd_prompts[i]) for i in idx])]

        # -- PS, three ways (each returns per-request per-token-normalised option scores)
        def ps_official(idx):
            out = []
            for i in idx:
                p, scores = ps_prompts[i], []
                for option in queries[i].options:  # one forward per option, prompt recomputed
                    text, answer = single.render_with_answer(p, option)
                    n = (len(tok.encode(text + answer, add_special_tokens=False))
                         - len(tok.encode(text, add_special_tokens=False)))
                    inputs = single.encode([text + answer], [p.images])
                    ids = inputs["input_ids"][0]
                    with torch.inference_mode():
                        lp = torch.log_softmax(model(**inputs).logits[0].float(), -1)
                    picked = lp[-n - 1:-1].gather(-1, ids[-n:, None])
                    scores.append(float(picked.mean()))
                out.append(scores)
            return out

        def ps_adapter(adapter):
            def run(idx):
                res = adapter.loglikelihood([LoglikelihoodRequest(ps_prompts[i],
                                                                  queries[i].options)
                                             for i in idx])
                return [[s.logprob / s.n_tokens for s in r.scores] for r in res]
            return run

        def choice_gd(results):
            return [max(r, key=r.get) for r in results]

        def choice_ps(results):
            return ["AB"[int(s[1] > s[0])] for s in results]

        gd_batched(range(min(8, len(queries))))  # warm-up (lazy initialisation, allocations)
        chunks = [list(range(i, min(i + CHUNK, len(queries))))
                  for i in range(0, len(queries), CHUNK)]
        summary = {}
        for name, ways, to_choice in (
                ("GD", {"official": gd_official, "unbatched": gd_unbatched,
                        "batched": gd_batched}, choice_gd),
                ("PS", {"official": ps_official, "unbatched": ps_adapter(single),
                        "batched": ps_adapter(batched)}, choice_ps)):
            totals = dict.fromkeys(ways, 0.0)
            results = {w: [] for w in ways}
            for k, chunk in enumerate(chunks):
                order = list(ways)
                order = order[k % len(order):] + order[: k % len(order)]  # rotate who goes first
                best = dict.fromkeys(ways, float("inf"))
                for _ in range(args.repeats):
                    for way in order:
                        start = time.perf_counter()
                        out = ways[way](chunk)
                        best[way] = min(best[way], time.perf_counter() - start)
                        if len(results[way]) < chunk[-1] + 1:
                            results[way].extend(out)
                for way in ways:
                    totals[way] += best[way]
            picks = {w: to_choice(results[w]) for w in ways}
            same = picks["official"] == picks["unbatched"] == picks["batched"]
            assert same, f"{name}: the three ways disagree on some choice"
            n = len(queries)
            print(f"{name}: official pattern {totals['official']:.2f}s "
                  f"({n / totals['official']:.1f} req/s) | adapter unbatched "
                  f"{totals['unbatched']:.2f}s | adapter batched {totals['batched']:.2f}s "
                  f"({n / totals['batched']:.1f} req/s) | batching alone "
                  f"x{totals['unbatched'] / totals['batched']:.2f} | identical choices: {same}")
            summary[name] = totals["official"] / totals["batched"]
        print(f"ratios (official pattern / batched): GD x{summary['GD']:.2f}, "
              f"PS x{summary['PS']:.2f}")
        print(f"speedup: {min(summary.values()):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
