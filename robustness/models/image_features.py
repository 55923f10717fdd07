"""Per-image work kept per pixel digest: the processor's pixel rows and the vision tower's output.

Every condition that shows the clean pixels (text-only probes, prompting strategies, PS's option
rows) would otherwise run the image processor and the vision tower on them again. The image
processor is stood in for during the adapter's processor call, so the processor still writes
the prompt's image tokens from pixel rows exactly as it computed them. Transformers models accept
precomputed image features as ``mm_encoder_outputs``; for families whose processor gives one
``pixel_values`` row per image and whose ``get_image_features`` returns one feature tensor per
image, as a list or stacked (verified per family in ``tests/robustness/models/
test_families.py``), the adapter computes only the images it has not seen and passes the rest
from here. Kept rows are copies, so a stored image never holds on to its whole batch.
"""

from __future__ import annotations

from typing import Any, Sequence

# per-image inputs of get_image_features, sliced to the images not yet stored
PER_IMAGE_INPUTS = ("pixel_values", "image_sizes")


def _flat(images: Any) -> list[Any]:
    if isinstance(images, (list, tuple)):
        return [img for part in images for img in _flat(part)]
    return [images]


class _StoredPixels:
    """Stands in for a processor's image processor for one call: rows of images processed
    before (same digest, same settings) come from the store, the rest from the real one (kept
    in the store where they fit). Any output that is not one tensor row per image, or rows whose
    shapes differ, falls back to the real image processor for the whole call."""

    def __init__(self, inner: Any, store: "FeatureStore", digests: Sequence[str]) -> None:
        self._inner, self._store, self._digests = inner, store, list(digests)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __call__(self, images: Any, *args: Any, **kwargs: Any) -> Any:
        import torch
        from transformers import BatchFeature

        flat = _flat(images)
        if len(flat) != len(self._digests) or args:
            return self._inner(images, *args, **kwargs)
        settings = repr(sorted(kwargs.items()))
        keys = [(d, settings) for d in self._digests]
        fresh: dict[tuple[str, str], int] = {}  # first position of each image not stored
        for i, key in enumerate(keys):
            if key not in self._store.pixels and key not in fresh:
                fresh[key] = i
        computed: dict[tuple[str, str], dict[str, Any]] = {}
        if fresh:
            out = self._inner([flat[i] for i in fresh.values()], **kwargs)
            if not all(isinstance(v, torch.Tensor) and v.shape[0] == len(fresh)
                       for v in out.values()):
                return self._inner(images, *args, **kwargs)
            for row, key in enumerate(fresh):
                computed[key] = {name: v[row] for name, v in out.items()}
                self._store.keep_pixels(key, computed[key])
            if len(fresh) == len(keys):  # every image new: the processor's own output
                return out
        rows = [computed[k] if k in computed else self._store.pixels[k] for k in keys]
        names = list(rows[0])
        if any(list(r) != names or any(r[n].shape != rows[0][n].shape for n in names)
               for r in rows):
            return self._inner(images, *args, **kwargs)
        self._store.pixels_reused += len(keys) - len(fresh)
        return BatchFeature(data={n: torch.stack([r[n] for r in rows]) for n in names})


class FeatureStore:
    """Image features by pixel digest within ``max_bytes``, first come first kept (the clean
    images come first in a run and recur in every same-pixel condition; a pixel probe's
    images are seen once, so evicting by recency would let them flush the clean ones)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._features: dict[str, Any] = {}
        self._bytes = 0
        self.reused = 0  # images whose features came from here
        self.encoded = 0  # images run through the vision tower
        self.refused = 0  # features not kept because the store was full
        self._stacked = False  # the model's own form: one tensor of all images, or a list
        self.pixels: dict[tuple[str, str], dict[str, Any]] = {}  # (digest, settings) -> row
        self.pixels_reused = 0  # images whose pixel rows came from here

    def holds(self) -> bool:
        return bool(self._features) or bool(self.pixels)

    def clear(self) -> None:
        self._features.clear()
        self.pixels.clear()
        self._bytes = 0

    def keep_pixels(self, key: tuple[str, str], row: dict[str, Any]) -> None:
        """Keep a copy of ``row`` (views into a batch) if it fits."""
        size = sum(v.numel() * v.element_size() for v in row.values())
        if self._bytes + size > self.max_bytes:
            self.refused += 1
            return
        self.pixels[key] = {name: v.clone() for name, v in row.items()}
        self._bytes += size

    def processing(self, processor: Any, digests: Sequence[str]) -> "_Swap":
        """A context in which ``processor`` takes stored pixel rows for these images."""
        return _Swap(processor, _StoredPixels(processor.image_processor, self, digests))

    def keep(self, digest: str, features: Any) -> None:
        size = features.numel() * features.element_size()
        if digest in self._features:
            return
        if self._bytes + size > self.max_bytes:
            self.refused += 1
            return
        self._features[digest] = features.clone()
        self._bytes += size

    def stats(self) -> dict[str, Any]:
        return {"reused": self.reused, "encoded": self.encoded,
                "pixels_reused": self.pixels_reused, "refused": self.refused,
                "mib": round(self._bytes / 2 ** 20, 1)}

    def inject(self, model: Any, inputs: dict[str, Any], digests: Sequence[str]) -> dict[str, Any]:
        """``inputs`` with ``pixel_values`` (one row per image, in ``digests`` order) replaced by
        ``mm_encoder_outputs``: stored features where the digest is known, the vision tower's
        for the rest (each distinct image once)."""
        import inspect

        import torch
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        pixels = inputs["pixel_values"]
        if pixels.shape[0] != len(digests):  # tiles or patches, not one row per image
            return inputs
        fresh: dict[str, int] = {}
        for row, digest in enumerate(digests):
            if digest not in self._features and digest not in fresh:
                fresh[digest] = row
        computed: dict[str, Any] = {}
        if fresh:
            encoder = model.base_model.get_image_features  # as generate() calls it
            accepted = inspect.signature(encoder).parameters
            kwargs = {name: inputs[name] for name in PER_IMAGE_INPUTS
                      if name in inputs and name in accepted}
            if len(fresh) < len(digests):  # only the rows not seen yet (a copy)
                rows = torch.tensor(list(fresh.values()), device=pixels.device)
                kwargs = {name: value[rows] for name, value in kwargs.items()}
            out = encoder(**kwargs, return_dict=True).pooler_output
            self._stacked = isinstance(out, torch.Tensor)
            if len(out) != len(fresh):
                raise ValueError(f"{len(out)} feature tensors for {len(fresh)} images: "
                                 "this family does not give one per image")
            for digest, features in zip(fresh, out):
                computed[digest] = features
                self.keep(digest, features)
            self.encoded += len(fresh)
        self.reused += len(digests) - len(fresh)
        features = [computed[d] if d in computed else self._features[d] for d in digests]
        if self._stacked:  # the model returned one tensor for all images: hand it one back
            features = torch.stack(features)
        out_inputs = {k: v for k, v in inputs.items() if k not in PER_IMAGE_INPUTS}
        out_inputs["mm_encoder_outputs"] = {
            "image": BaseModelOutputWithPooling(pooler_output=features)}
        return out_inputs


class _Swap:
    """Puts a stand-in image processor on a processor for one ``with`` block."""

    def __init__(self, processor: Any, stand_in: _StoredPixels) -> None:
        self._processor, self._stand_in = processor, stand_in

    def __enter__(self) -> None:
        self._inner = self._processor.image_processor
        self._processor.image_processor = self._stand_in

    def __exit__(self, *exc: Any) -> None:
        self._processor.image_processor = self._inner
