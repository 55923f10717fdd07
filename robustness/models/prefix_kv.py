"""Prompts over the same pixels share their opening: its key/value cache is computed once.

Text-only probes (option swap, paraphrases, chain of thought) show the clean pixels under the
same opening text. The adapter keeps each prompt's KV cache the first time it is computed,
filed under its image prefix (the tokens through the prompt's last image token plus the pixel
digests), and when every request of a later batch finds a stored prompt with its image prefix,
it continues from the longest run of tokens the two prompts share (at least the image, often
the question too) and prefills only the rest. Memory is bounded (first come, first kept).
Positions: prompts are recorded with their first token at position 0 (positions counted over
attended tokens), so the text after the shared part continues at the shared length (left
padding shifts positions uniformly per row, which rotary attention does not see).
Measurements: ``docs/running.md``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Sequence


@dataclass(frozen=True)
class PrefixSlot:
    """One batch row: the key of its image prefix, the row's first attended column and the
    image prefix's token count (through the last image token, what the key covers)."""

    key: str
    start: int
    length: int


@dataclass
class PrefixEntry:
    """One stored prompt: its token ids and per-layer keys and values ``[heads, tokens, dim]``,
    computed with its first token at position 0."""

    ids: Any
    layers: list[tuple[Any, Any]]

    def shared_with(self, row: Any) -> int:
        """How many leading tokens ``row`` (unpadded ids) has in common with this prompt, less
        one if that is all of ``row`` (its last token must run to give the next one)."""
        n = min(int(row.shape[0]), int(self.ids.shape[0]))
        same = (row[:n] == self.ids[:n]).long()
        common = int(same.cumprod(0).sum())
        return min(common, int(row.shape[0]) - 1)


def prefix_slots(input_ids: Any, attention_mask: Any, image_token_id: int,
                 digests: Sequence[Sequence[str]]) -> list[PrefixSlot] | None:
    """Each row's image prefix, keyed by its token ids and the row's pixel digests; ``None``
    when some row has no image token, nothing after it, or padding inside."""
    slots: list[PrefixSlot] = []
    for row, mask, row_digests in zip(input_ids, attention_mask, digests):
        start = int(mask.shape[0] - mask.sum())
        hits = (row == image_token_id).nonzero()
        if hits.numel() == 0 or int(mask[start:].sum()) != mask.shape[0] - start:
            return None
        end = int(hits[-1]) + 1
        if end >= row.shape[0]:
            return None
        h = hashlib.sha256(row[start:end].cpu().numpy().tobytes())
        for digest in row_digests:
            h.update(digest.encode())
        slots.append(PrefixSlot(key=h.hexdigest(), start=start, length=end - start))
    return slots


class PrefixStore:
    """Stored prompts within ``max_bytes`` on the model's device, one per image prefix, first
    come first kept: a run answers the clean condition first, and its prompts are the ones every
    text-only probe shows again, while a pixel probe's are never seen twice; evicting by recency
    would let pixel probes flush them."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: dict[str, PrefixEntry] = {}
        self._bytes = 0
        self.reused = 0  # rows answered from a stored prompt
        self.reused_tokens = 0  # prompt tokens those rows did not prefill
        self.recorded = 0  # prompts stored
        self.refused = 0  # prompts not kept because the store was full

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def covers(self, slots: Sequence[PrefixSlot]) -> bool:
        return all(s.key in self._entries for s in slots)

    def get(self, key: str) -> PrefixEntry:
        return self._entries[key]

    def holds(self) -> bool:
        return bool(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def record(self, cache: Any, slots: Sequence[PrefixSlot], input_ids: Any) -> None:
        """Keep each row's prompt (``input_ids``, left-padded) from a batch ``cache``
        (``[batch, heads, positions, dim]`` per layer, prompt first) computed with each row's
        first attended token at position 0."""
        layers = [(layer.keys, layer.values) for layer in cache.layers]
        width = int(input_ids.shape[1])
        if any(k.dim() != 4 or k.shape[2] < width for k, _ in layers):
            self.refused += len(slots)  # a layer kept a window, not every position
            return
        per_token = sum(k[0, :, 0].numel() * k.element_size() + v[0, :, 0].numel()
                        * v.element_size() for k, v in layers)
        for r, slot in enumerate(slots):
            if slot.key in self._entries:
                continue
            size = per_token * (width - slot.start)
            if self._bytes + size > self.max_bytes:
                self.refused += 1
                continue
            cut = slice(slot.start, width)
            entry = PrefixEntry(ids=input_ids[r, cut].clone(),
                                layers=[(k[r, :, cut].clone(), v[r, :, cut].clone())
                                        for k, v in layers])
            self._entries[slot.key] = entry
            self._bytes += size
            self.recorded += 1

    def stats(self) -> dict[str, Any]:
        return {"reused": self.reused, "reused_tokens": self.reused_tokens,
                "recorded": self.recorded, "refused": self.refused,
                "mib": round(self._bytes / 2 ** 20, 1)}


@dataclass
class Continuation:
    """A batch rebuilt on stored prompts: the cache (shared parts right-aligned to one width),
    the whole rows' ids, mask and explicit positions, and how many columns the cache covers."""

    cache: Any
    input_ids: Any
    attention_mask: Any
    position_ids: Any
    width: int
    extra: dict[str, Any]


def continue_after(store: PrefixStore, slots: Sequence[PrefixSlot],
                   inputs: dict[str, Any], pad_id: int) -> Continuation:
    """The batch ``inputs`` with each row's shared opening taken from ``store``: those parts
    right-aligned in a cache of the longest one's width, the rest of each row left-padded behind
    them, positions counted from each row's first token."""
    import torch
    from transformers import DynamicCache

    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    entries = [store.get(s.key) for s in slots]
    shared = [entry.shared_with(ids[r, s.start:]) for r, (s, entry)
              in enumerate(zip(slots, entries))]
    store.reused += len(slots)
    store.reused_tokens += sum(shared)
    width = max(shared)
    tails = [ids[r, s.start + n:] for r, (s, n) in enumerate(zip(slots, shared))]
    tail_width = max(int(t.shape[0]) for t in tails)
    device = ids.device
    rows, total = len(slots), width + tail_width
    new_ids = torch.full((rows, total), pad_id, dtype=ids.dtype, device=device)
    new_mask = torch.zeros((rows, total), dtype=mask.dtype, device=device)
    positions = torch.zeros((rows, total), dtype=torch.long, device=device)
    extra = {name: torch.zeros((rows, total, *t.shape[2:]), dtype=t.dtype, device=device)
             for name, t in inputs.items()
             if name not in ("input_ids", "attention_mask") and t.dim() >= 2
             and t.shape[:2] == ids.shape}
    keys: list[list[Any]] = [[] for _ in entries[0].layers]
    values: list[list[Any]] = [[] for _ in entries[0].layers]
    for r, (slot, entry, n, tail) in enumerate(zip(slots, entries, shared, tails)):
        p0, t0 = width - n, total - tail.shape[0]
        new_ids[r, p0:width] = ids[r, slot.start:slot.start + n]
        new_ids[r, t0:] = tail
        new_mask[r, p0:width] = 1
        new_mask[r, t0:] = 1
        positions[r, p0:width] = torch.arange(n, device=device)
        positions[r, t0:] = torch.arange(n, n + tail.shape[0], device=device)
        for name, tensor in extra.items():
            row = inputs[name][r, slot.start:]
            tensor[r, p0:width] = row[:n]
            tensor[r, t0:] = row[n:]
        for layer, (k, v) in enumerate(entry.layers):
            keys[layer].append(torch.nn.functional.pad(k[:, :n], (0, 0, width - n, 0)))
            values[layer].append(torch.nn.functional.pad(v[:, :n], (0, 0, width - n, 0)))
    cache = DynamicCache(ddp_cache_data=[(torch.stack(k), torch.stack(v))
                                         for k, v in zip(keys, values)])
    return Continuation(cache=cache, input_ids=new_ids, attention_mask=new_mask,
                        position_ids=positions, width=width, extra=extra)
