"""Write a phantom set to disk deterministically: PNGs with fixed settings, sorted JSON.

Each file is written to a temporary name and moved into place, and ``dataset.json`` is written
last, so an interrupted run never leaves annotations that point at missing images.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from robustness.errors import UserError

PHANTOM_FILE = re.compile(r"^ph\d+-\d+_[12]\.png$")


def png_bytes(array: np.ndarray) -> bytes:
    """8-bit greyscale PNG with fixed compression and no metadata (so equal arrays give equal bytes)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise UserError(f"{path}: cannot write ({err.strerror or err})") from None


def dataset_json(records: dict[str, dict[str, Any]]) -> bytes:
    """The annotations with sorted keys (zero-padded pair ids keep their order)."""
    return (json.dumps(records, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def prepare_folder(out: Path) -> tuple[Path, Path]:
    """Create ``out/images`` and ``out/masks``; refuse to overwrite annotations that are not a phantom set."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    existing = out / "dataset.json"
    if existing.is_file():
        try:
            raw = json.loads(existing.read_text(encoding="utf-8"))
            is_phantom = isinstance(raw, dict) and all(
                isinstance(v, dict) and isinstance(v.get("phantom"), dict) for v in raw.values())
        except (OSError, ValueError):
            is_phantom = False
        if not is_phantom:
            raise UserError(f"{existing}: exists and is not a phantom set; refusing to overwrite it "
                            "(choose another --out)")
    images, masks = out / "images", out / "masks"
    for folder in (out, images, masks):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"{folder}: cannot create folder ({err.strerror or err})") from None
        if not os.access(folder, os.W_OK):
            raise UserError(f"{folder}: folder is not writable")
    return images, masks


def remove_stale(folder: Path, keep: set[str]) -> int:
    """Delete phantom image files from an earlier, larger run that the new set does not reference."""
    removed = 0
    for path in folder.iterdir():
        if PHANTOM_FILE.match(path.name) and path.name not in keep:
            path.unlink()
            removed += 1
    return removed
