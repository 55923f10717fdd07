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

from robustness.models.base import ImageInput, Prompt
from robustness.reference.examples import Example

IGNORE_INDEX = -100


def chat_text(processor, prompt: Prompt) -> str:
    """The prompt as text, ending at the assistant turn start (image slots as ``<image>``)."""
    messages = [m.as_dict() for m in prompt.messages]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


@dataclass
class Encoded:
    """One example ready for the model."""

    input_ids: list[int]
    labels: list[int]
    images: tuple[ImageInput, ...]
    example: Example


class ImageCache:
    """Processed pixel tensors per image digest (float16 to halve memory), filled in batches."""

    def __init__(self, image_processor) -> None:
        self.image_processor = image_processor
        self._pixels: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self._pixels)

    def add(self, images: Sequence[ImageInput], batch_size: int = 64) -> None:
        todo = list({img.digest: img for img in images if img.digest not in self._pixels}.values())
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            out = self.image_processor(images=[img.pil("RGB") for img in chunk], return_tensors="pt")
            for img, pixels in zip(chunk, out["pixel_values"]):
                self._pixels[img.digest] = pixels.to(torch.float16)

    def stack(self, images: Sequence[ImageInput]) -> torch.Tensor:
        missing = [img for img in images if img.digest not in self._pixels]
        if missing:
            self.add(missing)
        return torch.stack([self._pixels[img.digest] for img in images]).float()


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

    def encode(self, example: Example) -> Encoded:
        prompt = example.request.prompt
        prompt_ids = self.prompt_ids(prompt)
        answer = self.answer_ids(example.target)
        return Encoded(input_ids=prompt_ids + answer,
                       labels=[IGNORE_INDEX] * len(prompt_ids) + answer,
                       images=tuple(prompt.images), example=example)


def collate(batch: Sequence[Encoded], images: ImageCache, pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ids, labels and attention mask, plus the pixels of every image in order."""
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
    if all_images:
        out["pixel_values"] = images.stack(all_images)
    return out
