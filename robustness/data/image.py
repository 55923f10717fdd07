"""One image as the model sees it: uint8 pixels with a content digest. Pure data, no torch."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from robustness.errors import UserError


def open_image(path: str | Path) -> Any:
    """``PIL.Image.open(path)`` with the decompression-bomb guard as one clear error: an image
    over PIL's pixel limit (``MAX_IMAGE_PIXELS``, ~89 M) is refused before it is decoded."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except Image.DecompressionBombError:
            img = None
    if img is None or (limit and img.width * img.height > limit):
        size = "" if img is None else f" ({img.width}×{img.height} = {img.width * img.height:,})"
        if img is not None:
            img.close()
        raise UserError(f"{path}: too many pixels{size} — over the {limit:,}-pixel limit that "
                        "guards against decompression bombs; downscale the image")
    return img


@dataclass(frozen=True, eq=False)
class ImageInput:
    """One image as uint8 pixels (H×W grayscale or H×W×3 RGB), the form probes produce.

    ``digest`` hashes the pixels after any perturbation, so it keys the answer cache.
    """

    pixels: np.ndarray

    def __post_init__(self) -> None:
        arr = np.ascontiguousarray(self.pixels)
        if arr.dtype != np.uint8 or arr.ndim not in (2, 3):
            raise ValueError("ImageInput needs a uint8 H×W or H×W×C array")
        arr.setflags(write=False)
        object.__setattr__(self, "pixels", arr)

    @classmethod
    def open(cls, path: str | Path) -> "ImageInput":
        """Read an image file (grayscale stays grayscale, everything else becomes RGB)."""
        with open_image(path) as img:
            img = img.convert("L") if img.mode in ("L", "I;16", "I", "1") else img.convert("RGB")
            return cls(np.asarray(img, dtype=np.uint8))

    @property
    def digest(self) -> str:
        """sha256 of shape and pixel bytes (cached)."""
        cached = self.__dict__.get("_digest")
        if cached is None:
            h = hashlib.sha256(str(self.pixels.shape).encode())
            h.update(self.pixels.tobytes())
            cached = h.hexdigest()
            object.__setattr__(self, "_digest", cached)
        return cached

    def pil(self, mode: str = "RGB"):
        """A PIL image in ``mode`` (RGB by default, as most processors expect)."""
        from PIL import Image

        return Image.fromarray(self.pixels).convert(mode)

    def png_bytes(self) -> bytes:
        """Lossless PNG encoding, e.g. for API providers."""
        buf = io.BytesIO()
        self.pil("L" if self.pixels.ndim == 2 else "RGB").save(buf, format="PNG")
        return buf.getvalue()


class DeferredImage(ImageInput):
    """An image whose digest is known before its pixels (a rerun's corruption, recorded the
    first time it was computed): the answer cache needs only the digest, so the pixels are
    computed on first use — a report's thumbnail, a cache miss — and checked against it."""

    def __init__(self, make: Callable[[], np.ndarray], digest: str, source: str) -> None:
        object.__setattr__(self, "_make", make)
        object.__setattr__(self, "_digest", digest)
        object.__setattr__(self, "_source", source)

    def __getattr__(self, name: str) -> Any:
        if name != "pixels":
            raise AttributeError(name)
        made = ImageInput(self._make())
        if made.digest != self._digest:
            raise UserError(f"{self._source}: a recorded corruption no longer reproduces its "
                            f"pixels (digest {made.digest[:12]} != {self._digest[:12]}); delete "
                            "that file and run again")
        object.__setattr__(self, "pixels", made.pixels)
        return made.pixels
