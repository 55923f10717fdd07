"""White-box answer margins: a differentiable path from a query's original pixels to its score.

A Hugging Face adapter answers from PIL images that its processor resizes, crops, tiles and
normalises. Here the same processor runs on float *tensors* of the original pixels instead
(transformers 5's image processors are torchvision ops, differentiable end to end), the text
side is encoded exactly as the adapter encodes it, and the model's logits give the margin of
:mod:`explain.scoring`. Gradients therefore arrive in the original image's coordinates, whatever
geometry the processor applies: pixels it crops away get exactly zero.

The only difference from the adapter's own path is rounding: the adapter resizes uint8 pixels
(rounded and clipped), this path resizes floats (smooth, so integrals and gradients exist).
:meth:`WhiteBoxScorer.function` checks the two agree on the query's own image before use.

Uses only the adapter's public surface: ``load()`` (model, processor, tokenizer, family,
device, forward parameters), ``encode``, ``render``, ``render_with_answer`` and
``candidate_token_ids``.

:class:`AdapterGradientOracle` serves :mod:`attacks.adversarial` (FGSM/PGD) from the same
path: per query, the margin of its right answer and the gradient w.r.t. the image.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from robustness.data.types import OPTION_LABELS, OptionLabel, other_label
from robustness.errors import ConfigError
from robustness.models.base import ModelAdapter, WhiteBoxAdapter
from robustness.models.hf import split_continuation
from robustness.modes.base import AnsweringMode
from robustness.data.query import Query

from explain.scoring import normalisation, normalised, score_kind

log = logging.getLogger(__name__)

MarginFunction = Callable[[Any], Any]  # float tensor [k, *image shape] (0..255) -> margins [k]
# The float path must reproduce the adapter's pixel values on the query's own image within
# this mean absolute difference (normalised units): the gap is uint8 rounding and clipping only.
MAX_MEAN_PIXEL_GAP = 0.02


def is_white_box(adapter: ModelAdapter) -> bool:
    """Whether ``adapter`` exposes a loaded torch model and processor (Hugging Face style)."""
    return isinstance(adapter, WhiteBoxAdapter)


def require_white_box(adapter: ModelAdapter, purpose: str) -> None:
    """Fail in one line when ``adapter`` gives no gradients (API models, scripted models)."""
    if not is_white_box(adapter):
        raise ConfigError(f"{purpose} needs gradients, which model {adapter.model_id} does not "
                          "expose (white-box: Hugging Face models and the reference model); use "
                          "explain=occlusion, which needs only option scores")


def to_chw(image: Any) -> Any:
    """A float tensor [H, W] or [H, W, C] as the [3, H, W] RGB tensor a processor expects
    (grey replicated to three channels as PIL's ``convert("RGB")`` does; alpha dropped)."""
    if image.dim() == 2:
        return image.unsqueeze(0).expand(3, -1, -1)
    chw = image.permute(2, 0, 1)
    if chw.shape[0] == 1:
        return chw.expand(3, -1, -1)
    return chw[:3]


@dataclass
class _Prepared:
    """Everything about one (query, target) that does not depend on the query's pixel values."""

    kind: str
    fixed_images: list[Any]  # float CHW tensors of the prompt's other images (few-shot)
    sequences: list[dict[str, Any]]  # text-side inputs [1, L]: one (letters) or one per option
    tails: list[list[int]]  # option scoring: the answer token ids of each sequence
    n_chars: list[int]
    target: OptionLabel
    target_ids: tuple[int, ...] = ()
    other_ids: tuple[int, ...] = ()


class WhiteBoxScorer:
    """Differentiable margins of a white-box adapter's answer w.r.t. the query image."""

    def __init__(self, adapter: ModelAdapter, mode: AnsweringMode) -> None:
        require_white_box(adapter, "white-box saliency")
        self.adapter: WhiteBoxAdapter = adapter  # type: ignore[assignment]
        self.mode = mode
        self.kind = score_kind(mode)
        self.normalize = normalisation(mode)
        self._cache: dict[tuple, _Prepared] = {}

    # ------------------------------------------------------------------ model access
    @property
    def loaded(self) -> Any:
        return self.adapter.load()

    def _check_family(self) -> None:
        family = self.loaded.family
        if family.encode is not None:
            raise ConfigError(f"model {self.adapter.model_id} ({family.name}) prepares its inputs "
                              "with its own code, outside the differentiable processor path; use "
                              "explain=occlusion")

    def _image_processor(self) -> Any:
        proc = getattr(self.loaded.processor, "image_processor", None)
        if proc is None:
            raise ConfigError(f"model {self.adapter.model_id}: its processor has no image "
                              "processor; use explain=occlusion")
        return proc

    def _encode_text(self, text: str, query_images: tuple) -> dict[str, Any]:
        """Model inputs for one text with its images, exactly as the adapter encodes them."""
        return dict(self.adapter.encode([text], [query_images]))

    def _image_inputs(self, per_row_images: list[list[Any]]) -> dict[str, Any]:
        """Image-side inputs for a batch of rows (each a list of float CHW tensors)."""
        import warnings

        with warnings.catch_warnings():  # an all-black baseline looks "already rescaled"
            warnings.simplefilter("ignore")
            out = self._image_processor()(images=per_row_images, return_tensors="pt")
        return dict(out)

    def _forward_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Tensors on the model's device and dtype, restricted to what ``forward`` takes."""
        import torch

        loaded = self.loaded
        dtype = loaded.model.dtype
        out: dict[str, Any] = {}
        for key, value in inputs.items():
            if key == "labels" or not isinstance(value, torch.Tensor):
                continue
            if key not in loaded.forward_params and key != "attention_mask":
                continue
            value = value.to(loaded.device)
            out[key] = value.to(dtype) if value.is_floating_point() else value
        return out

    # ------------------------------------------------------------------ preparation
    def _prepare(self, query: Query, target: OptionLabel) -> _Prepared:
        import torch

        key = (query.pair_id, query.image_index, query.question, tuple(query.options),
               query.strategy, query.system_prompt, tuple(q.image.digest for q in query.few_shot),
               tuple(query.image.pixels.shape), target)
        if key in self._cache:
            return self._cache[key]
        self._check_family()
        if query.strategy == "cot":
            raise ConfigError("explain: a chain-of-thought answer is not the next token; "
                              "its score cannot be attributed")
        adapter: Any = self.adapter
        prompt = self.mode.build_prompts(adapter, [query])[0]
        fixed = [to_chw(torch.as_tensor(img.pixels.astype(np.float32)))
                 for img in prompt.images[:-1]]
        try:
            image_keys = set(self._image_inputs([[*fixed, to_chw(torch.as_tensor(
                query.image.pixels.astype(np.float32)))]]))
        except (TypeError, ValueError, RuntimeError) as err:
            raise ConfigError(f"model {self.adapter.model_id}: its image processor does not take "
                              f"float tensors ({' '.join(str(err).split())[:200]}); use "
                              "explain=occlusion") from None
        if self.kind == "letter":
            base = self._encode_text(adapter.render(prompt), prompt.images)
            self._check_pixels(base, query, fixed)
            text = {k: v for k, v in base.items() if k not in image_keys}
            prepared = _Prepared(kind="letter", fixed_images=fixed, sequences=[text], tails=[],
                                 n_chars=[], target=target,
                                 target_ids=tuple(adapter.candidate_token_ids(target)),
                                 other_ids=tuple(adapter.candidate_token_ids(other_label(target))))
        else:
            sequences, tails, n_chars = [], [], []
            for option in query.options:
                prefix, answer = adapter.render_with_answer(prompt, option)
                base = self._encode_text(prefix, prompt.images)
                if not sequences:
                    self._check_pixels(base, query, fixed)
                text = {k: v for k, v in base.items() if k not in image_keys}
                seq, tail = self._append_answer(text, prefix, answer)
                sequences.append(seq)
                tails.append(tail)
                n_chars.append(len(option))
            prepared = _Prepared(kind="option", fixed_images=fixed, sequences=sequences,
                                 tails=tails, n_chars=n_chars, target=target)
        self._cache[key] = prepared
        return prepared

    def _append_answer(self, text: dict[str, Any], prefix: str,
                       answer: str) -> tuple[dict[str, Any], list[int]]:
        """The prefix's token inputs with the answer's tokens appended (as the adapter scores a
        continuation: the tokenisation of prefix + answer beyond their common part)."""
        import torch

        loaded = self.loaded
        tok = loaded.tokenizer
        tail, trim = split_continuation(tok, prefix + loaded.family.processor_text_suffix, answer)
        ids = text["input_ids"]
        length = ids.shape[1]
        keep = length - trim
        cont = torch.tensor(tail, dtype=ids.dtype, device=ids.device)[None]
        out: dict[str, Any] = {}
        for key, value in text.items():
            per_token = isinstance(value, torch.Tensor) and value.dim() >= 2 \
                and value.shape[:2] == (1, length)
            if not per_token:
                out[key] = value
                continue
            body = value[:, :keep]
            n = len(tail)
            if key == "input_ids":
                extra = cont
            elif key == "attention_mask":
                extra = torch.ones((1, n), dtype=value.dtype, device=value.device)
            elif key == "token_type_ids":
                extra = torch.full((1, n), loaded.family.continuation_token_type,
                                   dtype=value.dtype, device=value.device)
            elif key == "cross_attention_mask":
                extra = body[:, -1:].expand(1, n, *body.shape[2:]).clone()
            else:
                extra = torch.zeros((1, n, *value.shape[2:]), dtype=value.dtype,
                                    device=value.device)
            out[key] = torch.cat([body, extra], dim=1)
        return out, tail

    def _check_pixels(self, base: dict[str, Any], query: Query, fixed: list[Any]) -> None:
        """The float path must give the adapter's image inputs on the query's own pixels."""
        import torch

        own = to_chw(torch.as_tensor(query.image.pixels.astype(np.float32)))
        ours = self._image_inputs([[*fixed, own]])
        for key, value in ours.items():
            theirs = base.get(key)
            if not isinstance(value, torch.Tensor) or not isinstance(theirs, torch.Tensor):
                continue
            if tuple(value.shape) != tuple(theirs.shape):
                raise ConfigError(f"model {self.adapter.model_id}: the differentiable image path "
                                  f"gives {key} of shape {tuple(value.shape)}, the processor "
                                  f"{tuple(theirs.shape)}; use explain=occlusion")
            if value.is_floating_point():
                gap = float((value.float() - theirs.detach().float().cpu()).abs().mean())
                if gap > MAX_MEAN_PIXEL_GAP:
                    raise ConfigError(f"model {self.adapter.model_id}: the differentiable image "
                                      f"path differs from the processor's ({key} mean gap "
                                      f"{gap:.3f}); use explain=occlusion")

    # ------------------------------------------------------------------ the function
    def function(self, query: Query, target: OptionLabel) -> MarginFunction:
        """``f(images) -> margins``: images a float tensor [k, *query.image.pixels.shape] of
        grey levels (0..255), margins the target's score minus the other option's, shape [k].
        Differentiable w.r.t. the images."""
        if target not in OPTION_LABELS:
            raise ValueError(f"target must be a displayed label A or B, got {target!r}")
        prepared = self._prepare(query, target)
        return lambda images: self._margins(prepared, images)

    def _margins(self, prepared: _Prepared, images: Any) -> Any:
        import torch

        k = images.shape[0]
        rows = [[*prepared.fixed_images, to_chw(images[j].float())] for j in range(k)]
        image_inputs = self._image_inputs(rows)
        scores = []
        for index, text in enumerate(prepared.sequences):
            batch = {key: (value.expand(k, *value.shape[1:])
                           if isinstance(value, torch.Tensor) and value.shape[:1] == (1,)
                           else value) for key, value in text.items()}
            inputs = self._forward_inputs({**batch, **image_inputs})
            if prepared.kind == "letter":
                kwargs = {"logits_to_keep": 1} if "logits_to_keep" in self.loaded.forward_params \
                    else {}
                logits = self.loaded.model(**inputs, use_cache=False, **kwargs).logits
                logprobs = torch.log_softmax(logits[:, -1, :].float(), dim=-1)
                t = torch.logsumexp(logprobs[:, list(prepared.target_ids)], dim=-1)
                o = torch.logsumexp(logprobs[:, list(prepared.other_ids)], dim=-1)
                return t - o
            logits = self.loaded.model(**inputs, use_cache=False).logits
            tail = prepared.tails[index]
            n = len(tail)
            width = logits.shape[1]
            logprobs = torch.log_softmax(logits[:, width - n - 1: width - 1, :].float(), dim=-1)
            ids = torch.tensor(tail, device=logprobs.device)
            total = logprobs.gather(-1, ids[None, :, None].expand(k, n, 1)).sum(dim=(1, 2))
            scores.append(normalised(total, n, prepared.n_chars[index], self.normalize))
        t_index = OPTION_LABELS.index(prepared.target)
        return scores[t_index] - scores[1 - t_index]

    def margins_and_gradients(self, queries: Sequence[Query], images: Sequence[np.ndarray],
                              targets: Sequence[OptionLabel], batch_size: int | None = None
                              ) -> list[tuple[float, np.ndarray]]:
        """Per query: the target's margin on ``images[i]`` and its gradient w.r.t. that image
        (same shape, float64). Letter margins (MC, GD) of up to ``batch_size`` queries
        (default: the adapter's batch size) run as one left-padded forward and backward pass,
        as the adapter batches its own answers; option margins (PS) go one query at a time."""
        if self.kind == "letter":
            return self._letter_batches(queries, images, targets, batch_size)
        return self._one_by_one(queries, images, targets)

    def _one_by_one(self, queries: Sequence[Query], images: Sequence[np.ndarray],
                    targets: Sequence[OptionLabel]) -> list[tuple[float, np.ndarray]]:
        import torch

        out = []
        for query, image, target in zip(queries, images, targets):
            f = self.function(query, target)
            x = torch.as_tensor(np.asarray(image, dtype=np.float32))[None].requires_grad_(True)
            with torch.enable_grad():
                margin = f(x)[0]
                (grad,) = torch.autograd.grad(margin, x)
            out.append((float(margin.detach()), grad[0].double().cpu().numpy()))
        return out

    def _letter_batches(self, queries: Sequence[Query], images: Sequence[np.ndarray],
                        targets: Sequence[OptionLabel], batch_size: int | None
                        ) -> list[tuple[float, np.ndarray]]:
        import torch

        prepared = [self._prepare(q, t) for q, t in zip(queries, targets)]
        size = batch_size or self.adapter.batch_size
        out: list[tuple[float, np.ndarray] | None] = [None] * len(queries)
        groups: dict[int, list[int]] = {}  # rows of one forward carry the same image count
        for i, p in enumerate(prepared):
            groups.setdefault(len(p.fixed_images), []).append(i)
        pad_id = self.loaded.tokenizer.pad_token_id
        for rows in groups.values():
            for start in range(0, len(rows), size):
                chunk = rows[start:start + size]
                xs = [torch.as_tensor(np.asarray(images[i], dtype=np.float32))
                      .requires_grad_(True) for i in chunk]
                with torch.enable_grad():
                    image_inputs = self._image_inputs(
                        [[*prepared[i].fixed_images, to_chw(x)] for i, x in zip(chunk, xs)])
                    text = _left_pad([prepared[i].sequences[0] for i in chunk], pad_id)
                    inputs = self._forward_inputs({**text, **image_inputs})
                    kwargs = {"logits_to_keep": 1} \
                        if "logits_to_keep" in self.loaded.forward_params else {}
                    logits = self.loaded.model(**inputs, use_cache=False, **kwargs).logits
                    logprobs = torch.log_softmax(logits[:, -1, :].float(), dim=-1)
                    margins = torch.stack([
                        torch.logsumexp(logprobs[r, list(prepared[i].target_ids)], dim=-1)
                        - torch.logsumexp(logprobs[r, list(prepared[i].other_ids)], dim=-1)
                        for r, i in enumerate(chunk)])
                    grads = torch.autograd.grad(margins.sum(), xs)
                for r, i in enumerate(chunk):
                    out[i] = (float(margins[r].detach()), grads[r].double().cpu().numpy())
        return out  # type: ignore[return-value]


def _left_pad(texts: Sequence[dict[str, Any]], pad_id: int) -> dict[str, Any]:
    """Text-side inputs [1, L_i] of several prompts as one left-padded batch [n, max L]."""
    import torch

    width = max(t["input_ids"].shape[1] for t in texts)
    out: dict[str, Any] = {}
    for key in texts[0]:
        values = [t[key] for t in texts]
        if not all(isinstance(v, torch.Tensor) and v.dim() >= 2 and v.shape[0] == 1
                   and v.shape[1] == t["input_ids"].shape[1] for v, t in zip(values, texts)):
            out[key] = values[0]
            continue
        fill = pad_id if key == "input_ids" else 0
        rows = [torch.cat([torch.full((1, width - v.shape[1], *v.shape[2:]), fill,
                                      dtype=v.dtype, device=v.device), v], dim=1)
                for v in values]
        out[key] = torch.cat(rows, dim=0)
    return out


class AdapterGradientOracle:
    """The gradient oracle of :mod:`attacks.adversarial` for a white-box adapter and mode.

    ``oracle(queries, images, labels)`` returns, per query, the margin of ``labels[i]``
    (displayed; default the query's right answer) over the other option on the candidate image
    and its gradient w.r.t. that image in the image's own coordinates."""

    def __init__(self, adapter: ModelAdapter, mode: AnsweringMode,
                 batch_size: int | None = None) -> None:
        self.scorer = WhiteBoxScorer(adapter, mode)
        self.batch_size = batch_size  # images per forward/backward pass (None: the adapter's)
        self.calls = 0  # margin-and-gradient evaluations (one per image per step)

    def __call__(self, queries: Sequence[Query], images: Sequence[np.ndarray],
                 labels: Sequence[OptionLabel] | None = None) -> list[tuple[float, np.ndarray]]:
        self.calls += len(queries)
        labels = [q.correct for q in queries] if labels is None else list(labels)
        return self.scorer.margins_and_gradients(queries, images, labels, self.batch_size)
