"""Answer-preserving augmentation of processed pixel batches while training the reference model.

Phantom pairs differ at one small finding, and a few thousand training images are easy to learn
by heart: measured here, the stage-1 answer head reached 97% on the training images of thin
findings (fractures, aneurysms) and 67% on held-out ones, and in stage 2 the held-out letter
accuracy stopped rising at step 500 while the training loss kept falling. Small shifts, global
contrast and brightness changes and pixel noise alter every value the model could memorise and
no answer: shifts stay far below the distances side and zone questions are about, and global
intensity changes keep every finding's contrast to its surroundings.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Augment:
    """Ranges of the random changes (0 turns one off); randomness comes from the caller's
    ``torch.Generator``, so a run is reproducible from its seed."""

    shift: int = 0  # largest translation in pixels, each axis (edges repeat into the gap)
    contrast: float = 0.0  # largest relative change of contrast around each image's mean
    brightness: float = 0.0  # largest offset, in normalised pixel units
    noise: float = 0.0  # standard deviation of Gaussian pixel noise, normalised units

    def __post_init__(self) -> None:
        for name in ("shift", "contrast", "brightness", "noise"):
            if getattr(self, name) < 0:
                raise ValueError(f"augment.{name} must be ≥ 0, got {getattr(self, name)}")
        if self.contrast >= 1:
            raise ValueError(f"augment.contrast must be < 1, got {self.contrast}")

    @property
    def active(self) -> bool:
        return bool(self.shift or self.contrast or self.brightness or self.noise)

    def __call__(self, pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A changed copy of ``pixels`` (images, channels, height, width)."""
        if not self.active:
            return pixels
        out = pixels
        n = pixels.shape[0]
        if self.shift:
            s = self.shift
            padded = nn.functional.pad(pixels, (s, s, s, s), mode="replicate")
            offsets = torch.randint(0, 2 * s + 1, (n, 2), generator=generator).tolist()
            h, w = pixels.shape[-2:]
            out = torch.stack([padded[i, :, dy:dy + h, dx:dx + w]
                               for i, (dy, dx) in enumerate(offsets)])
        if self.contrast or self.brightness:
            scale = 1 + self.contrast * (2 * torch.rand(n, 1, 1, 1, generator=generator) - 1)
            offset = self.brightness * (2 * torch.rand(n, 1, 1, 1, generator=generator) - 1)
            mean = out.mean(dim=(1, 2, 3), keepdim=True)
            out = (out - mean) * scale + mean + offset
        if self.noise:
            noise = torch.randn((n, 1, *out.shape[-2:]), generator=generator)  # one grey level
            out = out + self.noise * noise
        return out
