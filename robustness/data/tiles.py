"""Report tiles (an image letterboxed into a square) kept by pixel digest in the cache folder.

A rerun's report and examples show the same images again; with their tiles kept, it needs no
pixels, so a corrupted image recorded in an earlier run stays deferred and no corruption is
drawn again. Tiles are stored losslessly (PNG), so a rerun's report images are byte for byte
the first run's. The folder is a cache: an unreadable tile is drawn again.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from robustness.data.image import ImageInput


def thumbnail(pixels: np.ndarray, size: int) -> np.ndarray:
    """``pixels`` letterboxed into a size×size RGB tile."""
    from PIL import Image

    img = Image.fromarray(pixels).convert("RGB")
    img.thumbnail((size, size))
    tile = Image.new("RGB", (size, size), (0, 0, 0))
    tile.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
    return np.asarray(tile)


class TileStore:
    """Tiles under ``folder/<size>/<digest>.png``; with no folder every tile is drawn."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def tile(self, image: ImageInput, size: int) -> np.ndarray:
        """The size×size tile of ``image``: read back if kept, else drawn from its pixels."""
        from PIL import Image

        path = None if self.folder is None else self.folder / str(size) / f"{image.digest}.png"
        if path is not None and path.is_file():
            try:
                with Image.open(path) as kept:
                    tile = np.asarray(kept.convert("RGB"))
                if tile.shape == (size, size, 3):
                    return tile
            except OSError:
                pass  # unreadable: drawn again below
        tile = thumbnail(image.pixels, size)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp")
            Image.fromarray(tile).save(tmp, format="PNG")
            os.replace(tmp, path)
        return tile
