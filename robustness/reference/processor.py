"""Image processor, chat template and ``LlavaProcessor`` of the reference model.

The chat template is LLaVA-1.5's plain role format (``USER: <image> question ASSISTANT: answer``)
with a system line and multi-turn support, so the modes' prompting strategies (persona system
prompts, few-shot turns with their own images) render without special cases. An assistant turn
ends with the end-of-sequence token, which is also what the model learns to emit after an answer.
"""

from __future__ import annotations

from robustness.reference.tokenizer import IMAGE

# One line per turn; images go where their slots are in the message, text as given.
CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{%- if message['content'] is string -%}"
    "{%- set parts = [{'type': 'text', 'text': message['content']}] -%}"
    "{%- else -%}{%- set parts = message['content'] -%}{%- endif -%}"
    "{{- message['role'] | upper + ':' -}}"
    "{%- for part in parts -%}"
    "{%- if part['type'] == 'image' -%}{{- ' " + IMAGE + "' -}}"
    "{%- elif part['type'] == 'text' -%}{{- ' ' + part['text'] -}}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if message['role'] == 'assistant' -%}{{- eos_token -}}{%- endif -%}"
    "{{- '\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- 'ASSISTANT:' -}}{%- endif -%}"
)

# Words the template itself adds (they must be in the vocabulary).
TEMPLATE_WORDS: tuple[str, ...] = ("SYSTEM:", "USER:", "ASSISTANT:")


def build_image_processor(image_size: int):
    """Resize to the vision tower's square input, grayscale becomes RGB, CLIP normalisation."""
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(
        do_resize=True,
        size={"height": image_size, "width": image_size},
        do_center_crop=False,
        crop_size={"height": image_size, "width": image_size},
        do_convert_rgb=True,
        do_rescale=True,
        do_normalize=True,
    )


def build_processor(tokenizer, *, image_size: int, patch_size: int,
                    feature_strategy: str = "full"):
    """A ``LlavaProcessor`` whose ``<image>`` expands to one token per patch (plus the CLS token
    with the ``full`` feature strategy)."""
    from transformers import LlavaProcessor

    tokenizer.chat_template = CHAT_TEMPLATE
    return LlavaProcessor(
        image_processor=build_image_processor(image_size),
        tokenizer=tokenizer,
        patch_size=patch_size,
        vision_feature_select_strategy=feature_strategy,
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
        image_token=IMAGE,
    )
