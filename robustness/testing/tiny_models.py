"""Randomly initialised tiny vision-language checkpoints of real transformers families.

Each builder makes a model from a config in code, a small word-level tokenizer (``tokenizers``),
an image processor, a processor with a chat template, and saves them with ``save_pretrained``
so tests load them back through :class:`robustness.models.hf.HFAdapter` by path, exactly like a
hub checkpoint. Nothing is downloaded. Weights are seeded, so every build is identical.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from robustness.data.image import ImageInput
from robustness.data.query import Query

WORDS = """
based on the image choose correct option for following question answer with letter from given
choices directly your should be just one is there a an in of to and or no yes not left right
upper lower lung nodule mass lesion fracture hemorrhage normal abnormal present absent seen
shown which side what where this that are it its image scan ct mri x ray chest brain think step
by then final finish line form we would like request feedback performance ai assistant response
user displayed above asks observing have provided two possible answers job evaluate how close
each you don't do decide whether not receive overall score scale higher indicates closer specific
after providing scores concisely provide explanation given remember need comment correctness
please format helpful precise checking quality expert medical domain radiologist system end
""".split()
LETTERS = ["A", "B", "C", "D"]
PUNCT = [":", "(", ")", '"', ".", ",", "?", "#", "*", "[", "]", "<", ">", "'", "-", "!"]
NUMBERS = [str(i) for i in range(11)]
# Sentencepiece / byte-level spellings of letters (as real tokenizers have), for GD's merging.
SPACED_LETTERS = ("\u2581A", "\u2581B", "\u0120A")


def word_level_tokenizer(special: list[str], bos: str | None, eos: str, pad: str,
                         extra_special: dict[str, str] | None = None,
                         extra_words: tuple[str, ...] = ()):
    """A ``PreTrainedTokenizerFast`` over a fixed word vocabulary (whitespace + punctuation
    pre-tokenisation; unknown words map to ``<unk>``)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab_list = list(dict.fromkeys(["<unk>", *special, *LETTERS, *PUNCT, *NUMBERS, *WORDS,
                                     *extra_words]))
    vocab = {tok: i for i, tok in enumerate(vocab_list)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=bos, eos_token=eos,
                                  unk_token="<unk>", pad_token=pad,
                                  extra_special_tokens=extra_special or {})
    tok.add_special_tokens({"additional_special_tokens": [s for s in special
                                                          if s not in (bos, eos, pad)]})
    return tok


# A LLaVA-1.5-style template (roles in capitals, images first, "ASSISTANT:" to answer).
LLAVA_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}SYSTEM: {% elif m['role'] == 'user' %}USER: "
    "{% else %}ASSISTANT: {% endif %}"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% for p in m['content'] %}{% if p['type'] == 'image' %}{{ '<image>\n' }}{% endif %}"
    "{% endfor %}"
    "{% for p in m['content'] %}{% if p['type'] == 'text' %}{{ p['text'] }}{% endif %}{% endfor %}"
    "{% endif %}{% if m['role'] == 'assistant' %}{{ '</s>' }}{% endif %}{{ '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

# A Qwen2-VL-style template (<|im_start|>role ... <|im_end|>, vision pads in place).
QWEN2_VL_TEMPLATE = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' }}"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for p in m['content'] %}"
    "{% if p['type'] == 'image' %}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{% else %}{{ p['text'] }}{% endif %}{% endfor %}{% endif %}{{ '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def build_tiny_llava(out: Path, *, seed: int = 0, hidden: int = 64, layers: int = 2,
                     vision_hidden: int = 32, vision_layers: int = 2, image_size: int = 32,
                     patch_size: int = 8, intermediate: int | None = None,
                     init_range: float = 0.2, vocab_size: int | None = None,
                     answer_token: str | None = None) -> Path:
    """A LLaVA (CLIP ViT + projector + Llama) checkpoint in ``out``.

    ``answer_token`` rigs the decoder into a bigram machine that always answers that token and
    then stops, so end-to-end tests can check a known answer's path through parsing and label
    maps (all layers still run; their residual contributions are zeroed). ``vocab_size`` pads
    the output vocabulary to a realistic size (the rows past the tokenizer are never produced
    by it but cost what a real vocabulary costs in the output layer)."""
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor)

    tok = word_level_tokenizer(["<pad>", "<s>", "</s>", "<image>", "USER", "ASSISTANT", "SYSTEM"],
                               bos="<s>", eos="</s>", pad="<pad>",
                               extra_special={"image_token": "<image>"},
                               extra_words=SPACED_LETTERS)
    image_processor = CLIPImageProcessor(size={"shortest_edge": image_size},
                                         crop_size={"height": image_size, "width": image_size})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tok,
                               patch_size=patch_size, vision_feature_select_strategy="default",
                               num_additional_image_tokens=1, chat_template=LLAVA_TEMPLATE)
    vocab = max(len(tok), vocab_size or 0)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=vision_hidden,
                                       intermediate_size=2 * vision_hidden,
                                       num_hidden_layers=vision_layers, num_attention_heads=2,
                                       image_size=image_size, patch_size=patch_size),
        text_config=LlamaConfig(vocab_size=vocab, hidden_size=hidden,
                                intermediate_size=intermediate or 2 * hidden,
                                num_hidden_layers=layers, num_attention_heads=4,
                                num_key_value_heads=2, max_position_embeddings=1024,
                                bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                pad_token_id=tok.pad_token_id, initializer_range=init_range),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default", vision_feature_layer=-1)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    if answer_token is not None:
        _rig_bigram(model.model.language_model, model.lm_head,
                    tok.convert_tokens_to_ids(answer_token), tok.eos_token_id)
    model.generation_config.pad_token_id = tok.pad_token_id
    out = Path(out)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def _rig_bigram(decoder, lm_head, answer_id: int, eos_id: int) -> None:
    """Make every token predict ``answer_id`` and ``answer_id`` predict ``eos_id``."""
    with torch.no_grad():
        for layer in decoder.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        emb = decoder.embed_tokens.weight
        dim = emb.shape[1]
        u = torch.zeros(dim)
        u[0] = 1.0
        v = torch.zeros(dim)
        v[1] = 1.0
        emb[:, :2] = 0.0
        emb += 4.0 * u  # a shared direction every token carries
        emb[answer_id] = 4.0 * v  # the answer token carries its own direction instead
        lm_head.weight[:, :2] = 0.0
        lm_head.weight[answer_id] = 30.0 * u
        lm_head.weight[eos_id] = 30.0 * v


def qwen_vl_tokenizer():
    """The tokenizer of the Qwen2-VL design (Qwen2.5-VL too): chat and vision markers."""
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>",
               "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
    tok = word_level_tokenizer(special, bos=None, eos="<|im_end|>", pad="<|endoftext|>",
                               extra_special={"image_token": "<|image_pad|>",
                                              "video_token": "<|video_pad|>"})
    return tok, {name: tok.convert_tokens_to_ids(name) for name in special}


def build_tiny_qwen2_vl(out: Path, *, seed: int = 0, hidden: int = 64, layers: int = 2,
                        init_range: float = 0.2) -> Path:
    """A Qwen2-VL (ViT with patch merger + Qwen2 decoder with M-RoPE) checkpoint in ``out``."""
    from transformers import (Qwen2VLConfig, Qwen2VLForConditionalGeneration,
                              Qwen2VLImageProcessor, Qwen2VLProcessor)

    tok, ids = qwen_vl_tokenizer()
    image_processor = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=56 * 56)
    try:
        from transformers import Qwen2VLVideoProcessor
        video_processor = Qwen2VLVideoProcessor()
    except ImportError:  # pragma: no cover - video processors need torchvision
        video_processor = None
    processor = Qwen2VLProcessor(image_processor=image_processor, tokenizer=tok,
                                 video_processor=video_processor,
                                 chat_template=QWEN2_VL_TEMPLATE)
    config = Qwen2VLConfig(
        vision_config={"depth": 1, "embed_dim": 32, "hidden_size": hidden, "num_heads": 2,
                       "mlp_ratio": 2, "patch_size": 14, "spatial_merge_size": 2,
                       "temporal_patch_size": 2},
        text_config={"vocab_size": len(tok), "hidden_size": hidden,
                     "intermediate_size": 2 * hidden, "num_hidden_layers": layers,
                     "num_attention_heads": 4, "num_key_value_heads": 2,
                     "max_position_embeddings": 1024,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                         "mrope_section": [2, 3, 3]},
                     "bos_token_id": None, "eos_token_id": ids["<|im_end|>"],
                     "pad_token_id": ids["<|endoftext|>"], "initializer_range": init_range},
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config).eval()
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    out = Path(out)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


# An Idefics3/SmolVLM-style template ("User:<image>text<end_of_utterance>", "Assistant:").
IDEFICS3_TEMPLATE = (
    "<|im_start|>{% for m in messages %}{{ m['role'] | capitalize }}"
    "{% if m['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for p in m['content'] %}{% if p['type'] == 'text' %}{{ p['text'] }}"
    "{% else %}{{ '<image>' }}{% endif %}{% endfor %}{{ '<end_of_utterance>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


def idefics3_tokenizer():
    """The tokenizer of the Idefics3 design (SmolVLM too): tile-position and image tokens."""
    grid = [f"<row_{i + 1}_col_{j + 1}>" for i in range(6) for j in range(6)]
    special = ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>",
               "<fake_token_around_image>", "<image>", "<global-img>", "User", "Assistant",
               "System", *grid]
    tok = word_level_tokenizer(special, bos="<|im_start|>", eos="<end_of_utterance>",
                               pad="<|endoftext|>")
    return tok, {name: tok.convert_tokens_to_ids(name) for name in special}


def build_tiny_idefics3(out: Path, *, seed: int = 0, hidden: int = 64, layers: int = 2,
                        init_range: float = 0.2) -> Path:
    """An Idefics3 (SigLIP-style ViT + pixel-shuffle connector + Llama) checkpoint in ``out``;
    SmolVLM uses the same classes."""
    from transformers import (Idefics3Config, Idefics3ForConditionalGeneration,
                              Idefics3ImageProcessor, Idefics3Processor)

    tok, ids = idefics3_tokenizer()
    image_processor = Idefics3ImageProcessor(do_image_splitting=False,
                                             size={"longest_edge": 32},
                                             max_image_size={"longest_edge": 32})
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tok,
                                  image_seq_len=4, chat_template=IDEFICS3_TEMPLATE)
    config = Idefics3Config(
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        text_config={"model_type": "llama", "vocab_size": len(tok), "hidden_size": hidden,
                     "intermediate_size": 2 * hidden, "num_hidden_layers": layers,
                     "num_attention_heads": 4, "num_key_value_heads": 2,
                     "pad_token_id": ids["<|endoftext|>"], "bos_token_id": ids["<|im_start|>"],
                     "eos_token_id": ids["<end_of_utterance>"], "initializer_range": init_range},
        scale_factor=2, image_token_id=ids["<image>"], pad_token_id=ids["<|endoftext|>"])
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(config).eval()
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.eos_token_id = ids["<end_of_utterance>"]
    out = Path(out)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


BUILDERS = {"llava": build_tiny_llava, "qwen2_vl": build_tiny_qwen2_vl,
            "idefics3": build_tiny_idefics3}


# ----------------------------------------------------------------------------- inputs


def make_images(n: int, seed: int = 0) -> list[ImageInput]:
    """Random RGB and grayscale images of varied sizes (so batches really pad)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        shape = (36 + 7 * (i % 8), 48 - 3 * (i % 8)) + ((3,) if i % 3 else ())
        out.append(ImageInput(rng.integers(0, 256, size=shape, dtype=np.uint8)))
    return out


QUESTIONS = ("is there a nodule in the left lung?", "which side is the lesion on?",
             "is the scan normal", "what is seen in this chest x ray image",
             "is there a fracture", "is the hemorrhage present in the brain?")
OPTIONS = (("There is a nodule in the left lung", "There is a nodule in the right lung"),
           ("left", "right"), ("Yes", "No"), ("a mass", "no mass is seen"),
           ("fracture present", "no fracture"), ("Yes", "No"))


def make_queries(n: int, seed: int = 0) -> list[Query]:
    """``n`` queries over varied questions, options, images and option orders."""
    images = make_images(n, seed)
    queries = []
    for i in range(n):
        k = i % len(QUESTIONS)
        swapped = i % 2 == 1
        opts = OPTIONS[k][::-1] if swapped else OPTIONS[k]
        queries.append(Query(pair_id=f"pair{i // 2}", image_index=1 + i % 2, image=images[i],
                             question=QUESTIONS[k], options=opts,  # type: ignore[arg-type]
                             label_map=("B", "A") if swapped else ("A", "B"),
                             correct="A" if i % 4 < 2 else "B"))
    return queries
