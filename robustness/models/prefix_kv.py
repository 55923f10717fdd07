"""Image-bearing prompt prefixes kept with their key/value cache, reused across conditions.

Text-only probes (option swap, paraphrases, chain of thought) show the clean pixels under the
same opening text: everything up to the prompt's last image token is the same tokens over the
same pixels, so its KV cache is the same. The adapter records each prefix's KV the first time a
request computes it and, when every request of a later batch finds its prefix here, prefills
only what follows the image. Memory is bounded (first come, first kept). Positions:
each entry remembers the rotary position of its first token, so the text after it continues
exactly where the original pass left off (left padding shifts positions uniformly per row, which
rotary attention does not see). ``docs/running.md`` (Performance) has the measurements.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Sequence


@dataclass(frozen=True)
class PrefixSlot:
    """Where one batch row's image prefix sits: its store key, the first attended column of the
    row, and the prefix's token count (through the last image token)."""

    key: str
    start: int
    length: int


@dataclass
class PrefixEntry:
    """One prefix's per-layer keys and values ``[heads, length, head_dim]``, and the position id
    its first token had when they were computed."""

    layers: list[tuple[Any, Any]]
    first_position: int

    @property
    def nbytes(self) -> int:
        return sum(k.numel() * k.element_size() + v.numel() * v.element_size()
                   for k, v in self.layers)


def prefix_slots(input_ids: Any, attention_mask: Any, image_token_id: int,
                 digests: Sequence[Sequence[str]]) -> list[PrefixSlot] | None:
    """Each row's prefix through its last image token, keyed by those token ids and the row's
    pixel digests; ``None`` when some row has no image token or nothing after it."""
    slots: list[PrefixSlot] = []
    for row, mask, row_digests in zip(input_ids, attention_mask, digests):
        start = int(mask.shape[0] - mask.sum())
        hits = (row == image_token_id).nonzero()
        if hits.numel() == 0 or int(mask[start:].sum()) != mask.shape[0] - start:
            return None  # no image, or padding inside the row: nothing to share
        end = int(hits[-1]) + 1
        if end >= row.shape[0]:
            return None
        h = hashlib.sha256(row[start:end].cpu().numpy().tobytes())
        for digest in row_digests:
            h.update(digest.encode())
        slots.append(PrefixSlot(key=h.hexdigest(), start=start, length=end - start))
    return slots


class PrefixStore:
    """Prefixes within ``max_bytes`` on the model's device, first come first kept: a run
    answers the clean condition first, and its prefixes are the ones every text-only probe
    shows again, while a pixel probe's are never seen twice; evicting by recency would let
    pixel probes flush them."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: dict[str, PrefixEntry] = {}
        self._bytes = 0
        self.reused = 0  # rows answered from a stored prefix
        self.recorded = 0  # prefixes stored
        self.refused = 0  # prefixes not kept because the store was full

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def covers(self, slots: Sequence[PrefixSlot]) -> bool:
        return all(s.key in self._entries for s in slots)

    def get(self, key: str) -> PrefixEntry:
        return self._entries[key]

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def record(self, cache: Any, slots: Sequence[PrefixSlot], first_positions: Sequence[int]) -> None:
        """Keep each row's prefix from a batch ``cache`` (``[batch, heads, length, dim]`` per
        layer) computed with the rows' first tokens at ``first_positions``."""
        layers = [(layer.keys, layer.values) for layer in cache.layers]
        end = max(s.start + s.length for s in slots)
        if any(k.dim() != 4 or k.shape[2] < end for k, _ in layers):
            self.refused += len(slots)  # a layer kept a window, not every position
            return
        for r, (slot, first) in enumerate(zip(slots, first_positions)):
            if slot.key in self._entries:
                continue
            cut = slice(slot.start, slot.start + slot.length)
            entry = PrefixEntry(layers=[(k[r, :, cut].clone(), v[r, :, cut].clone())
                                        for k, v in layers], first_position=first)
            size = entry.nbytes
            if self._bytes + size > self.max_bytes:
                self.refused += 1
                continue
            self._entries[slot.key] = entry
            self._bytes += size
            self.recorded += 1

    def stats(self) -> dict[str, int]:
        return {"reused": self.reused, "recorded": self.recorded, "refused": self.refused,
                "mib": round(self._bytes / 2 ** 20, 1)}


@dataclass
class Continuation:
    """A batch rebuilt on stored prefixes: the cache (prefixes left-padded to one width), the
    whole rows' ids, mask and explicit positions, and how many columns the cache covers."""

    cache: Any
    input_ids: Any
    attention_mask: Any
    position_ids: Any
    width: int
    extra: dict[str, Any]


def continue_after(store: PrefixStore, slots: Sequence[PrefixSlot],
                   inputs: dict[str, Any], pad_id: int) -> Continuation:
    """The batch ``inputs`` with every row's prefix taken from ``store``: prefixes right-aligned
    in a cache of the longest prefix's width, the text after each image left-padded behind them,
    positions continuing each prefix's own."""
    import torch
    from transformers import DynamicCache

    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    entries = [store.get(s.key) for s in slots]
    store.reused += len(slots)
    width = max(s.length for s in slots)
    tails = [ids[r, s.start + s.length:] for r, s in enumerate(slots)]
    tail_width = max(int(t.shape[0]) for t in tails)
    device = ids.device
    rows = len(slots)
    new_ids = torch.full((rows, width + tail_width), pad_id, dtype=ids.dtype, device=device)
    new_mask = torch.zeros((rows, width + tail_width), dtype=mask.dtype, device=device)
    positions = torch.zeros((rows, width + tail_width), dtype=torch.long, device=device)
    extra = {name: torch.zeros((rows, width + tail_width, *t.shape[2:]), dtype=t.dtype,
                               device=device)
             for name, t in inputs.items()
             if name not in ("input_ids", "attention_mask") and t.dim() >= 2
             and t.shape[:2] == ids.shape}
    n_layers = len(entries[0].layers)
    keys: list[list[Any]] = [[] for _ in range(n_layers)]
    values: list[list[Any]] = [[] for _ in range(n_layers)]
    for r, (slot, entry, tail) in enumerate(zip(slots, entries, tails)):
        p0, t0 = width - slot.length, width + tail_width - tail.shape[0]
        source = slice(slot.start, ids.shape[1])
        new_ids[r, p0:width] = ids[r, slot.start:slot.start + slot.length]
        new_ids[r, t0:] = tail
        new_mask[r, p0:width] = 1
        new_mask[r, t0:] = 1
        first = entry.first_position
        positions[r, p0:width] = torch.arange(first, first + slot.length, device=device)
        positions[r, t0:] = torch.arange(first + slot.length,
                                         first + slot.length + tail.shape[0], device=device)
        for name, tensor in extra.items():
            row = inputs[name][r, source]
            tensor[r, p0:width] = row[:slot.length]
            tensor[r, t0:] = row[slot.length:]
        for layer, (k, v) in enumerate(entry.layers):
            pad = width - slot.length
            keys[layer].append(torch.nn.functional.pad(k, (0, 0, pad, 0)))
            values[layer].append(torch.nn.functional.pad(v, (0, 0, pad, 0)))
    cache = DynamicCache(ddp_cache_data=[(torch.stack(k), torch.stack(v))
                                         for k, v in zip(keys, values)])
    return Continuation(cache=cache, input_ids=new_ids, attention_mask=new_mask,
                        position_ids=positions, width=width, extra=extra)
