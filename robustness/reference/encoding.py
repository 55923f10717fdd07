"""Turn training examples into token ids, loss labels and pixel tensors.

The prompt text comes from the processor's chat template exactly as the Hugging Face adapter
renders it at evaluation time; the answer follows the assistant turn start and ends with the
end-of-sequence token. Only the answer tokens carry loss. Image placeholders are expanded to one
token per patch, as ``LlavaProcessor`` does (a test checks the two agree).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from robustness.data.image import ImageInput
from robustness.models.base import Prompt
from robustness.reference.examples import Example

IGNORE_INDEX = -100


def chat_text(processor, prompt: Prompt) -> str:
    """The prompt as text, ending at the assistant turn start (image slots as ``<image>``)."""
    messages = [m.as_dict() for m in prompt.messages]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


@dataclass
class Encoded:
    """One example ready for the model.

    ``option_spans`` locate the displayed options' texts in a letter prompt (token positions
    ``[start, end)`` of A and B; empty for other modes): training supervises there, beside the
    answer, whether each option is the right one. ``decisive`` is the first answer token that
    differs from the rival answer (FF: the other finding's statement), the token that decides.
    """

    input_ids: list[int]
    labels: list[int]
    images: tuple[ImageInput, ...]
    example: Example
    option_spans: tuple[tuple[int, int], ...] = ()
    decisive: int = -1  # position of the answer token where the target leaves its rival (-1: none)


def find_last(haystack: Sequence[int], needle: Sequence[int]) -> int:
    """Start of the last occurrence of ``needle`` in ``haystack`` (-1 if absent)."""
    n = len(needle)
    for start in range(len(haystack) - n, -1, -1):
        if n and list(haystack[start:start + n]) == list(needle):
            return start
    return -1


class ImageCache:
    """Processed pixel tensors per image digest, computed once by the model's image processor.

    Kept as float16; a grayscale image (all channels equal before normalisation) keeps one
    channel and rebuilds the others from the processor's per-channel mean and std, which cuts
    memory threefold without changing a value beyond float16 rounding.
    """

    def __init__(self, image_processor) -> None:
        self.image_processor = image_processor
        mean = getattr(image_processor, "image_mean", None) or [0.0, 0.0, 0.0]
        std = getattr(image_processor, "image_std", None) or [1.0, 1.0, 1.0]
        self._mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self._pixels: dict[str, tuple[torch.Tensor, bool]] = {}

    def __len__(self) -> int:
        return len(self._pixels)

    def add(self, images: Sequence[ImageInput], batch_size: int = 64) -> None:
        todo = list({img.digest: img for img in images if img.digest not in self._pixels}.values())
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            out = self.image_processor(images=[img.pil("RGB") for img in chunk], return_tensors="pt")
            for img, pixels in zip(chunk, out["pixel_values"]):
                gray = img.pixels.ndim == 2
                kept = pixels[:1] if gray else pixels
                self._pixels[img.digest] = (kept.to(torch.float16), gray)

    def get(self, image: ImageInput) -> torch.Tensor:
        if image.digest not in self._pixels:
            self.add([image])
        kept, gray = self._pixels[image.digest]
        pixels = kept.float()
        if gray:  # rebuild every channel from the first: same grey level, own mean and std
            level = pixels * self._std[0] + self._mean[0]
            pixels = (level - self._mean) / self._std
        return pixels

    def stack(self, images: Sequence[ImageInput]) -> torch.Tensor:
        missing = [img for img in images if img.digest not in self._pixels]
        if missing:
            self.add(missing)
        return torch.stack([self.get(img) for img in images])


class ExampleEncoder:
    """Token ids and labels for examples, through the processor's own chat template."""

    def __init__(self, processor, image_tokens: int) -> None:
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.image_token = processor.image_token
        self.image_tokens = image_tokens

    def prompt_ids(self, prompt: Prompt) -> list[int]:
        text = chat_text(self.processor, prompt)
        text = text.replace(self.image_token, self.image_token * self.image_tokens)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def answer_ids(self, target: str) -> list[int]:
        ids = self.tokenizer(target, add_special_tokens=False)["input_ids"]
        return ids + [self.tokenizer.eos_token_id]

    def text_ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def option_spans(self, example: Example, prompt_ids: Sequence[int]) -> tuple[tuple[int, int], ...]:
        """Where the asked options' texts sit in a letter prompt (the last occurrence of each, so
        few-shot examples before the question are skipped); empty if either is not found."""
        if example.mode not in ("mc", "gd") or not all(example.options):
            return ()
        spans = []
        for text in example.options:
            ids = self.text_ids(text)
            start = find_last(prompt_ids, ids)
            if start < 0:
                return ()
            spans.append((start, start + len(ids)))
        return tuple(spans)

    def encode(self, example: Example) -> Encoded:
        prompt = example.request.prompt
        prompt_ids = self.prompt_ids(prompt)
        answer = self.answer_ids(example.target)
        decisive = -1
        if example.rival and example.rival != example.target:
            rival = self.answer_ids(example.rival)
            split = next((k for k, (a, b) in enumerate(zip(answer, rival)) if a != b),
                         min(len(answer), len(rival)))
            decisive = len(prompt_ids) + min(split, len(answer) - 1)
        return Encoded(input_ids=prompt_ids + answer,
                       labels=[IGNORE_INDEX] * len(prompt_ids) + answer,
                       images=tuple(prompt.images), example=example,
                       option_spans=self.option_spans(example, prompt_ids), decisive=decisive)


def collate(batch: Sequence[Encoded], images: ImageCache, pad_id: int,
            pixels: bool = True) -> dict[str, torch.Tensor]:
    """Right-padded ids, labels and attention mask, plus (with ``pixels``) the pixels of every
    image in order."""
    length = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), length), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), length), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), length), dtype=torch.long)
    for row, enc in enumerate(batch):
        n = len(enc.input_ids)
        ids[row, :n] = torch.tensor(enc.input_ids)
        labels[row, :n] = torch.tensor(enc.labels)
        mask[row, :n] = 1
    all_images = [img for enc in batch for img in enc.images]
    out = {"input_ids": ids, "labels": labels, "attention_mask": mask}
    if all_images and pixels:
        out["pixel_values"] = images.stack(all_images)
    return out
