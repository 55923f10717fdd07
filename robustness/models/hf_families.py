"""Per-family quirks of Hugging Face vision-language models, kept in one small table.

The Hugging Face adapter is generic: processor + image-text-to-text model + chat template. A
family gets an entry here only where it truly differs (no chat template, a processor that adds
text of its own, a cache that cannot be shared across options, ...). Adding a family = one
``FamilySpec`` entry (matched by ``config.model_type``) + one YAML under ``conf/model/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

# A hook computing explicit position ids for continuation tokens fed after a cached prefix:
# (model, prefix_attention_mask[rows], row_to_question index, continuation length) -> ids | None.
PositionHook = Callable[[Any, Any, Any, int], Any]
# Families whose processor is not called as processor(text=..., images=...):
# (processor, texts, per-text PIL image lists) -> model inputs with "input_ids", "attention_mask".
EncodeHook = Callable[[Any, list, list], dict]
# Families that do not generate with model.generate: (model, inputs, generation config,
# tokenizer) -> token ids, prompt included.
GenerateHook = Callable[[Any, dict, Any, Any], Any]


@dataclass(frozen=True)
class FamilySpec:
    """How one model family differs from the generic chat-template path."""

    name: str
    model_types: tuple[str, ...] = ()
    chat_template: bool = True  # False: the prompt is plain text (BLIP-2, InstructBLIP, PaliGemma)
    plain_prompts: bool = False  # True: modes render their plain_templates (the paper's BLIP-2 wording)
    plain_image_token: str = ""  # plain prompts: placeholder written once per image, in front
    answer_joiner: str = " "  # plain prompts: text between the prompt and a scored answer
    processor_text_suffix: str = ""  # text the processor itself appends after the prompt
    max_images: int | None = None  # images one prompt may carry (None: no limit)
    prefix_cache: bool = False  # PS: score options from the prompt's KV cache (verified families)
    prefix_cache_unsupported: str = ""  # why the KV-cache path cannot work here (refused if asked)
    image_prefix_reuse: bool = False  # the prompt's KV through its last image token is reused
    # across requests with the same tokens and pixels there (verified families; prefix_kv.py)
    image_features_reuse: bool = False  # vision features kept per pixel digest and passed as
    # mm_encoder_outputs (one pixel row and one feature tensor per image; image_features.py)
    continuation_positions: PositionHook | None = None  # explicit positions after a cached prefix
    continuation_token_type: int = 0  # token_type_ids value for appended answer tokens
    auto_model: str = "AutoModelForImageTextToText"  # transformers auto class that loads it
    encode: EncodeHook | None = None
    generate: GenerateHook | None = None
    max_batch_size: int | None = None  # cap on requests per forward pass (None: batch_size)
    extra_load_kwargs: Mapping[str, Any] = field(default_factory=dict)


def _mrope_continuation_positions(model: Any, prefix_mask: Any, rows: Any, length: int) -> Any:
    """Qwen2-VL / Qwen2.5-VL: text positions after a cached prefix are the prefix's real length
    plus the per-sequence M-RoPE offset (``rope_deltas``) recorded by the prefix pass."""
    import torch

    deltas = getattr(getattr(model, "model", model), "rope_deltas", None)
    start = prefix_mask.long().sum(-1, keepdim=True)  # real (unpadded) prefix length per row
    steps = torch.arange(length, device=prefix_mask.device).unsqueeze(0)
    positions = start + steps
    if deltas is not None:
        positions = positions + deltas.to(prefix_mask.device)[rows]
    return positions.unsqueeze(0).expand(3, -1, -1)


def _molmo_encode(processor: Any, texts: list, images: list) -> dict:
    """Molmo's remote processor prepares one example at a time (``processor.process``), writing
    its own "User: ... Assistant:" frame; the family runs one request per pass."""
    import torch

    if len(texts) != 1:
        raise ValueError("Molmo inputs are prepared one request at a time")
    inputs = processor.process(images=images[0] or None, text=texts[0])
    batch = {k: v.unsqueeze(0) for k, v in inputs.items() if isinstance(v, torch.Tensor)}
    batch["attention_mask"] = torch.ones_like(batch["input_ids"])
    return batch


def _molmo_generate(model: Any, inputs: dict, config: Any, tokenizer: Any) -> Any:
    batch = {k: v for k, v in inputs.items() if k != "attention_mask"}
    config.stop_strings = tokenizer.eos_token or "<|endoftext|>"
    return model.generate_from_batch(batch, config, tokenizer=tokenizer)


GENERIC = FamilySpec(name="generic")
_QFORMER = ("its forward pass takes no key/value cache for text after the Q-Former's image "
            "tokens; use model.score_with=sequences (or auto)")

FAMILIES: tuple[FamilySpec, ...] = (
    FamilySpec(name="llava", model_types=("llava",), prefix_cache=True,
               image_prefix_reuse=True, image_features_reuse=True),
    FamilySpec(name="llava_next", model_types=("llava_next",), prefix_cache=True,
               image_prefix_reuse=True, image_features_reuse=True),
    # Reuse across conditions is on only where tests/robustness/models/test_families.py shows
    # the same answers. No image prefixes: Qwen-VL's M-RoPE positions, PaliGemma's bidirectional
    # prefix, Q-Former families, Mllama's cross-attention. No stored features: pixels in
    # patches or tiles rather than one row per image (Qwen-VL, InternVL, Idefics3/SmolVLM),
    # Q-Former inputs, Mllama.
    FamilySpec(name="qwen2_vl", model_types=("qwen2_vl", "qwen2_5_vl"), prefix_cache=True,
               continuation_positions=_mrope_continuation_positions),
    FamilySpec(name="idefics3", model_types=("idefics3", "smolvlm"), prefix_cache=True,
               image_prefix_reuse=True),
    # PaliGemma: no chat template; the processor writes bos after the image tokens and "\n"
    # after the prefix; the prefix attends bidirectionally and answer tokens carry type 1.
    FamilySpec(name="paligemma", model_types=("paligemma",), chat_template=False, plain_prompts=True,
               plain_image_token="<image>", answer_joiner="", processor_text_suffix="\n",
               continuation_token_type=1, prefix_cache=True, image_features_reuse=True),
    # BLIP-2 / InstructBLIP: plain "Question: ... Answer:" prompts, one image, query tokens
    # inserted by the processor.
    FamilySpec(name="blip2", model_types=("blip-2",), chat_template=False, plain_prompts=True,
               max_images=1, prefix_cache_unsupported=_QFORMER),
    FamilySpec(name="instructblip", model_types=("instructblip",), chat_template=False,
               plain_prompts=True, max_images=1, prefix_cache_unsupported=_QFORMER),
    # Llama-3.2-Vision: cross-attention to the image; answers are scored as whole sequences
    # (continuations after a cached prefix lose the image: tests/robustness/models/
    # test_families.py found the scores differ).
    FamilySpec(name="mllama", model_types=("mllama",)),
    FamilySpec(name="gemma3", model_types=("gemma3",), prefix_cache=True,  # MedGemma
               image_prefix_reuse=True, image_features_reuse=True),
    FamilySpec(name="llava_onevision", model_types=("llava_onevision",), prefix_cache=True,
               image_prefix_reuse=True, image_features_reuse=True),
    FamilySpec(name="internvl", model_types=("internvl",), prefix_cache=True,
               image_prefix_reuse=True),
    FamilySpec(name="janus", model_types=("janus",), prefix_cache=True,  # Janus-Pro
               image_prefix_reuse=True, image_features_reuse=True),
    # Molmo (remote code, the paper's Molmo-7B-D): a causal LM with the repository's own
    # processor API; prompts are plain text (the processor adds "User: ... Assistant:").
    FamilySpec(name="molmo", model_types=("molmo",), auto_model="AutoModelForCausalLM",
               chat_template=False, processor_text_suffix=" Assistant:", encode=_molmo_encode,
               generate=_molmo_generate, max_batch_size=1),
)

_BY_NAME = {spec.name: spec for spec in FAMILIES}
_BY_MODEL_TYPE = {mt: spec for spec in FAMILIES for mt in spec.model_types}


def family_by_name(name: str) -> FamilySpec:
    """The spec called ``name`` (``generic`` for families without quirks)."""
    if name == GENERIC.name:
        return GENERIC
    try:
        return _BY_NAME[name]
    except KeyError:
        known = ", ".join(sorted([GENERIC.name, *_BY_NAME]))
        raise KeyError(f"unknown model family {name!r} (known: {known})") from None


def family_for_model_type(model_type: str) -> FamilySpec:
    """The spec for a checkpoint's ``config.model_type``; unknown types use the generic path."""
    return _BY_MODEL_TYPE.get(model_type, GENERIC)


def known_family_names() -> tuple[str, ...]:
    return (GENERIC.name, *_BY_NAME)
