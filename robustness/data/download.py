"""``robustness data download --out DIR``: fetch the MediConfusion annotations and images.

Annotations come from the Hugging Face dataset ``shahab7899/MediConfusion`` through
``huggingface_hub`` (revision pinnable with ``--revision``; ``HF_ENDPOINT`` / ``--hf-endpoint``,
the hub cache, ``HF_HUB_OFFLINE`` / ``--offline`` honoured). That repository holds
``dataset.json`` (the 176 pairs), ``image_dict.json`` (per ROCO image: local id, legacy package
address ``dlink`` and the figure's ``file_name``), ``dataset.csv``, a README and pictures; the
official ``statistics.json`` lives only in the authors' GitHub repository (``data/stats/``), so
it is derived here from ``dataset.json`` (occurrences of each category in
``category_1 + category_2``, official order) — the same numbers (Cerebral 79, Vascular 73, …).

Each image is saved as ``DIR/images/<local id>.jpg``, trying these sources in order:

1. **PMC Cloud Service** (``--bucket-url``, env ``ROBUSTNESS_PMC_BUCKET_URL``; default
   ``https://pmc-oa-opendata.s3.amazonaws.com``). What PMC documents ("Accessing PMC Article
   Datasets Using Amazon Web Services", pmc.ncbi.nlm.nih.gov/tools/pmcaws, 2026 update): the
   world-readable bucket ``pmc-oa-opendata`` (us-east-1, anonymous HTTPS or S3) is organised by
   *article version*: every version has its own prefix ``PMC<id>.<version>/`` (e.g.
   ``PMC12855588.1/``) holding the article's files individually — ``PMC<id>.<v>.xml``,
   ``.txt``, ``.pdf``, ``.json`` (metadata whose ``media_urls`` carry each object's MD5) and the
   media / supplementary files under their own names (``gr1.jpg``, ``mmc1.pdf``); the same JSON is
   also under ``metadata/``. The versions of an article are listed with ListObjectsV2,
   ``prefix=PMC<id>.`` and ``delimiter=/`` (the common prefixes ``PMC<id>.1/``, ``PMC<id>.2/``;
   the trailing dot keeps ``PMC123`` from matching ``PMC1234``); most articles have only version
   1. So: list the versions, take the newest, GET ``<bucket>/PMC<id>.<v>/<file_name>`` (older
   versions are tried if the newest lacks the figure), and check the body against the object's
   ``ETag`` (the MD5 for single-part objects). The legacy prefixes (``oa_comm/``, …) moved under
   ``deprecated/`` in April 2026 and are removed in August 2026; they are not used.
2. **Legacy package mirror** (``--legacy-base``, env ``ROBUSTNESS_PMC_LEGACY_URL``; ``none``
   disables it): the article's ``.tar.gz`` as named by ``dlink``
   (``ftp://ftp.ncbi.nlm.nih.gov/pub/pmc/oa_package/<xx>/<yy>/PMC<id>.tar.gz``) mapped to
   ``<base>/<xx>/<yy>/PMC<id>.tar.gz``; only the named figure is read from it. The default base
   is NCBI's own HTTPS path, which PMC emptied in August 2026 — point it at a mirror.
3. **ROCO checkout** (``--roco-dir``, env ``ROBUSTNESS_ROCO_DIR``): ``<dir>/<im_1 path>`` (or
   ``<dir>/data/<im_1 path>``, the official code's ``roco-dataset/data`` layout).

Images already JPEG are kept byte for byte; others are converted. Every write goes through a
temporary file and a rename; ``DIR/manifest.json`` (rewritten atomically after each image)
records the sha256 and source of every file, so a re-run skips images whose recorded checksum
verifies and re-fetches missing or corrupted ones. Transient HTTP errors are retried with
backoff, a thread pool bounds concurrency, failures are summarised at the end, and the exit code
is 1 if any image is missing (2 for bad arguments).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from robustness.data.image_sources import (
    HttpFetcher,
    ImageJob,
    ImageSource,
    LegacyPackageSource,
    PmcBucketSource,
    RocoSource,
    SourceMiss,
    as_jpeg,
    pmcid_from_dlink,
)
from robustness.errors import UserError

REPO_ID = "shahab7899/MediConfusion"
HUB_FILES = ("dataset.json", "image_dict.json")  # what the hub dataset repo holds that we need
STATISTICS = "statistics.json"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
DEFAULT_BUCKET_URL = "https://pmc-oa-opendata.s3.amazonaws.com"
DEFAULT_LEGACY_URL = "https://ftp.ncbi.nlm.nih.gov/pub/pmc/oa_package"
SOURCE_NAMES = ("bucket", "legacy", "roco")
ENV_BUCKET, ENV_LEGACY, ENV_ROCO = "ROBUSTNESS_PMC_BUCKET_URL", "ROBUSTNESS_PMC_LEGACY_URL", "ROBUSTNESS_ROCO_DIR"


# ---------------------------------------------------------------------------------------- files

def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Manifest:
    """``DIR/manifest.json``: checksums and provenance of every file, saved after each change."""

    def __init__(self, out: Path) -> None:
        self.path = out / MANIFEST
        self._lock = threading.Lock()
        self.data: dict[str, Any] = {"format": MANIFEST_FORMAT, "annotations": {}, "images": {},
                                     "failures": {}}
        if self.path.is_file():
            try:
                loaded = json.loads(self.path.read_text(encoding="utf-8"))
                if isinstance(loaded, dict) and isinstance(loaded.get("images"), dict):
                    self.data.update(loaded)
            except (json.JSONDecodeError, UnicodeDecodeError, OSError):
                print(f"warning: {self.path} is unreadable; every image will be verified afresh",
                      file=sys.stderr)

    @property
    def images(self) -> dict[str, dict[str, Any]]:
        return self.data["images"]

    def verified(self, out: Path, local_id: str) -> bool:
        """True when ``images/<id>.jpg`` exists and matches its recorded sha256."""
        record = self.images.get(local_id)
        path = out / "images" / f"{local_id}.jpg"
        return bool(record) and path.is_file() and sha256_file(path) == record.get("sha256")

    def save(self) -> None:
        with self._lock:
            self.data["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            write_atomic(self.path, (json.dumps(self.data, indent=2, sort_keys=True) + "\n").encode())


# ---------------------------------------------------------------------------------- annotations

def _hub_error_message(err: Exception) -> str:
    first = str(err).strip().splitlines()
    return first[0] if first else type(err).__name__


def fetch_hub_file(filename: str, *, repo_id: str, revision: str, endpoint: str | None,
                   cache_dir: str | None, offline: bool) -> tuple[Path, str]:
    """Download (or reuse from the hub cache) one file of the dataset repo → (path, commit)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{repo_id}@{revision}"
    try:
        local = hf_hub_download(repo_id, filename, repo_type="dataset", revision=revision,
                                endpoint=endpoint, cache_dir=cache_dir, local_files_only=offline)
    except HFValidationError as err:
        raise UserError(f"--repo-id {repo_id!r} / --revision {revision!r}: "
                        f"{_hub_error_message(err)}") from None
    except RevisionNotFoundError:
        raise UserError(f"--revision {revision!r}: no such revision of dataset {repo_id}") from None
    except RepositoryNotFoundError:
        raise UserError(f"--repo-id {repo_id!r}: no such dataset on {endpoint or 'the hub'}") from None
    except LocalEntryNotFoundError as err:
        raise DownloadFailed(f"{filename} from {where}: not in the hub cache and the hub is "
                             f"unreachable ({_hub_error_message(err)})") from None
    except EntryNotFoundError:
        raise DownloadFailed(f"{filename}: not found in dataset {where}") from None
    except (HfHubHTTPError, OSError, ValueError) as err:
        raise DownloadFailed(f"{filename} from {where}: {_hub_error_message(err)}") from None
    path = Path(local)
    return path, path.parent.name  # the cache stores files under snapshots/<commit>/<filename>


class DownloadFailed(Exception):
    """The annotations could not be obtained (exit code 1: not a usage error)."""


def install_annotations(args: Any, out: Path, manifest: Manifest) -> None:
    """Put dataset.json and image_dict.json into ``out`` (hub or --annotations-dir), then derive
    statistics.json; record checksums and provenance."""
    revision = args.revision
    records = manifest.data["annotations"]
    for name in HUB_FILES:
        if args.annotations_dir:
            src = Path(args.annotations_dir) / name
            if not src.is_file():
                raise UserError(f"--annotations-dir: {src} does not exist")
            origin = str(src.resolve())
        else:
            src, commit = fetch_hub_file(name, repo_id=args.repo_id, revision=revision,
                                         endpoint=args.hf_endpoint, cache_dir=args.cache_dir,
                                         offline=args.offline)
            manifest.data["commit"] = commit
            revision = commit  # fetch the second file from the very same commit
            origin = f"hf://datasets/{args.repo_id}@{commit}/{name}"
        data = src.read_bytes()
        dest = out / name
        if not dest.is_file() or sha256_file(dest) != hashlib.sha256(data).hexdigest():
            write_atomic(dest, data)
        records[name] = {"sha256": hashlib.sha256(data).hexdigest(), "source": origin}
    if args.annotations_dir:
        manifest.data.update({"repo_id": None, "revision": None, "commit": None})
    else:
        manifest.data.update({"repo_id": args.repo_id, "revision": args.revision})

    from robustness.data.mediconfusion import load_benchmark

    counts = load_benchmark(out / "dataset.json").category_counts
    stats = (json.dumps(counts, indent=4) + "\n").encode()
    if not (out / STATISTICS).is_file() or (out / STATISTICS).read_bytes() != stats:
        write_atomic(out / STATISTICS, stats)
    records[STATISTICS] = {"sha256": hashlib.sha256(stats).hexdigest(),
                           "source": "derived from dataset.json (category_1 + category_2 counts)"}
    manifest.save()


def plan_jobs(out: Path) -> list[ImageJob]:
    """One job per distinct local image id referenced by dataset.json, in first-seen order."""
    from robustness.data.mediconfusion import load_benchmark

    benchmark = load_benchmark(out / "dataset.json")
    path = out / "image_dict.json"
    try:
        image_dict = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(image_dict, dict):
        raise UserError(f"{path}: expected an object keyed by ROCO image path")
    jobs: dict[str, ImageJob] = {}
    for pair in benchmark:
        for ref, local_id in zip(pair.mediconfusion.image_refs, pair.mediconfusion.local_ids):
            if local_id in jobs:
                continue
            entry = image_dict.get(ref)
            if not isinstance(entry, dict):
                jobs[local_id] = ImageJob(local_id=local_id, roco_ref=ref)
                continue
            if str(entry.get("local", local_id)) != local_id:
                raise UserError(f"{path}: {ref}: field 'local' is {entry.get('local')!r} but "
                                f"dataset.json says {local_id}")
            dlink = entry.get("dlink") if isinstance(entry.get("dlink"), str) else None
            name = entry.get("file_name") if isinstance(entry.get("file_name"), str) else None
            jobs[local_id] = ImageJob(local_id=local_id, roco_ref=ref, dlink=dlink, file_name=name,
                                      pmcid=pmcid_from_dlink(dlink or ""))
    return list(jobs.values())


# ------------------------------------------------------------------------------------- images

@dataclass
class Outcome:
    job: ImageJob
    record: dict[str, Any] | None = None
    reasons: dict[str, str] = field(default_factory=dict)


def fetch_image(job: ImageJob, sources: list[ImageSource], images_dir: Path) -> Outcome:
    """Try each source in turn; save the first decodable image as ``<local id>.jpg``."""
    outcome = Outcome(job)
    for source in sources:
        try:
            fetched = source.fetch(job)
            data, converted = as_jpeg(fetched.data)
        except SourceMiss as err:
            outcome.reasons[source.name] = str(err)
            continue
        write_atomic(images_dir / f"{job.local_id}.jpg", data)
        outcome.record = {
            "file": f"images/{job.local_id}.jpg", "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data), "source": fetched.source, "location": fetched.location,
            "converted": converted, "pmcid": job.pmcid, "file_name": job.file_name,
            "roco": job.roco_ref,
        }
        return outcome
    return outcome


def build_sources(args: Any, http: HttpFetcher, workdir: Path) -> list[ImageSource]:
    sources: list[ImageSource] = []
    for name in args.sources:
        if name == "bucket":
            sources.append(PmcBucketSource(http, args.bucket_url))
        elif name == "legacy" and args.legacy_base:
            sources.append(LegacyPackageSource(http, args.legacy_base, workdir))
        elif name == "roco" and args.roco_dir:
            sources.append(RocoSource(Path(args.roco_dir)))
    return sources


def download_images(args: Any, out: Path, manifest: Manifest, jobs: list[ImageJob]) -> dict[str, Outcome]:
    """Fetch every job that is not already verified; returns the failures by local id."""
    from tqdm import tqdm

    images_dir = out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    todo = [j for j in jobs if args.force or not manifest.verified(out, j.local_id)]
    skipped = len(jobs) - len(todo)
    failures: dict[str, Outcome] = {}
    manifest.data["failures"] = {}
    if not todo:
        manifest.save()
        return failures
    workdir = out / ".download-tmp"
    http = HttpFetcher(timeout=args.timeout, retries=args.retries, backoff=args.backoff)
    sources = build_sources(args, http, workdir)
    pool = ThreadPoolExecutor(max_workers=args.workers, thread_name_prefix="download")
    bar = tqdm(total=len(jobs), initial=skipped, desc="MediConfusion images", unit="img",
               disable=args.quiet, file=sys.stderr)
    try:
        futures: dict[Future, ImageJob] = {pool.submit(fetch_image, j, sources, images_dir): j
                                           for j in todo}
        for future in as_completed(futures):
            job = futures[future]
            try:
                outcome = future.result()
            except Exception as err:  # a bug or a disk error: keep going, report it with the rest
                outcome = Outcome(job, reasons={"error": f"{type(err).__name__}: {err}"})
            if outcome.record is not None:
                manifest.images[job.local_id] = outcome.record
            else:
                failures[job.local_id] = outcome
                manifest.data["failures"][job.local_id] = {
                    "pmcid": job.pmcid, "file_name": job.file_name, "roco": job.roco_ref,
                    "reasons": outcome.reasons or {"-": "no source configured"}}
            manifest.save()
            bar.update(1)
            bar.set_postfix(failed=len(failures), refresh=False)
    finally:
        bar.close()
        pool.shutdown(wait=True, cancel_futures=True)
        http.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return failures
