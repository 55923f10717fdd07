"""How well the offline lexical FF judge reads paraphrases, with no model involved.

Every option text the phantom training pairs (seeds ≥ 1000) give a finding under a question is
one way to state that finding. Each is stated alone, as a one-sentence free-form answer, against
each held-out pair (evaluation seeds) asking that question, mostly worded differently: the
judge should credit the option of the same finding ("right"), and never the other one when the
statement is the other image's finding ("rival credited"). Both images of every pair are used,
so each statement is asked once as the right finding and once as the rival.

    python benchmarks/judge_paraphrase.py [--seeds 0,1,2] [--train-seeds 32] [--data DIR]
                                          [--show 10]

The last line is ``paraphrase: <right %> <invalid %> <wrong %> <rival credited %>``.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="held-out phantom seeds (< 1000)")
    parser.add_argument("--train-seeds", type=int, default=32, help="training seeds from 1000")
    parser.add_argument("--pairs", type=int, default=176)
    parser.add_argument("--data", default="runs/train_reference/data",
                        help="phantom split folder (missing splits are generated)")
    parser.add_argument("--show", type=int, default=10, help="most frequent misses to print")
    args = parser.parse_args()

    from robustness.modes.judge import PAPER_THRESHOLD, LexicalJudge
    from robustness.reference.data import generate_splits, pair_images, phantom_split
    from robustness.reference.evaluate import judge_paraphrases
    from robustness.reference.examples import FindingStatements

    held_seeds = [int(s) for s in args.seeds.split(",")]
    train_seeds = list(range(1000, 1000 + args.train_seeds))
    generate_splits(args.data, held_seeds + train_seeds, pairs=args.pairs, workers=2)
    statements = FindingStatements(pair_images(
        [phantom_split(args.data, seed=s, pairs=args.pairs) for s in train_seeds]))
    held_out = pair_images([phantom_split(args.data, seed=s, pairs=args.pairs)
                            for s in held_seeds])
    counts: Counter = Counter()
    misses: Counter = Counter()
    for text, rival, item, choice in judge_paraphrases(LexicalJudge(), statements, held_out,
                                                       PAPER_THRESHOLD):
        if rival:
            counts["rival credited"] += choice == item.correct
            continue
        verdict = "right" if choice == item.correct else "invalid" if choice is None else "wrong"
        counts[verdict] += 1
        if verdict != "right":
            right = "AB".index(item.correct)
            options = item.pair.options
            misses[(verdict, text, options[right], options[1 - right])] += 1
    asked = counts["right"] + counts["invalid"] + counts["wrong"]
    print(f"{asked} statements of the right finding over held-out seeds {held_seeds} "
          f"({args.train_seeds} training seeds' wordings)")
    for (verdict, text, option, other), n in misses.most_common(args.show):
        print(f"  {n:3d} × {verdict:7s} {text!r} for {option!r} (other: {other!r})")
    share = {k: 100.0 * counts[k] / max(1, asked)
             for k in ("right", "invalid", "wrong", "rival credited")}
    print("paraphrase: " + " ".join(f"{share[k]:.1f}" for k in share))


if __name__ == "__main__":
    main()
