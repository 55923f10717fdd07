"""``robustness data download --out DIR``: fetch the MediConfusion annotations and images.

Where each file comes from and how a re-run resumes: :mod:`robustness.data.download`.
Exit codes: 0 all images present and verified, 1 some missing, 2 bad arguments.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from robustness.commands.args import OneLineArgumentParser
from robustness.data.download import (DEFAULT_BUCKET_URL, DEFAULT_LEGACY_URL, ENV_BUCKET,
                                      ENV_LEGACY, ENV_ROCO, MANIFEST, REPO_ID, SOURCE_NAMES,
                                      DownloadFailed, Manifest, Outcome, download_images,
                                      install_annotations, plan_jobs)
from robustness.data.image_sources import ImageJob
from robustness.errors import UserError


def build_parser() -> OneLineArgumentParser:
    env = os.environ.get
    parser = OneLineArgumentParser(
        prog="robustness data download",
        description="Download the MediConfusion annotations (Hugging Face) and images (PMC Cloud "
                    "Service, a legacy package mirror, or a ROCO checkout) into DIR. Resumable: "
                    "images whose checksum in DIR/manifest.json verifies are skipped.")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    hub = parser.add_argument_group("annotations")
    hub.add_argument("--repo-id", default=REPO_ID, help=f"hub dataset (default {REPO_ID})")
    hub.add_argument("--revision", default="main", help="branch, tag or commit to pin (default main)")
    hub.add_argument("--hf-endpoint", default=env("HF_ENDPOINT"), metavar="URL",
                     help="hub endpoint (default $HF_ENDPOINT or https://huggingface.co)")
    hub.add_argument("--cache-dir", default=None, metavar="DIR",
                     help="hub cache (default $HF_HUB_CACHE / ~/.cache/huggingface/hub)")
    hub.add_argument("--offline", action="store_true",
                     help="use only the hub cache for annotations (also $HF_HUB_OFFLINE=1)")
    hub.add_argument("--annotations-dir", metavar="DIR",
                     help="take dataset.json and image_dict.json from this folder instead of the hub")
    img = parser.add_argument_group("images")
    img.add_argument("--bucket-url", default=env(ENV_BUCKET) or DEFAULT_BUCKET_URL, metavar="URL",
                     help=f"PMC Cloud Service bucket (${ENV_BUCKET}; default {DEFAULT_BUCKET_URL})")
    img.add_argument("--legacy-base", default=env(ENV_LEGACY) or DEFAULT_LEGACY_URL, metavar="URL",
                     help=f"mirror of the legacy oa_package tree, or 'none' (${ENV_LEGACY}; "
                          f"default {DEFAULT_LEGACY_URL}, emptied by PMC in August 2026)")
    img.add_argument("--roco-dir", default=env(ENV_ROCO), metavar="DIR",
                     help=f"a ROCO checkout, images by their im_1/im_2 paths (${ENV_ROCO})")
    img.add_argument("--sources", default=",".join(SOURCE_NAMES),
                     help="sources to try, in order (default bucket,legacy,roco)")
    img.add_argument("--workers", type=int, default=8, help="parallel downloads (default 8)")
    img.add_argument("--retries", type=int, default=4, help="retries per request (default 4)")
    img.add_argument("--backoff", type=float, default=1.0, help="first retry delay, seconds (default 1)")
    img.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, seconds (default 30)")
    img.add_argument("--force", action="store_true", help="re-download images even if verified")
    img.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _check_url(flag: str, value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise UserError(f"{flag}: expected an http(s) URL, got {value!r}")
    return value.rstrip("/")


def parse_args(argv: list[str]) -> Any:
    args = build_parser().parse_args(argv)
    names = [s.strip() for s in args.sources.split(",") if s.strip()]
    unknown = [s for s in names if s not in SOURCE_NAMES]
    if not names or unknown or len(set(names)) != len(names):
        raise UserError(f"--sources: expected distinct names from {','.join(SOURCE_NAMES)}, "
                        f"got {args.sources!r}")
    args.sources = names
    if not 1 <= args.workers <= 64:
        raise UserError(f"--workers: expected 1..64, got {args.workers}")
    if args.retries < 0 or args.backoff < 0 or args.timeout <= 0:
        raise UserError("--retries and --backoff must be >= 0 and --timeout > 0")
    args.bucket_url = _check_url("--bucket-url", args.bucket_url)
    args.legacy_base = (None if args.legacy_base.lower() in ("", "none")
                        else _check_url("--legacy-base", args.legacy_base))
    if args.hf_endpoint:
        args.hf_endpoint = _check_url("--hf-endpoint", args.hf_endpoint)
    if args.roco_dir and not Path(args.roco_dir).is_dir():
        raise UserError(f"--roco-dir: {args.roco_dir} is not a folder")
    if args.annotations_dir and not Path(args.annotations_dir).is_dir():
        raise UserError(f"--annotations-dir: {args.annotations_dir} is not a folder")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out: {out} exists and is not a folder")
    return args


def _summary(args: Any, out: Path, jobs: list[ImageJob], failures: dict[str, Outcome]) -> None:
    print(f"{len(jobs) - len(failures)}/{len(jobs)} images in {out / 'images'}; "
          f"manifest {out / MANIFEST}")
    if not failures:
        return
    print(f"{len(failures)} image(s) missing:", file=sys.stderr)
    for outcome in failures.values():
        reasons = "; ".join(f"{k}: {v}" for k, v in outcome.reasons.items()) or "no source configured"
        print(f"  {outcome.job.label}: {reasons}", file=sys.stderr)
    unused = [flag for flag, value in (("--legacy-base", args.legacy_base), ("--roco-dir", args.roco_dir))
              if not value]
    hint = "re-run to retry them (verified images are skipped)"
    if unused:
        hint += f"; {' or '.join(unused)} may provide the rest"
    print(hint, file=sys.stderr)


def main(argv: list[str]) -> int:
    """Entry point of ``robustness data download``; returns 0, 1 (images missing) or 2 (usage)."""
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.quiet:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    manifest = Manifest(out)
    try:
        install_annotations(args, out, manifest)
    except DownloadFailed as err:
        print(f"robustness data download: {err}", file=sys.stderr)
        return 1
    jobs = plan_jobs(out)
    failures = download_images(args, out, manifest, jobs)
    _summary(args, out, jobs, failures)
    if failures:
        return 1
    from robustness.data.mediconfusion import load_benchmark

    try:
        load_benchmark(out / "dataset.json", require_images=True)
    except UserError as err:
        print(f"robustness data download: final check failed: {err}", file=sys.stderr)
        return 1
    return 0
