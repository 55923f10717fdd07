"""Load and validate MediConfusion-format annotations (``dataset.json``) and attach images.

The same reader serves the real benchmark and the phantom twin: only the image extension differs.
Every problem is reported as a :class:`UserError` naming the file, the pair id and the field.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any, Literal

from robustness.data.image import open_image
from robustness.data.types import OPTION_LABELS, Benchmark, MediConfusionFields, Pair
from robustness.errors import UserError

ImageSource = Literal["local", "roco"]
IMAGE_EXTENSIONS = (".jpg", ".png", ".jpeg")

_STR_FIELDS = ("question", "option_A", "option_B", "im_1", "im_2", "cap_1", "cap_2",
               "AI_question", "AI_option_A", "AI_option_B")
_REQUIRED = _STR_FIELDS + ("im_1_local", "im_2_local", "category_1", "category_2",
                           "im_1_correct", "im_2_correct", "BiomedCLIP_sim", "DINO_sim")


def _fail(path: Path, pair_id: str, field: str, problem: str) -> UserError:
    return UserError(f"{path}: pair {pair_id}: field '{field}': {problem}")


def _safe_relative(path: Path, pair_id: str, field: str, ref: str) -> PurePosixPath:
    """A reference that stays inside the image root: relative, no '..', no drive."""
    rel = PurePosixPath(ref.replace("\\", "/"))
    if not ref or rel.is_absolute() or ".." in rel.parts or ":" in ref:
        raise _fail(path, pair_id, field, f"image reference {ref!r} must stay inside the image root")
    return rel


def pair_from_record(path: Path, pair_id: str, raw: Any) -> Pair:
    """One ``dataset.json`` record as a :class:`Pair` (every problem names file, pair, field)."""
    if not isinstance(raw, dict):
        raise _fail(path, pair_id, "<pair>", "expected an object")
    for name in _REQUIRED:
        if name not in raw:
            raise _fail(path, pair_id, name, "missing")
    for name in _STR_FIELDS:
        if not isinstance(raw[name], str):
            raise _fail(path, pair_id, name, f"expected a string, got {type(raw[name]).__name__}")
    for name in ("question", "option_A", "option_B"):
        if not raw[name].strip():
            raise _fail(path, pair_id, name, "empty")
    for name in ("im_1_correct", "im_2_correct"):
        if raw[name] not in OPTION_LABELS:
            raise _fail(path, pair_id, name, f"must be 'A' or 'B', got {raw[name]!r}")
    if raw["im_1_correct"] == raw["im_2_correct"]:
        raise _fail(path, pair_id, "im_2_correct", f"equals im_1_correct ({raw['im_1_correct']!r}):"
                    " a confusing pair needs opposite answers for its two images")
    for name in ("category_1", "category_2"):
        cats = raw[name]
        if not isinstance(cats, list) or not cats or not all(isinstance(c, str) and c for c in cats):
            raise _fail(path, pair_id, name, "expected a non-empty list of category names")
    local_ids = []
    for name in ("im_1_local", "im_2_local"):
        value = raw[name]
        if isinstance(value, bool) or not isinstance(value, (int, str)) or str(value) == "":
            raise _fail(path, pair_id, name, "expected an integer or string id")
        _safe_relative(path, pair_id, name, str(value))
        if "/" in str(value):
            raise _fail(path, pair_id, name, "a local id must not contain '/'")
        local_ids.append(str(value))
    for name in ("im_1", "im_2"):
        _safe_relative(path, pair_id, name, raw[name])
    sims = []
    for name in ("BiomedCLIP_sim", "DINO_sim"):
        value = raw[name]
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise _fail(path, pair_id, name, "expected a number or null")
        sims.append(None if value is None else float(value))
    extra = {k: v for k, v in raw.items() if k not in _REQUIRED}
    return Pair(
        pair_id=pair_id,
        question=raw["question"].strip(),
        options=(raw["option_A"].strip(), raw["option_B"].strip()),
        correct=(raw["im_1_correct"], raw["im_2_correct"]),
        categories=(tuple(raw["category_1"]), tuple(raw["category_2"])),
        mediconfusion=MediConfusionFields(
            image_refs=(raw["im_1"], raw["im_2"]),
            local_ids=(local_ids[0], local_ids[1]),
            captions=(raw["cap_1"].strip(), raw["cap_2"].strip()),
            biomedclip_sim=sims[0],
            dino_sim=sims[1],
            ai_question=raw["AI_question"].strip(),
            ai_options=(raw["AI_option_A"].strip(), raw["AI_option_B"].strip())),
        extra=MappingProxyType(extra),
    )


class _DuplicateKey(Exception):
    pass


def _reject_duplicate_ids(items: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json`` keeps the last of repeated keys silently; a repeated pair id is an error."""
    out: dict[str, Any] = {}
    for key, value in items:
        if key in out:
            is_pair = isinstance(value, dict) and isinstance(out[key], dict)
            raise _DuplicateKey(f"pair {key}: given twice" if is_pair
                                else f"key {key!r} given twice in one object")
        out[key] = value
    return out


def read_annotations(path: str | Path) -> tuple[dict[str, Any], str]:
    """Read ``dataset.json``; returns the raw mapping and the sha256 of its bytes."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, expected dataset.json") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror})") from None
    try:
        raw = json.loads(data, object_pairs_hook=_reject_duplicate_ids)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None
    except _DuplicateKey as dup:
        raise UserError(f"{path}: {dup.args[0]}") from None
    if not isinstance(raw, dict) or not raw:
        raise UserError(f"{path}: expected a non-empty object keyed by pair id")
    return raw, hashlib.sha256(data).hexdigest()


def _fields(pair: Pair) -> MediConfusionFields:
    """The MediConfusion columns this loader attached (always present on its own pairs)."""
    assert pair.mediconfusion is not None, "pair was not read by pair_from_record"
    return pair.mediconfusion


def _folder_names(root: Path) -> dict[str, Path]:
    """The files of ``root`` by lower-cased name, so ``12.JPG`` serves local id 12."""
    try:
        return {p.name.lower(): p for p in root.iterdir()}
    except OSError:
        return {}


def _locate_image(path: Path, root: Path, pair: Pair, image: int, source: ImageSource,
                  extension: str | None, names: dict[str, Path]) -> Path:
    field = f"im_{image}_local" if source == "local" else f"im_{image}"
    if source == "roco":
        candidates = [root / _fields(pair).image_refs[image - 1]]
    else:
        exts = (extension,) if extension else IMAGE_EXTENSIONS
        wanted = [f"{_fields(pair).local_ids[image - 1]}{ext}" for ext in exts]
        candidates = [names.get(name.lower(), root / name) for name in wanted]
    for candidate in candidates:
        resolved = candidate.resolve()
        if not resolved.is_relative_to(root.resolve()):
            raise _fail(path, pair.pair_id, field, "image reference escapes the image root")
        if resolved.is_dir():
            raise _fail(path, pair.pair_id, field, f"{candidate} is a folder, not an image")
        if resolved.is_file():
            return resolved
    tried = ", ".join(c.name for c in candidates)
    raise _fail(path, pair.pair_id, field, f"image not found in {root} (tried {tried})")


def _check_decodes(path: Path, pair_id: str, field: str, image_path: Path) -> None:
    """Decode the whole image (``verify()`` alone misses truncated JPEGs); JPEGs are decoded at
    reduced scale (``draft``), which still reads every byte of the compressed stream."""
    from PIL import UnidentifiedImageError

    try:
        with open_image(image_path) as img:
            if img.format == "JPEG":
                img.draft(img.mode, (64, 64))
            img.load()
    except UserError as err:
        raise _fail(path, pair_id, field, str(err)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise _fail(path, pair_id, field, f"image does not decode: {image_path} ({err})") from None


def load_benchmark(
    annotations: str | Path,
    image_root: str | Path | None = None,
    *,
    image_source: ImageSource = "local",
    image_extension: str | None = None,
    require_images: bool = False,
    verify_images: bool = True,
    name: str | None = None,
) -> Benchmark:
    """Load a MediConfusion-format benchmark.

    ``image_root`` defaults to ``images/`` beside the annotations. With ``image_source='local'``
    images are ``<root>/<local id>.<ext>`` (``.jpg``, ``.png`` or ``.jpeg`` unless
    ``image_extension`` is given); with ``'roco'`` they are ``<root>/<im_1 path>`` in a ROCO
    checkout. Images are attached only when ``require_images`` is set (scoring needs none).
    """
    path = Path(annotations)
    raw, digest = read_annotations(path)
    pairs = [pair_from_record(path, str(pid), entry) for pid, entry in raw.items()]
    root = Path(image_root) if image_root is not None else path.parent / "images"
    if require_images:
        if not root.is_dir():
            raise UserError(f"{path}: image folder {root} does not exist "
                            "(run `robustness data download --out DIR` for MediConfusion)")
        attached = []
        decoded: set[Path] = set()  # images shared by several pairs are decoded once
        names = _folder_names(root)
        for pair in pairs:
            files = tuple(_locate_image(path, root, pair, i, image_source, image_extension,
                                        names) for i in (1, 2))
            if verify_images:
                for i, file in enumerate(files, start=1):
                    if file not in decoded:
                        field = f"im_{i}_local" if image_source == "local" else f"im_{i}"
                        _check_decodes(path, pair.pair_id, field, file)
                        decoded.add(file)
            attached.append(_replace_images(pair, files))
        pairs = attached
    return Benchmark(
        name=name or path.parent.name or "benchmark",
        pairs=tuple(pairs),
        source=path.resolve(),
        content_hash=digest,
        image_root=root.resolve() if require_images else None,
    )


def _replace_images(pair: Pair, files: tuple[Path, ...]) -> Pair:
    from dataclasses import replace

    return replace(pair, images=(files[0], files[1]))
