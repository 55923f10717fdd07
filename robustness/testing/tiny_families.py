"""Tiny random checkpoints of the remaining vision-language families transformers ships.

Same recipe as :mod:`robustness.testing.tiny_models`: a config in code, the word-level
tokenizer, the family's own image processor and processor (with a chat template where the
family has one), ``save_pretrained``; nothing is downloaded and weights are seeded.
"""

from __future__ import annotations

from pathlib import Path

import torch

from robustness.testing.tiny_models import (IDEFICS3_TEMPLATE, LLAVA_TEMPLATE, QWEN2_VL_TEMPLATE,
                                            SPACED_LETTERS, idefics3_tokenizer, qwen_vl_tokenizer,
                                            word_level_tokenizer)

LLAMA = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "max_position_embeddings": 2048, "initializer_range": 0.2}
CLIP = {"model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 32, "patch_size": 8}
SIGLIP = {"model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64,
          "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 32, "patch_size": 8}


# the one-layer 32-pixel vision tower the SmolVLM, BLIP-2 and InstructBLIP builders share
TINY_VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
               "num_attention_heads": 2, "image_size": 32, "patch_size": 8}


def _save(model, processor, out: Path, pad_id: int, eos_id: int) -> Path:
    model.eval()
    model.generation_config.pad_token_id = pad_id
    model.generation_config.eos_token_id = eos_id
    out = Path(out)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def _wake(model, **values: float) -> None:
    """Set parameters that initialise to zero (and so cut the image off a fresh model) to
    ``value``-scaled noise: ``name_part=scale``. A trained checkpoint has them non-zero."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            for part, scale in values.items():
                if part in name:
                    param.copy_(torch.randn_like(param) * scale + (scale if param.dim() == 1
                                                                    and param.numel() == 1
                                                                    else 0.0))


def _text(tok, **extra) -> dict:
    return {**LLAMA, "vocab_size": len(tok), "pad_token_id": tok.pad_token_id,
            "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id, **extra}


def _llava_tokenizer(*extra_special: str):
    return word_level_tokenizer(["<pad>", "<s>", "</s>", "<image>", "USER", "ASSISTANT", "SYSTEM",
                                 *extra_special], bos="<s>", eos="</s>", pad="<pad>",
                                extra_special={"image_token": "<image>"},
                                extra_words=SPACED_LETTERS)


def build_tiny_llava_next(out: Path, *, seed: int = 0) -> Path:
    """LLaVA-NeXT: CLIP tower on any-resolution tiles (a base view plus grid crops) + Llama."""
    from transformers import (LlavaNextConfig, LlavaNextForConditionalGeneration,
                              LlavaNextImageProcessor, LlavaNextProcessor)

    tok = _llava_tokenizer()
    grid = [[32, 64], [64, 32], [64, 64]]
    image_processor = LlavaNextImageProcessor(size={"shortest_edge": 32},
                                              crop_size={"height": 32, "width": 32},
                                              image_grid_pinpoints=grid)
    processor = LlavaNextProcessor(image_processor=image_processor, tokenizer=tok, patch_size=8,
                                   vision_feature_select_strategy="default",
                                   num_additional_image_tokens=1, chat_template=LLAVA_TEMPLATE)
    config = LlavaNextConfig(vision_config=CLIP, text_config=_text(tok),
                             image_token_id=tok.convert_tokens_to_ids("<image>"),
                             image_grid_pinpoints=grid, vision_feature_select_strategy="default",
                             vision_feature_layer=-1)
    torch.manual_seed(seed)
    return _save(LlavaNextForConditionalGeneration(config), processor, out, tok.pad_token_id,
                 tok.eos_token_id)


def build_tiny_llava_onevision(out: Path, *, seed: int = 0) -> Path:
    """LLaVA-OneVision: SigLIP tower on any-resolution tiles + Qwen2 decoder."""
    from transformers import (LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration,
                              LlavaOnevisionImageProcessor, LlavaOnevisionProcessor)

    tok = word_level_tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>",
                                "<video>"], bos=None, eos="<|im_end|>", pad="<|endoftext|>",
                               extra_special={"image_token": "<image>", "video_token": "<video>"})
    grid = [[32, 32], [32, 64], [64, 32], [64, 64]]
    image_processor = LlavaOnevisionImageProcessor(size={"height": 32, "width": 32},
                                                   image_grid_pinpoints=grid)
    from transformers import LlavaOnevisionVideoProcessor

    processor = LlavaOnevisionProcessor(image_processor=image_processor, tokenizer=tok,
                                        video_processor=LlavaOnevisionVideoProcessor(),
                                        num_image_tokens=16, vision_feature_select_strategy="full",
                                        vision_aspect_ratio="anyres_max_9",
                                        chat_template=QWEN2_VL_TEMPLATE.replace(
                                            "<|vision_start|><|image_pad|><|vision_end|>",
                                            "<image>"))
    text = {**_text(tok), "model_type": "qwen2", "bos_token_id": None}
    config = LlavaOnevisionConfig(vision_config=SIGLIP, text_config=text,
                                  image_token_id=tok.convert_tokens_to_ids("<image>"),
                                  video_token_id=tok.convert_tokens_to_ids("<video>"),
                                  image_grid_pinpoints=grid, vision_feature_select_strategy="full",
                                  vision_feature_layer=-1, vision_aspect_ratio="anyres_max_9")
    torch.manual_seed(seed)
    return _save(LlavaOnevisionForConditionalGeneration(config), processor, out,
                 tok.pad_token_id, tok.eos_token_id)


def build_tiny_qwen2_5_vl(out: Path, *, seed: int = 0) -> Path:
    """Qwen2.5-VL: windowed-attention ViT with patch merger + Qwen2 decoder with M-RoPE."""
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration,
                              Qwen2_5_VLProcessor, Qwen2VLImageProcessor)

    tok, ids = qwen_vl_tokenizer()
    try:
        from transformers import Qwen2VLVideoProcessor
        video_processor = Qwen2VLVideoProcessor()
    except ImportError:  # pragma: no cover
        video_processor = None
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=56 * 56),
        tokenizer=tok, video_processor=video_processor, chat_template=QWEN2_VL_TEMPLATE)
    config = Qwen2_5_VLConfig(
        vision_config={"depth": 2, "hidden_size": 32, "out_hidden_size": 64,
                       "intermediate_size": 64, "num_heads": 2, "patch_size": 14,
                       "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56,
                       "fullatt_block_indexes": [1]},
        text_config={**_text(tok), "model_type": "qwen2_5_vl_text", "bos_token_id": None,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                         "mrope_section": [2, 3, 3]}},
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    torch.manual_seed(seed)
    return _save(Qwen2_5_VLForConditionalGeneration(config), processor, out, tok.pad_token_id,
                 tok.eos_token_id)


def build_tiny_smolvlm(out: Path, *, seed: int = 0) -> Path:
    """SmolVLM: the Idefics3 design with its own classes (SigLIP + pixel shuffle + Llama)."""
    from transformers import (SmolVLMConfig, SmolVLMForConditionalGeneration,
                              SmolVLMImageProcessor, SmolVLMProcessor)

    tok, ids = idefics3_tokenizer()
    # image splitting on: an image larger than 32 px is cut into 32 px tiles plus a global view
    image_processor = SmolVLMImageProcessor(do_image_splitting=True, size={"longest_edge": 64},
                                            max_image_size={"longest_edge": 32})
    try:
        from transformers import SmolVLMVideoProcessor
        video_processor = SmolVLMVideoProcessor()
    except ImportError:  # pragma: no cover
        video_processor = None
    processor = SmolVLMProcessor(image_processor=image_processor, tokenizer=tok,
                                 video_processor=video_processor, image_seq_len=4,
                                 chat_template=IDEFICS3_TEMPLATE)
    config = SmolVLMConfig(
        vision_config=dict(TINY_VISION),
        text_config=_text(tok), scale_factor=2, image_token_id=ids["<image>"],
        pad_token_id=ids["<|endoftext|>"])
    torch.manual_seed(seed)
    return _save(SmolVLMForConditionalGeneration(config), processor, out, tok.pad_token_id,
                 tok.eos_token_id)


GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ '<start_of_turn>' + ('model' if m['role'] == "
    "'assistant' else 'user') + '\n' }}{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for p in m['content'] %}{% if p['type'] == 'image' %}"
    "{{ '<start_of_image>' }}{% else %}{{ p['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)


def build_tiny_gemma3(out: Path, *, seed: int = 0) -> Path:
    """Gemma 3 (MedGemma's architecture): SigLIP tower, pooled to a fixed number of soft tokens
    between begin/end-of-image markers, + Gemma 3 decoder."""
    from transformers import (Gemma3Config, Gemma3ForConditionalGeneration,
                              Gemma3ImageProcessor, Gemma3Processor)

    tok = word_level_tokenizer(["<pad>", "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>",
                                "<start_of_image>", "<end_of_image>", "<image_soft_token>",
                                "user", "model"], bos="<bos>", eos="<end_of_turn>", pad="<pad>",
                               extra_special={"image_token": "<image_soft_token>",
                                              "boi_token": "<start_of_image>",
                                              "eoi_token": "<end_of_image>"},
                               extra_words=SPACED_LETTERS)
    processor = Gemma3Processor(image_processor=Gemma3ImageProcessor(
        size={"height": 32, "width": 32}), tokenizer=tok, image_seq_length=4,
        chat_template=GEMMA_TEMPLATE)
    text = {**_text(tok), "model_type": "gemma3_text", "head_dim": 16, "sliding_window": 64,
            "query_pre_attn_scalar": 16}
    config = Gemma3Config(vision_config={**SIGLIP, "vision_use_head": False}, text_config=text,
                          mm_tokens_per_image=4,
                          image_token_id=tok.convert_tokens_to_ids("<image_soft_token>"),
                          boi_token_id=tok.convert_tokens_to_ids("<start_of_image>"),
                          eoi_token_id=tok.convert_tokens_to_ids("<end_of_image>"))
    torch.manual_seed(seed)
    model = Gemma3ForConditionalGeneration(config)
    _wake(model, mm_input_projection_weight=0.2)  # zero at init: no image would reach the decoder
    return _save(model, processor, out, tok.pad_token_id, tok.eos_token_id)


def build_tiny_paligemma(out: Path, *, seed: int = 0) -> Path:
    """PaliGemma: SigLIP tower + Gemma decoder; plain prompts, the prefix attends both ways."""
    from transformers import (PaliGemmaConfig, PaliGemmaForConditionalGeneration,
                              PaliGemmaProcessor, SiglipImageProcessor)

    tok = word_level_tokenizer(["<pad>", "<bos>", "<eos>", "<image>"], bos="<bos>", eos="<eos>",
                               pad="<pad>", extra_special={"image_token": "<image>"},
                               extra_words=("\n", *SPACED_LETTERS))
    image_processor = SiglipImageProcessor(size={"height": 32, "width": 32})
    image_processor.image_seq_length = 16
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tok)
    text = {**_text(tok), "model_type": "gemma", "head_dim": 16}
    config = PaliGemmaConfig(vision_config={**SIGLIP, "projection_dim": 64}, text_config=text,
                             projection_dim=64, image_token_id=tok.convert_tokens_to_ids("<image>"))
    torch.manual_seed(seed)
    return _save(PaliGemmaForConditionalGeneration(config), processor, out, tok.pad_token_id,
                 tok.eos_token_id)


def build_tiny_internvl(out: Path, *, seed: int = 0) -> Path:
    """InternVL 3: InternViT with pixel-shuffle downsampling + Qwen2 decoder; images as
    ``<img><IMG_CONTEXT>…</img>``."""
    from transformers import (GotOcr2ImageProcessor, InternVLConfig,
                              InternVLForConditionalGeneration, InternVLProcessor,
                              InternVLVideoProcessor)

    tok = word_level_tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>",
                                "<IMG_CONTEXT>", "<video>"], bos=None, eos="<|im_end|>",
                               pad="<|endoftext|>",
                               extra_special={"start_image_token": "<img>",
                                              "end_image_token": "</img>",
                                              "context_image_token": "<IMG_CONTEXT>",
                                              "video_token": "<video>"})
    image_processor = GotOcr2ImageProcessor(size={"height": 32, "width": 32},
                                            crop_to_patches=False)
    processor = InternVLProcessor(image_processor=image_processor, tokenizer=tok,
                                  video_processor=InternVLVideoProcessor(), image_seq_length=4,
                                  chat_template=QWEN2_VL_TEMPLATE.replace(
                                      "<|vision_start|><|image_pad|><|vision_end|>", "<IMG_CONTEXT>"))
    text = {**_text(tok), "model_type": "qwen2", "bos_token_id": None}
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 2, "image_size": [32, 32], "patch_size": [8, 8]}
    config = InternVLConfig(vision_config=vision, text_config=text, downsample_ratio=0.5,
                            image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"),
                            image_seq_length=4)
    torch.manual_seed(seed)
    return _save(InternVLForConditionalGeneration(config), processor, out, tok.pad_token_id,
                 tok.eos_token_id)


def build_tiny_blip2(out: Path, *, seed: int = 0) -> Path:
    """BLIP-2: ViT + Q-Former (query tokens) + OPT decoder; plain "Question: … Answer:" prompts."""
    from transformers import (BlipImageProcessor, Blip2Config, Blip2ForConditionalGeneration,
                              Blip2Processor)

    tok = word_level_tokenizer(["<pad>", "</s>"], bos="</s>", eos="</s>", pad="<pad>",
                               extra_words=("Question", "Answer", *SPACED_LETTERS))
    # the processor adds its own "<image>" token, as it does for the hub checkpoints
    processor = Blip2Processor(image_processor=BlipImageProcessor(
        size={"height": 32, "width": 32}), tokenizer=tok, num_query_tokens=4)
    text = {"model_type": "opt", "vocab_size": len(tok), "hidden_size": 64, "ffn_dim": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "word_embed_proj_dim": 64,
            "max_position_embeddings": 1024, "pad_token_id": tok.pad_token_id,
            "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
            "init_std": 0.2}
    config = Blip2Config(
        vision_config=dict(TINY_VISION),
        qformer_config={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                        "intermediate_size": 64, "encoder_hidden_size": 32,
                        "vocab_size": 64},
        text_config=text, num_query_tokens=4,
        image_token_index=tok.convert_tokens_to_ids("<image>"))
    torch.manual_seed(seed)
    return _save(Blip2ForConditionalGeneration(config), processor, out, tok.pad_token_id,
                 tok.eos_token_id)


def build_tiny_instructblip(out: Path, *, seed: int = 0) -> Path:
    """InstructBLIP: ViT + instruction-aware Q-Former (its own tokenizer) + Llama (Vicuna)."""
    from transformers import (BlipImageProcessor, InstructBlipConfig,
                              InstructBlipForConditionalGeneration, InstructBlipProcessor)

    tok = word_level_tokenizer(["<pad>", "<s>", "</s>"], bos="<s>", eos="</s>", pad="<pad>",
                               extra_words=("Question", "Answer", *SPACED_LETTERS))
    qformer_tok = word_level_tokenizer(["[PAD]", "[CLS]", "[SEP]"], bos="[CLS]", eos="[SEP]",
                                       pad="[PAD]", extra_words=("Question", "Answer"))
    processor = InstructBlipProcessor(image_processor=BlipImageProcessor(
        size={"height": 32, "width": 32}), tokenizer=tok, qformer_tokenizer=qformer_tok,
        num_query_tokens=4)
    config = InstructBlipConfig(
        vision_config=dict(TINY_VISION),
        qformer_config={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                        "intermediate_size": 64, "encoder_hidden_size": 32,
                        "vocab_size": len(qformer_tok), "pad_token_id": qformer_tok.pad_token_id},
        text_config=_text(tok), num_query_tokens=4,
        image_token_index=tok.convert_tokens_to_ids("<image>"))
    torch.manual_seed(seed)
    return _save(InstructBlipForConditionalGeneration(config), processor, out, tok.pad_token_id,
                 tok.eos_token_id)


MLLAMA_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + "
    "'<|end_header_id|>\n\n' }}{% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% for p in m['content'] %}{% if p['type'] == 'image' %}{{ '<|image|>' }}{% else %}"
    "{{ p['text'] }}{% endif %}{% endfor %}{% endif %}{{ '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)


def build_tiny_mllama(out: Path, *, seed: int = 0) -> Path:
    """Llama 3.2 Vision: a tiled ViT whose features the decoder reads through cross-attention
    layers (no image tokens in the sequence but one ``<|image|>`` marker)."""
    from transformers import (MllamaConfig, MllamaForConditionalGeneration,
                              MllamaImageProcessor, MllamaProcessor)

    tok = word_level_tokenizer(["<|finetune_right_pad_id|>", "<|begin_of_text|>", "<|eot_id|>",
                                "<|image|>", "<|start_header_id|>", "<|end_header_id|>",
                                "<|python_tag|>", "user", "assistant", "system"],
                               bos="<|begin_of_text|>", eos="<|eot_id|>",
                               pad="<|finetune_right_pad_id|>",
                               extra_special={"image_token": "<|image|>"},
                               extra_words=("\n", *SPACED_LETTERS))
    image_processor = MllamaImageProcessor(size={"height": 32, "width": 32}, max_image_tiles=2)
    processor = MllamaProcessor(image_processor=image_processor, tokenizer=tok,
                                chat_template=MLLAMA_TEMPLATE)
    text = {**_text(tok), "model_type": "mllama_text_model", "cross_attention_layers": [1]}
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
              "num_global_layers": 1, "num_attention_heads": 2, "image_size": 32,
              "patch_size": 8, "max_num_tiles": 2, "intermediate_layers_indices": [0],
              "vision_output_dim": 64, "supported_aspect_ratios": [[1, 1], [1, 2], [2, 1]]}
    config = MllamaConfig(vision_config=vision, text_config=text,
                          image_token_index=tok.convert_tokens_to_ids("<|image|>"))
    torch.manual_seed(seed)
    model = MllamaForConditionalGeneration(config)
    _wake(model, cross_attn_attn_gate=1.0, cross_attn_mlp_gate=1.0)  # tanh(0) gates at init
    return _save(model, processor, out, tok.pad_token_id, tok.eos_token_id)


JANUS_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}{{ '<|User|>: ' }}"
    "{% elif m['role'] == 'assistant' %}{{ '<|Assistant|>: ' }}{% endif %}"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for p in m['content'] %}"
    "{% if p['type'] == 'image' %}{{ '<image_placeholder>' }}{% else %}{{ p['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ '\n\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|Assistant|>:' }}{% endif %}"
)


def build_tiny_janus(out: Path, *, seed: int = 0) -> Path:
    """Janus (Janus-Pro): SigLIP understanding tower + aligner + Llama; the VQ image generator
    is present (tiny) but unused when answering."""
    from transformers import (JanusConfig, JanusForConditionalGeneration, JanusImageProcessor,
                              JanusProcessor)

    tok = word_level_tokenizer(["<｜▁pad▁｜>", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>",
                                "<image_placeholder>", "<begin_of_image>", "<end_of_image>",
                                "<|User|>", "<|Assistant|>"],
                               bos="<｜begin▁of▁sentence｜>", eos="<｜end▁of▁sentence｜>",
                               pad="<｜▁pad▁｜>",
                               extra_special={"image_token": "<image_placeholder>",
                                              "boi_token": "<begin_of_image>",
                                              "eoi_token": "<end_of_image>"},
                               extra_words=("\n", *SPACED_LETTERS))
    processor = JanusProcessor(image_processor=JanusImageProcessor(
        size={"height": 32, "width": 32}), tokenizer=tok, chat_template=JANUS_TEMPLATE,
        num_image_tokens=16)
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 2, "image_size": 32, "patch_size": 8,
              "projection_dim": 64, "num_image_tokens": 16}
    vq = {"embed_dim": 8, "num_embeddings": 16, "base_channels": 32, "channel_multiplier": [1],
          "num_res_blocks": 1, "latent_channels": 8, "projection_dim": 64,
          "image_token_embed_dim": 64, "num_patches": 4}
    config = JanusConfig(text_config=_text(tok), vision_config=vision, vq_config=vq,
                         image_token_id=tok.convert_tokens_to_ids("<image_placeholder>"))
    torch.manual_seed(seed)
    return _save(JanusForConditionalGeneration(config), processor, out, tok.pad_token_id,
                 tok.eos_token_id)


def all_builders() -> dict:
    """Every tiny family's builder, by family name (the table in ``docs/models.md``)."""
    from robustness.testing.tiny_models import BUILDERS

    return {**BUILDERS, "llava_next": build_tiny_llava_next,
            "llava_onevision": build_tiny_llava_onevision, "qwen2_5_vl": build_tiny_qwen2_5_vl,
            "smolvlm": build_tiny_smolvlm, "gemma3": build_tiny_gemma3,
            "paligemma": build_tiny_paligemma, "internvl": build_tiny_internvl,
            "janus": build_tiny_janus, "blip2": build_tiny_blip2,
            "instructblip": build_tiny_instructblip, "mllama": build_tiny_mllama}


# The model preset (conf/model/<preset>.yaml) each tiny family stands in for.
PRESETS = {"llava": "llava_1_5", "llava_next": "llava_next", "llava_onevision": "llava_onevision",
           "qwen2_vl": "qwen2_vl", "qwen2_5_vl": "qwen2_5_vl", "idefics3": "idefics3",
           "smolvlm": "smolvlm", "gemma3": "medgemma", "paligemma": "paligemma",
           "internvl": "internvl", "janus": "janus_pro", "blip2": "blip2",
           "instructblip": "instructblip", "mllama": "llama_3_2_vision"}
