"""``robustness data phantom``: write a phantom benchmark folder."""

from __future__ import annotations

import time

from robustness.data.phantom.benchmark import generate_phantom_benchmark
from robustness.data.phantom.settings import FAMILIES, MODALITIES, Difficulty
from robustness.commands.args import OneLineArgumentParser




def build_parser() -> OneLineArgumentParser:
    defaults = Difficulty()
    parser = OneLineArgumentParser(
        prog="robustness data phantom",
        description="Generate the phantom benchmark: confusing pairs of procedural radiology-like images "
                    "(dataset.json in the MediConfusion schema, images/, ground-truth masks/). "
                    "Images follow the radiological convention: the patient's left is on the image right.")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--pairs", type=int, default=176, help="number of pairs (default 176)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed; ids encode it so sets never collide (default 0; evaluation uses "
                             "small seeds, reference-model training seeds >= 1000)")
    parser.add_argument("--size", type=int, default=224, help="image side in pixels (default 224)")
    parser.add_argument("--modalities", metavar="LIST",
                        help=f"comma-separated subset of: {', '.join(MODALITIES)}")
    parser.add_argument("--families", metavar="LIST", help=f"comma-separated subset of: {', '.join(FAMILIES)}")
    knobs = parser.add_argument_group("difficulty (defaults: every pair plain to a careful reader)")
    knobs.add_argument("--finding-scale", type=float, default=defaults.finding_scale,
                       help="multiply finding sizes (default 1.0)")
    knobs.add_argument("--contrast", type=float, default=defaults.contrast,
                       help="multiply finding contrast (default 1.0)")
    knobs.add_argument("--noise", type=float, default=defaults.noise,
                       help="multiply acquisition noise; 0 = none (default 1.0)")
    knobs.add_argument("--distractors", type=int, default=defaults.distractors,
                       help="benign look-alike structures per image (default 2)")
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    path = generate_phantom_benchmark(
        args.out, pairs=args.pairs, seed=args.seed, size=args.size, modalities=args.modalities,
        families=args.families, finding_scale=args.finding_scale, contrast=args.contrast, noise=args.noise,
        distractors=args.distractors)
    if not args.quiet:
        print(f"wrote {args.pairs} phantom pairs ({2 * args.pairs} images and masks) to {path} "
              f"in {time.perf_counter() - start:.1f} s")
    return 0
