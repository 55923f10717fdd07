"""GD, PS and MC throughput on a model with LLaVA-1.5-7B's real shape: the adapter (batched,
prefix KV cache) vs the official one-question-per-call pattern, on one GPU.

Builds a randomly initialised ``LlavaForConditionalGeneration`` from a config with the shape of
llava-hf/llava-1.5-7b-hf (CLIP ViT-L/14 at 336 px: 576 image tokens; Llama-2-7B decoder: 32
layers, 4096 wide, 32,064-token vocabulary) — no weights are downloaded — saves it to a temporary
folder and loads it through ``HFAdapter`` like any checkpoint (bfloat16 on CUDA). Then answers
the same two-option questions (the modes' own prompts) two ways:

* **official pattern**, one question per call, with the official decision rules: GD compares
  the last position's logits of ``encode('A')`` and ``encode('B')``; PS runs one forward per
  option and log-softmaxes only the answer positions (mean per token); MC generates per question;
* **adapter**: ``HFAdapter`` with ``--batch-size`` (sorted by length, left-padded; PS scores
  both options from one prompt pass's KV cache; GD keeps only the last position's logits).

Each mode is timed on the same questions, official then adapter, after a warm-up; the agreement
of the two ways' choices is printed separately (bfloat16 batches may round differently). Last
lines: ``questions_per_s: Y`` (the adapter over all three modes) and ``speedup: X`` (official
time ÷ adapter time, all modes together). Without CUDA it runs the same at a reduced shape and
says so. Needs ~30 GB of GPU memory at the 7b shape and finishes well within 10 minutes on one
H100.

    python benchmarks/gpu_throughput.py [--shape 7b|small] [--questions 64] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

SHAPES = {  # LLaVA-1.5-7B (llava-hf/llava-1.5-7b-hf's config) and a CPU-sized stand-in
    "7b": dict(image_size=336, patch_size=14, vision_hidden=1024, vision_layers=24,
               vision_heads=16, vision_intermediate=4096, hidden=4096, layers=32, heads=32,
               intermediate=11008, vocab=32064),
    "small": dict(image_size=64, patch_size=8, vision_hidden=128, vision_layers=2,
                  vision_heads=4, vision_intermediate=256, hidden=256, layers=4, heads=4,
                  intermediate=688, vocab=32064),
}


def build(shape: dict, out: Path, device: str, dtype) -> Path:
    """A random LLaVA of ``shape`` saved in ``out`` (built directly on ``device``)."""
    import torch
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor)

    from robustness.testing.tiny_models import LLAVA_TEMPLATE, SPACED_LETTERS, word_level_tokenizer

    tok = word_level_tokenizer(["<pad>", "<s>", "</s>", "<image>", "USER", "ASSISTANT", "SYSTEM"],
                               bos="<s>", eos="</s>", pad="<pad>",
                               extra_special={"image_token": "<image>"},
                               extra_words=(*SPACED_LETTERS, "\u0120B"))  # both letters alike
    size = shape["image_size"]
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": size},
                                           crop_size={"height": size, "width": size}),
        tokenizer=tok, patch_size=shape["patch_size"], vision_feature_select_strategy="default",
        num_additional_image_tokens=1, chat_template=LLAVA_TEMPLATE)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=shape["vision_hidden"], intermediate_size=shape["vision_intermediate"],
            num_hidden_layers=shape["vision_layers"], num_attention_heads=shape["vision_heads"],
            image_size=size, patch_size=shape["patch_size"], projection_dim=768),
        text_config=LlamaConfig(
            vocab_size=shape["vocab"], hidden_size=shape["hidden"],
            intermediate_size=shape["intermediate"], num_hidden_layers=shape["layers"],
            num_attention_heads=shape["heads"], num_key_value_heads=shape["heads"],
            max_position_embeddings=4096, bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
            initializer_range=0.02),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default", vision_feature_layer=-2)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlavaForConditionalGeneration._from_config(config, dtype=dtype).eval()
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out)
    processor.save_pretrained(out)
    del model
    return out


def official_inputs(adapter, text: str, images) -> dict:
    """What the official code feeds the model: the processor called on one prompt and its
    images (no stored pixel rows, no padding), moved to the model's device and dtype."""
    loaded = adapter.load()
    pil = [img.pil("RGB") for img in images]
    inputs = loaded.processor(text=[text], images=pil or None, return_tensors="pt")
    dtype = loaded.model.dtype
    return {k: (v.to(loaded.device, dtype) if v.is_floating_point() else v.to(loaded.device))
            for k, v in inputs.items()}


def official_gd_choices(adapter, model, tok, prompts) -> list[str]:
    """The official GD pattern: one forward per question, the last position's logits of
    ``encode('A')`` against ``encode('B')``."""
    import torch

    ids_a, ids_b = (tok.encode(x, add_special_tokens=False)[0] for x in ("A", "B"))
    out = []
    for p in prompts:
        inputs = official_inputs(adapter, adapter.render(p), p.images)
        with torch.inference_mode():
            logits = model(**inputs).logits[0, -1].float()
        out.append("A" if logits[ids_a] >= logits[ids_b] else "B")
    return out


def official_ps_choices(adapter, model, tok, prompts, queries) -> list[str]:
    """The official PS pattern: one forward per option (the prompt recomputed each time),
    log-softmax over the answer positions only, mean per token."""
    import torch

    out = []
    for p, q in zip(prompts, queries):
        scores = []
        for option in q.options:
            text, answer = adapter.render_with_answer(p, option)
            k = (len(tok.encode(text + answer, add_special_tokens=False))
                 - len(tok.encode(text, add_special_tokens=False)))
            inputs = official_inputs(adapter, text + answer, p.images)
            ids = inputs["input_ids"][0]
            with torch.inference_mode():
                logits = model(**inputs).logits[0, -k - 1:-1].float()
            picked = torch.log_softmax(logits, -1).gather(-1, ids[-k:, None])
            scores.append(float(picked.mean()))
        out.append("AB"[int(scores[1] > scores[0])])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="7b")
    parser.add_argument("--questions", type=int, default=None,
                        help="questions per mode (default 64 on CUDA, 16 on CPU)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="adapter batch size (default 16 on CUDA, 8 on CPU)")
    parser.add_argument("--max-new-tokens", type=int, default=8, help="MC generation length")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (without CUDA)")
    args = parser.parse_args(argv)

    import torch
    from transformers.utils import logging as hf_logging

    from robustness.models.base import (GenerateRequest, GenerationSettings,
                                        LoglikelihoodRequest, NextTokenRequest)
    from robustness.models.hf import HFAdapter
    from robustness.modes import mode_from_config
    from robustness.testing.tiny_models import make_queries

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    cuda = torch.cuda.is_available()
    shape_name = args.shape
    if not cuda and shape_name == "7b":
        print("no CUDA device: running the reduced 'small' shape on the CPU instead of 7b")
        shape_name = "small"
    if not cuda:
        torch.set_num_threads(args.threads)
    device, dtype = ("cuda", torch.bfloat16) if cuda else ("cpu", torch.float32)
    n = args.questions or (64 if cuda else 16)
    batch = args.batch_size or (16 if cuda else 8)
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = build(SHAPES[shape_name], Path(tmp) / f"llava_{shape_name}", device, dtype)
        adapter = HFAdapter(path, batch_size=batch, device=device,
                            dtype="bfloat16" if cuda else "float32", local_files_only=True)
        loaded = adapter.load()
        model, tok = loaded.model, loaded.tokenizer
        params = sum(p.numel() for p in model.parameters())
        where = torch.cuda.get_device_name() if cuda else f"CPU, {args.threads} thread(s)"
        print(f"model: random LLaVA, {shape_name} shape, {params / 1e9:.2f}B parameters, "
              f"{str(dtype).removeprefix('torch.')}, {where}; built and loaded in "
              f"{time.perf_counter() - start:.0f} s; {n} questions per mode; adapter batch "
              f"size {batch}")
        queries = make_queries(n, seed=1)
        prompts = {m: mode_from_config(m).build_prompts(adapter, queries) for m in ("gd", "ps", "mc")}

        def official_gd() -> list[str]:
            return official_gd_choices(adapter, model, tok, prompts["gd"])

        def official_ps() -> list[str]:
            return official_ps_choices(adapter, model, tok, prompts["ps"], queries)

        def official_mc() -> list[str]:
            out = []
            for p in prompts["mc"]:
                inputs = official_inputs(adapter, adapter.render(p), p.images)
                with torch.inference_mode():
                    ids = model.generate(**inputs, max_new_tokens=args.max_new_tokens,
                                         do_sample=False)
                out.append(tok.decode(ids[0, inputs["input_ids"].shape[1]:],
                                      skip_special_tokens=True).strip())
            return out

        def adapter_gd() -> list[str]:
            adapter.clear_reuse()  # each pass from scratch, as a run's first condition
            res = adapter.next_token_scores([NextTokenRequest(p, ("A", "B"))
                                             for p in prompts["gd"]])
            return [max(r.logprobs, key=r.logprobs.get) for r in res]

        def adapter_ps() -> list[str]:
            adapter.clear_reuse()
            res = adapter.loglikelihood([LoglikelihoodRequest(p, q.options)
                                         for p, q in zip(prompts["ps"], queries)])
            return ["AB"[int(r.scores[1].logprob / r.scores[1].n_tokens
                             > r.scores[0].logprob / r.scores[0].n_tokens)] for r in res]

        def adapter_mc() -> list[str]:
            settings = GenerationSettings(max_new_tokens=args.max_new_tokens)
            adapter.clear_reuse()
            return [r.text.strip() for r in adapter.generate(
                [GenerateRequest(p, settings) for p in prompts["mc"]])]

        def timed(fn):
            sync()
            t0 = time.perf_counter()
            out = fn()
            sync()
            return out, time.perf_counter() - t0

        adapter_gd(), official_gd()  # warm-up: kernels, allocator, lazy initialisation
        totals = {"official": 0.0, "adapter": 0.0}
        for mode, official, ours in (("GD", official_gd, adapter_gd),
                                     ("PS", official_ps, adapter_ps),
                                     ("MC", official_mc, adapter_mc)):
            a, t_official = timed(official)
            b, t_adapter = timed(ours)
            totals["official"] += t_official
            totals["adapter"] += t_adapter
            agree = 100.0 * sum(x == y for x, y in zip(a, b)) / n
            print(f"{mode}: official pattern {n / t_official:.2f} questions/s, adapter "
                  f"{n / t_adapter:.2f} questions/s (x{t_official / t_adapter:.2f}); same "
                  f"answer on {agree:.0f}% of questions")
        if cuda:
            print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2 ** 30:.1f} GiB")
        print(f"questions_per_s: {3 * n / totals['adapter']:.2f}")
        print(f"speedup: {totals['official'] / totals['adapter']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
