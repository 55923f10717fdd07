"""Phantom splits for training and evaluating the reference model.

Training uses phantom seeds ≥ 1000 and evaluation seeds < 1000 (the default experiment asks seed
0), so no evaluated image is ever trained on. Generated sets are kept in a data folder keyed by
their settings and reused (the generator is deterministic: same settings, same bytes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from robustness.data.mediconfusion import load_benchmark
from robustness.data.types import Benchmark, Pair
from robustness.errors import UserError
from robustness.data.image import ImageInput
from robustness.reference.examples import PairImage

FIRST_TRAINING_SEED = 1000  # seeds below are evaluation seeds


def pair_family(pair: Pair, index: int | None = None) -> str:
    """The phantom finding family of a pair (or of one of its images); ``unknown`` elsewhere."""
    phantom = pair.extra.get("phantom") if pair.extra else None
    if not isinstance(phantom, Mapping):
        return "unknown"
    if index is not None and isinstance(phantom.get(f"im_{index}"), Mapping):
        family = phantom[f"im_{index}"].get("family")
        if family:
            return str(family)
    return str(phantom.get("family") or "unknown")


def pair_kind(pair: Pair) -> str | None:
    """The phantom kind of a pair (``angio.stent``: modality and finding), None elsewhere."""
    phantom = pair.extra.get("phantom") if pair.extra else None
    kind = phantom.get("kind") if isinstance(phantom, Mapping) else None
    return str(kind) if kind else None


# Answers that mean the same visual state across question styles ("normal" = no finding).
_CANONICAL_ANSWERS = {"normal": "absent", "abnormal": "present"}


def option_key(text: str) -> str:
    """Option texts that differ only in case, spacing or a final full stop are one class."""
    return " ".join(text.lower().rstrip(".").split())


def answer_classes(pair: Pair, index: int) -> tuple[str, str]:
    """What options A and B assert about image ``index``: ``finding:answer`` from the phantom
    metadata (one class per visual state), else the option texts themselves."""
    phantom = pair.extra.get("phantom") if pair.extra else None
    if isinstance(phantom, Mapping):
        image = phantom.get(f"im_{index}")
        answers = phantom.get("answers")
        if isinstance(image, Mapping) and isinstance(answers, Mapping) and image.get("finding"):
            keys = []
            for label in ("A", "B"):
                answer = str(answers.get(label, label))
                keys.append(f"{image['finding']}:{_CANONICAL_ANSWERS.get(answer, answer)}")
            if keys[0] != keys[1]:
                return keys[0], keys[1]
    return option_key(pair.options[0]), option_key(pair.options[1])


def finding_of(pair: Pair, index: int) -> tuple[str, bool, Path | None]:
    """(finding name, whether it is present in the image, its mask file) from the metadata."""
    phantom = pair.extra.get("phantom") if pair.extra else None
    image = phantom.get(f"im_{index}") if isinstance(phantom, Mapping) else None
    if not isinstance(image, Mapping) or pair.images is None:
        return "", False, None
    mask = image.get("mask")
    path = Path(pair.images[index - 1]).parent.parent / str(mask) if mask else None
    return str(image.get("finding") or ""), bool(image.get("present")), \
        path if path is not None and path.is_file() else None


def split_folder(data_dir: Path, seed: int, pairs: int, size: int,
                 difficulty: Mapping[str, Any]) -> Path:
    knobs = "".join(f"-{k}{v}" for k, v in sorted(difficulty.items()))
    return Path(data_dir) / f"phantom-seed{seed}-pairs{pairs}-size{size}{knobs}"


def _split_stamp(data_dir: str | Path, seed: int, pairs: int, size: int,
                 difficulty: Mapping[str, Any]) -> tuple[Path, dict[str, Any], bool]:
    """(folder, settings, whether the folder already holds exactly this split)."""
    folder = split_folder(Path(data_dir), seed, pairs, size, difficulty)
    stamp = folder / "reference-split.json"
    settings = {"seed": seed, "pairs": pairs, "size": size, "difficulty": dict(difficulty)}
    done = stamp.is_file() and json.loads(stamp.read_text()) == settings
    return folder, settings, done


def _generate_split(data_dir: str | Path, seed: int, pairs: int, size: int,
                    difficulty: Mapping[str, Any]) -> Path:
    """The split's folder, generated unless it is already there; stamped last, so an
    interrupted split is generated again."""
    from robustness.data.phantom import generate_phantom_benchmark

    folder, settings, done = _split_stamp(data_dir, seed, pairs, size, difficulty)
    if done:
        return folder
    try:
        generate_phantom_benchmark(folder, pairs=pairs, seed=seed, size=size, **difficulty)
        (folder / "reference-split.json").write_text(json.dumps(settings))
    except OSError as err:
        raise UserError(f"{folder}: cannot write phantom data ({err.strerror or err})") from None
    return folder


def generate_splits(data_dir: str | Path, seeds: Sequence[int], *, pairs: int, size: int = 224,
                    difficulty: Mapping[str, Any] | None = None, workers: int = 1) -> int:
    """Generate the missing splits of ``seeds`` with ``workers`` processes (the generator is
    single-threaded numpy, so on 2 cores two processes halve a first training run's data step).
    Returns how many splits were generated; each split's bytes do not depend on ``workers``."""
    difficulty = dict(difficulty or {})
    missing = [s for s in dict.fromkeys(seeds)
               if not _split_stamp(data_dir, s, pairs, size, difficulty)[2]]
    if workers <= 1 or len(missing) <= 1:
        for seed in missing:
            _generate_split(data_dir, seed, pairs, size, difficulty)
        return len(missing)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
    with ProcessPoolExecutor(max_workers=min(workers, len(missing)), mp_context=context) as pool:
        for _ in pool.map(_generate_split, [data_dir] * len(missing), missing,
                          [pairs] * len(missing), [size] * len(missing),
                          [difficulty] * len(missing)):
            pass
    return len(missing)


def phantom_split(data_dir: str | Path, *, seed: int, pairs: int, size: int = 224,
                  difficulty: Mapping[str, Any] | None = None) -> Benchmark:
    """The phantom benchmark for ``seed`` (generated on first use, then read from the folder)."""
    folder = _generate_split(data_dir, seed, pairs, size, dict(difficulty or {}))
    return load_benchmark(folder / "dataset.json", require_images=True, verify_images=False,
                          name=f"phantom-seed{seed}")


def pair_images(benchmarks: Iterable[Benchmark]) -> list[PairImage]:
    """Both images of every pair, read as the adapters read them."""
    items = []
    for bench in benchmarks:
        for pair in bench:
            assert pair.images is not None
            for index in (1, 2):
                finding, present, mask = finding_of(pair, index)
                items.append(PairImage(pair=pair, index=index,
                                       image=ImageInput.open(pair.images[index - 1]),
                                       family=pair_family(pair, index),
                                       answer_classes=answer_classes(pair, index),
                                       finding=finding, present=present, mask=mask))
    return items


def training_seeds(first: int, count: int) -> list[int]:
    """``count`` consecutive seeds from ``first``, refused if any is an evaluation seed."""
    if count < 1:
        raise UserError(f"data.train_seeds.count: must be at least 1, got {count}")
    if first < FIRST_TRAINING_SEED:
        raise UserError(f"data.train_seeds.first: {first} is an evaluation seed; training seeds "
                        f"start at {FIRST_TRAINING_SEED} so evaluation images are never trained on")
    return list(range(first, first + count))
