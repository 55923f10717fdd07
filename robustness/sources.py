"""Where a run's benchmark comes from: the ``dataset`` config group builds one of these.

``PhantomSource`` generates the synthetic phantom set once into a cache folder keyed by the
generator's arguments and reuses it; ``FolderSource`` reads a MediConfusion-format folder
(``dataset.json`` + ``images/``) as written by ``robustness data download`` or ``data phantom``.
Both return a :class:`Benchmark` with images attached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from robustness.data.mediconfusion import load_benchmark
from robustness.data.types import Benchmark
from robustness.errors import ConfigError, UserError

log = logging.getLogger(__name__)

# The reference model trains on phantom seeds >= this; evaluation seeds stay below.
TRAINING_SEED_START = 1000
PHANTOM_DONE = ".complete"


def generator_fingerprint() -> str:
    """sha256 over the phantom generator's source files."""
    from robustness.data import phantom

    digest = hashlib.sha256()
    for path in sorted(Path(phantom.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


class BenchmarkSource(ABC):
    """Builds the benchmark a run answers."""

    name: str = ""

    @abstractmethod
    def load(self) -> Benchmark:
        """The benchmark with every pair's image files attached (``Pair.images``)."""

    def describe(self) -> dict[str, Any]:
        """Settings worth recording in the run summary."""
        return {"name": self.name}


class FolderSource(BenchmarkSource):
    """A MediConfusion-format folder: ``root/dataset.json`` and ``root/images/<local id>.<ext>``."""

    def __init__(self, root: str | Path, name: str = "mediconfusion",
                 image_extension: str | None = None, verify_images: bool = True) -> None:
        self.root = Path(os.path.expanduser(str(root)))
        self.name = name
        self.image_extension = image_extension
        self.verify_images = verify_images

    def load(self) -> Benchmark:
        annotations = self.root / "dataset.json"
        hint = f"run `robustness data download --out {self.root}`"
        if not annotations.is_file():
            raise UserError(f"{annotations}: no such file (dataset.root={self.root}; {hint})")
        images = self.root / "images"
        if not images.is_dir() or not any(images.iterdir()):
            raise UserError(f"{images}: no images (dataset.root={self.root}; {hint})")
        try:
            return load_benchmark(annotations, images, image_extension=self.image_extension,
                                  require_images=True, verify_images=self.verify_images,
                                  name=self.name)
        except UserError as err:
            if "image not found" in str(err) or "does not exist" in str(err):
                raise UserError(f"{err} — images are missing; {hint}") from None
            raise

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "root": str(self.root)}


def _checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file of a generated set, by path relative to it."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != PHANTOM_DONE}


def _damage(folder: Path) -> str | None:
    """None for an intact generated set, else what is wrong with it."""
    try:
        marker = json.loads((folder / PHANTOM_DONE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "not generated"
    except (OSError, ValueError):
        return "its completion marker is unreadable"
    recorded = marker.get("sha256") if isinstance(marker, dict) else None
    if not isinstance(recorded, dict) or not recorded:
        return "it was written without checksums"
    for name, digest in recorded.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            return f"{name} does not match its recorded checksum"
    return None


def _install(tmp: Path, folder: Path) -> None:
    """Move a freshly generated set into place, replacing a damaged copy (atomic renames)."""
    try:
        os.replace(tmp, folder)  # fails if the folder exists: another process, or damage
        return
    except OSError:
        pass
    if _damage(folder) is None:
        return  # another process finished an intact copy first
    trash = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    try:
        os.replace(folder, trash)
    except OSError:
        pass
    shutil.rmtree(trash, ignore_errors=True)
    os.replace(tmp, folder)


class PhantomSource(BenchmarkSource):
    """The phantom evaluation set, generated once per argument set into ``cache_dir``."""

    def __init__(self, seed: int = 0, pairs: int = 176, size: int = 224,
                 cache_dir: str | Path = ".cache/robustness/phantom", name: str = "phantom",
                 difficulty: dict[str, Any] | None = None,
                 modalities: list[str] | str | None = None,
                 families: list[str] | str | None = None) -> None:
        if isinstance(pairs, bool) or not isinstance(pairs, int) or pairs <= 0:
            raise ConfigError(f"dataset.pairs: must be a positive integer, got {pairs!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"dataset.seed: must be a non-negative integer, got {seed!r}")
        if seed >= TRAINING_SEED_START:
            log.warning("dataset.seed=%d is in the reference model's training range (>= %d): "
                        "its scores on this set are not held out", seed, TRAINING_SEED_START)
        self.seed, self.pairs, self.size = seed, pairs, size
        self.difficulty = dict(difficulty or {})
        self.selection = {k: v for k, v in (("modalities", modalities), ("families", families))
                          if v is not None}
        self.cache_dir = Path(os.path.expanduser(str(cache_dir)))
        self.name = name

    @property
    def arguments(self) -> dict[str, Any]:
        return {"pairs": self.pairs, "seed": self.seed, "size": self.size, **self.selection,
                **self.difficulty}

    def folder(self) -> Path:
        """The cache folder of this argument set; the key also covers the generator's source,
        so a changed generator never serves a stale set."""
        key = json.dumps({"args": self.arguments, "generator": generator_fingerprint()},
                         sort_keys=True, default=str)
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        return self.cache_dir / f"seed{self.seed}-n{self.pairs}-s{self.size}-{digest}"

    def ensure(self) -> Path:
        """Generate the set unless a complete, intact copy is cached; safe under concurrent runs.

        The completion marker records every file's sha256; a copy whose files no longer match
        (a corrupted or edited image, a missing mask) is generated again."""
        from robustness.data.phantom import generate_phantom_benchmark

        folder = self.folder()
        problem = _damage(folder)
        if problem is None:
            return folder
        if problem != "not generated":
            log.warning("phantom set %s: %s; generating it again", folder, problem)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            log.info("generating phantom set %s (once; cached in %s)", self.arguments, folder)
            generate_phantom_benchmark(tmp, pairs=self.pairs, seed=self.seed, size=self.size,
                                       **self.selection, **self.difficulty)
            marker = {"arguments": self.arguments, "sha256": _checksums(tmp)}
            (tmp / PHANTOM_DONE).write_text(json.dumps(marker, sort_keys=True) + "\n")
            _install(tmp, folder)
        except TypeError as err:
            raise ConfigError(f"dataset.difficulty: {err}") from None
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return folder

    def load(self) -> Benchmark:
        folder = self.ensure()
        return load_benchmark(folder / "dataset.json", folder / "images", require_images=True,
                              verify_images=False, name=f"{self.name}-seed{self.seed}")

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, **self.arguments, "folder": str(self.folder())}
