"""The reference model's architecture: a small LLaVA (CLIP-style ViT, projector, Llama decoder).

A standard transformers class (``LlavaForConditionalGeneration``) so the saved checkpoint loads
through the same Hugging Face adapter as any hub model; only the sizes are small.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Architecture:
    """Sizes of the vision tower and the text decoder (defaults: the shipped checkpoints)."""

    image_size: int = 224  # the phantom's default size: no detail is lost to resizing
    patch_size: int = 28  # 8 x 8 = 64 image tokens
    vision_hidden: int = 128
    vision_layers: int = 3
    vision_heads: int = 4
    vision_intermediate: int = 256
    text_hidden: int = 160
    text_layers: int = 3
    text_heads: int = 4
    text_intermediate: int = 416
    max_positions: int = 1024
    # "full": the decoder also sees the vision tower's CLS token, a whole-image summary that stage
    # 1 aligns with the option texts' word embeddings; "default": patch tokens only (LLaVA-1.5).
    feature_strategy: str = "full"

    def __post_init__(self) -> None:
        if self.feature_strategy not in ("full", "default"):
            raise ValueError(f"feature_strategy must be 'full' or 'default', got "
                             f"{self.feature_strategy!r}")
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of "
                             f"patch_size {self.patch_size}")
        for hidden, heads, name in ((self.vision_hidden, self.vision_heads, "vision"),
                                    (self.text_hidden, self.text_heads, "text")):
            if hidden % heads:
                raise ValueError(f"{name}_hidden {hidden} is not a multiple of {name}_heads {heads}")

    @property
    def patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def image_tokens(self) -> int:
        """Tokens one image occupies in the decoder's sequence (one per patch, plus CLS)."""
        return self.patches + (1 if self.feature_strategy == "full" else 0)

    def as_dict(self) -> dict[str, int | str]:
        return asdict(self)


def build_config(arch: Architecture, tokenizer):
    """The ``LlavaConfig`` for ``arch`` with the special-token ids of ``tokenizer``."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    vision = CLIPVisionConfig(
        hidden_size=arch.vision_hidden,
        intermediate_size=arch.vision_intermediate,
        num_hidden_layers=arch.vision_layers,
        num_attention_heads=arch.vision_heads,
        image_size=arch.image_size,
        patch_size=arch.patch_size,
        num_channels=3,
        projection_dim=arch.vision_hidden,
        hidden_act="gelu",
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=arch.text_hidden,
        intermediate_size=arch.text_intermediate,
        num_hidden_layers=arch.text_layers,
        num_attention_heads=arch.text_heads,
        num_key_value_heads=arch.text_heads,
        max_position_embeddings=arch.max_positions,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    return LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.image_token_id,
        image_seq_length=arch.image_tokens,
        vision_feature_select_strategy=arch.feature_strategy,
        vision_feature_layer=-1,
        projector_hidden_act="gelu",
        tie_word_embeddings=True,
    )


def build_model(arch: Architecture, tokenizer, *, seed: int = 0):
    """A freshly initialised reference model (deterministic for a given ``seed``)."""
    import torch
    from transformers import GenerationConfig, LlavaForConditionalGeneration

    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(build_config(arch, tokenizer))
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
        max_new_tokens=32,
    )
    return model


def count_parameters(model) -> int:
    """Distinct trainable parameters (tied embeddings counted once)."""
    seen: set[int] = set()
    total = 0
    for param in model.parameters():
        if id(param) not in seen:
            seen.add(id(param))
            total += param.numel()
    return total
