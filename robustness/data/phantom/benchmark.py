"""Public entry points: ``generate_phantom_benchmark`` writes a folder, ``phantom_pairs`` yields pairs
in memory (for code that wants arrays, e.g. training a reference model without touching disk)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator

from robustness.data.phantom.findings import select_kinds
from robustness.data.phantom.generator import GeneratedPair, generate_pair, kind_for
from robustness.data.phantom.settings import FAMILIES, MODALITIES, make_difficulty, select
from robustness.data.phantom.writer import (dataset_json, png_bytes, prepare_folder, remove_stale,
                                            write_atomic)
from robustness.errors import UserError

MAX_PAIRS = 100_000


def _check_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{name}: expected an integer, got {value!r}")
    if not low <= value <= high:
        raise UserError(f"{name}: {value} is outside [{low}, {high}]")
    return value


def phantom_pairs(*, pairs: int = 176, seed: int = 0, size: int = 224,
                  modalities: Iterable[str] | str | None = None, families: Iterable[str] | str | None = None,
                  **difficulty: Any) -> Iterator[GeneratedPair]:
    """Yield the pairs :func:`generate_phantom_benchmark` would write (images and masks as arrays,
    the ``dataset.json`` record), validating every argument before the first pair."""
    pairs = _check_int("pairs", pairs, 1, MAX_PAIRS)
    seed = _check_int("seed", seed, 0, 2**63 - 1)
    size = _check_int("size", size, 64, 2048)
    settings = make_difficulty(**difficulty)
    kinds = select_kinds(select("modalities", modalities, MODALITIES), select("families", families, FAMILIES))
    width = max(4, len(str(pairs)))

    def generate() -> Iterator[GeneratedPair]:
        for index in range(pairs):
            yield generate_pair(index, seed, size, settings, kind_for(index, seed, kinds), width)

    return generate()


def generate_phantom_benchmark(out: str | Path, *, pairs: int = 176, seed: int = 0, size: int = 224,
                               modalities: Iterable[str] | str | None = None,
                               families: Iterable[str] | str | None = None,
                               **difficulty: Any) -> Path:
    """Write a phantom benchmark to ``out`` (``dataset.json``, ``images/``, ``masks/``); return the
    ``dataset.json`` path.

    ``difficulty`` knobs: ``finding_scale``, ``contrast``, ``noise`` (floats, default 1) and
    ``distractors`` (int, default 2). ``modalities`` / ``families`` restrict the pair kinds (names
    in :data:`MODALITIES` / :data:`FAMILIES`, a list or a comma-separated string).
    """
    stream = phantom_pairs(pairs=pairs, seed=seed, size=size, modalities=modalities, families=families,
                           **difficulty)
    out = Path(out)
    images_dir, masks_dir = prepare_folder(out)
    records = {}
    names = set()
    for pair in stream:
        for n in (0, 1):
            name = f"{pair.record[f'im_{n + 1}_local']}.png"
            names.add(name)
            write_atomic(images_dir / name, png_bytes(pair.images[n]))
            write_atomic(masks_dir / name, png_bytes(pair.masks[n].astype("uint8") * 255))
        records[pair.pair_id] = pair.record
    for folder in (images_dir, masks_dir):
        remove_stale(folder, names)
    target = out / "dataset.json"
    write_atomic(target, dataset_json(records))
    return target
