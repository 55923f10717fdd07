"""Concurrency of the API adapters: 352 MC requests one at a time vs 16 in flight.

Starts the loopback fake OpenAI server (:mod:`robustness.testing.fake_api`) answering every request
after ``--latency`` seconds (200 ms, a typical API round trip), then answers MediConfusion-sized
MC work (176 pairs × 2 images = 352 queries, real MC mode, real OpenAI SDK) twice: through an
adapter allowing one request in flight, and through one allowing ``--concurrency`` (16, the
presets' default). Both must give identical answers (checked); the last line is
``speedup: X`` (sequential time / concurrent time; target ≥ 8).

    python benchmarks/api_concurrency.py [--requests 352] [--latency 0.2] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from robustness.modes import mode_from_config  # noqa: E402


def make_queries(n: int, seed: int = 0):
    """``n`` MC queries over distinct 128×128 grayscale images, pairs of two."""
    import numpy as np

    from robustness.data.image import ImageInput
    from robustness.data.query import Query

    rng = np.random.default_rng(seed)
    queries = []
    for i in range(n):
        image = ImageInput(rng.integers(0, 256, (128, 128), dtype=np.uint8))
        queries.append(Query(pair_id=f"pair{i // 2}", image_index=1 + i % 2, image=image,
                             question="Is there a hemorrhage in the left hemisphere?",
                             options=("Yes, there is a hemorrhage", "No hemorrhage is seen")))
    return queries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=352)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)

    from robustness.models.api import OpenAIAdapter
    from robustness.testing.fake_api import fake_api_server

    os.environ["API_BENCHMARK_FAKE_KEY"] = "sk-benchmark-fake-key-not-a-secret"
    queries = make_queries(args.requests)
    mode = mode_from_config("mc")
    runs = {}
    with fake_api_server(latency=args.latency) as server:
        for label, in_flight in (("sequential", 1), ("concurrent", args.concurrency)):
            adapter = OpenAIAdapter("gpt-4o-2024-05-13", base_url=server.openai_base_url,
                                    api_key_env="API_BENCHMARK_FAKE_KEY",
                                    max_concurrency=in_flight, timeout_s=30)
            start = time.perf_counter()
            answers = mode.answer(adapter, queries)
            elapsed = time.perf_counter() - start
            adapter.close()
            errors = sum(a.error is not None for a in answers)
            runs[label] = (elapsed, [a.choice for a in answers])
            print(f"{label:>10}: {len(queries)} requests, {in_flight:>2} in flight, "
                  f"{elapsed:6.2f} s, {len(queries) / elapsed:6.1f} req/s, errors: {errors}, "
                  f"server peak in flight: {server.max_in_flight}", flush=True)
            server.max_in_flight = 0
    (t_seq, seq), (t_con, con) = runs["sequential"], runs["concurrent"]
    if seq != con:
        print("answers differ between sequential and concurrent runs", file=sys.stderr)
        return 1
    print(f"answers identical: {len(seq)} (A: {seq.count('A')}, B: {seq.count('B')}, "
          f"invalid: {seq.count(None)})")
    print(f"speedup: {t_seq / t_con:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
