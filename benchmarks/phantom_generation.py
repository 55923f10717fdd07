"""Speed check: write the default 176-pair phantom set and report wall and CPU time.

Target (issue 3): under 10 s on 2 cores. Exits 1 when the wall time exceeds ``--limit``.

    python benchmarks/phantom_generation.py [--pairs 176] [--size 224] [--limit 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from robustness.data.phantom import generate_phantom_benchmark  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=176)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=float, default=10.0, help="wall-time budget in seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        wall, cpu = time.perf_counter(), time.process_time()
        generate_phantom_benchmark(Path(folder), pairs=args.pairs, seed=args.seed, size=args.size)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        size_mb = sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 1e6
    print(f"{args.pairs} pairs at {args.size}px: wall {wall:.2f} s, cpu {cpu:.2f} s "
          f"({1000 * cpu / args.pairs:.1f} ms cpu per pair), {size_mb:.1f} MB written; limit {args.limit:.0f} s")
    return 0 if wall <= args.limit else 1


if __name__ == "__main__":
    raise SystemExit(main())
