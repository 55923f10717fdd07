"""Images as providers accept them inline: base64, within each provider's size limits.

An image is sent as lossless PNG when it fits; otherwise it is downscaled to the longest side
the provider allows, then re-encoded as JPEG at falling quality and smaller sizes until it fits
its share of the request's byte budget. Encodings are cached by pixel digest, so the same image
asked about in several conditions is encoded once.
"""

from __future__ import annotations

import base64
import io
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Sequence

from robustness.models.api.failures import BAD_REQUEST, ApiFailure
from robustness.data.image import ImageInput


@dataclass(frozen=True)
class ImageLimits:
    """A provider's limits on inline images, counted on the base64 text actually sent."""

    max_bytes: int  # one image
    max_total_bytes: int  # all images of one request together
    max_side: int | None = None  # longest side in pixels

    def as_dict(self) -> dict[str, Any]:
        return {"max_bytes": self.max_bytes, "max_total_bytes": self.max_total_bytes,
                "max_side": self.max_side}


MB = 1024 * 1024
# OpenAI: 20 MB per image, 50 MB per request. Anthropic: 5 MB per image, 8000 px per side,
# 32 MB per request. Gemini: inline data up to 20 MB per request (the whole request).
OPENAI_LIMITS = ImageLimits(max_bytes=20 * MB, max_total_bytes=50 * MB, max_side=None)
ANTHROPIC_LIMITS = ImageLimits(max_bytes=5 * MB, max_total_bytes=30 * MB, max_side=8000)
GEMINI_LIMITS = ImageLimits(max_bytes=18 * MB, max_total_bytes=18 * MB, max_side=None)


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    media_type: str  # "image/png" or "image/jpeg"
    width: int
    height: int

    @property
    def b64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")

    @property
    def data_url(self) -> str:
        return f"data:{self.media_type};base64,{self.b64}"


def b64_size(n_bytes: int) -> int:
    return 4 * math.ceil(n_bytes / 3)


def _encode(img: Any, fmt: str, quality: int | None = None) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.save(buf, format="JPEG", quality=quality, optimize=True)
    else:
        img.save(buf, format="PNG")
    return buf.getvalue()


def encode_image(image: ImageInput, budget: int, max_side: int | None = None) -> EncodedImage:
    """``image`` as PNG if it fits ``budget`` (base64 bytes), else smaller/lossy until it does."""
    from PIL import Image

    img = image.pil("L" if image.pixels.ndim == 2 else "RGB")
    if max_side and max(img.size) > max_side:
        scale = max_side / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.LANCZOS)
    data = _encode(img, "PNG")
    if b64_size(len(data)) <= budget:
        return EncodedImage(data, "image/png", img.width, img.height)
    while True:
        for quality in (90, 80, 70, 60):
            data = _encode(img, "JPEG", quality)
            if b64_size(len(data)) <= budget:
                return EncodedImage(data, "image/jpeg", img.width, img.height)
        if max(img.size) <= 64:
            raise ApiFailure(BAD_REQUEST, f"image cannot be encoded within {budget} bytes")
        img = img.resize((max(1, round(img.width * 0.75)), max(1, round(img.height * 0.75))),
                         Image.LANCZOS)


class ImageEncoder:
    """Encodes the images of one request within ``limits``, caching recent encodings."""

    def __init__(self, limits: ImageLimits, cache_size: int = 256) -> None:
        self.limits = limits
        self._cache: OrderedDict[tuple[str, int], EncodedImage] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def encode_all(self, images: Sequence[ImageInput]) -> list[EncodedImage]:
        if not images:
            return []
        budget = min(self.limits.max_bytes, self.limits.max_total_bytes // len(images))
        return [self._encode_one(img, budget) for img in images]

    def _encode_one(self, image: ImageInput, budget: int) -> EncodedImage:
        key = (image.digest, budget)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        encoded = encode_image(image, budget, self.limits.max_side)
        with self._lock:
            self._cache[key] = encoded
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return encoded
