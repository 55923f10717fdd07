"""The Hugging Face adapter: any transformers 5.x vision-language model, batched.

One generic path serves every family: ``AutoProcessor`` + ``AutoModelForImageTextToText`` and
the processor's chat template. Family quirks (plain prompts, processor-added text, cache
sharing) live in :mod:`robustness.models.hf_families`. Models load lazily, once per process,
in a registry keyed by what identifies the loaded weights.

Batching never changes an answer: requests are sorted by length, cut into batches of
``batch_size``, left-padded, and results come back in request order. Left padding is exact
for rotary and attention-mask-derived positions (every supported family), so batched scores
equal unbatched ones within float tolerance (tested on tiny models).

Rules worth knowing:

* **Next-token scores (GD).** A candidate letter may be spelled by several tokens (``A``,
  `` A``, ``▁A``, ``ĠA``). Its log-probability is the log-sum-exp of the full-vocabulary
  log-probabilities of its distinct single-token variants, i.e. the probability mass of every
  way to write that letter as the next token. If no variant is a single token, the first token
  of the candidate's encoding stands in. The GD mode then applies a softmax over candidates.
* **Log-likelihood (PS).** The continuation is the assistant's answer: the chat template is
  rendered with the answer as the final assistant message (no end-of-turn), and the answer's
  tokens are the tail of the tokenised text beyond the prompt. Only the answer's tokens are
  scored. For families marked ``prefix_cache`` the prompt (image included) is run once per
  question and every option is scored from its KV cache; other families score all options of
  a batch as whole sequences in one forward pass.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar

from robustness.errors import ConfigError
from robustness.validate import is_commit, strict_bool
from robustness.models.base import (
    Capability,
    ChatMessage,
    ContinuationScore,
    GenerateRequest,
    GenerateResult,
    GenerationSettings,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    NextTokenRequest,
    NextTokenResult,
    Prompt,
    Usage,
    WhiteBoxAdapter,
)
from robustness.models.image_features import FeatureStore
from robustness.models.prefix_kv import PrefixSlot, PrefixStore, continue_after, prefix_slots
from robustness.models.hf_families import (
    FamilySpec,
    family_by_name,
    family_for_model_type,
    known_family_names,
)

log = logging.getLogger(__name__)

DTYPES = ("auto", "float32", "bfloat16", "float16")
DEVICES = ("auto", "cpu", "cuda")
DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")  # accelerate's placements
ATTENTION = ("sdpa", "eager", "flash_attention_2", "flash_attention_3")
# PS scoring path: "auto" = KV cache where the family is verified for it, else whole sequences
SCORE_PATHS = ("auto", "prefix_cache", "sequences")
SPACE_MARKERS = ("▁", "Ġ")  # sentencepiece and byte-level BPE spellings of a leading space

R = TypeVar("R")


# --------------------------------------------------------------------------- loading


@dataclass
class LoadedModel:
    """A model, its processor and what the adapter derived from them (shared per process)."""

    model: Any
    processor: Any
    tokenizer: Any
    family: FamilySpec
    device: Any
    forward_params: frozenset[str]
    variant_ids: dict[str, tuple[int, ...]] = field(default_factory=dict)


_REGISTRY: dict[tuple, LoadedModel] = {}
_REGISTRY_LOCK = threading.Lock()


def loaded_models() -> dict[tuple, LoadedModel]:
    """The process-wide registry (read-only view for diagnostics and tests)."""
    return dict(_REGISTRY)


def clear_registry() -> None:
    """Forget every loaded model (frees memory; the next use loads again)."""
    with _REGISTRY_LOCK:
        _REGISTRY.clear()


def resolve_device(device: str) -> str:
    if device == "cpu":  # without importing torch: a cached rerun may never need it
        return device
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"model.device: {device!r} requested but CUDA is not available on "
                          "this machine (use model.device=cpu or auto)")
    return device


def resolve_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return getattr(torch, dtype)


def _load(adapter: "HFAdapter") -> LoadedModel:
    """Load processor and model for ``adapter`` (called once per load key)."""
    import torch
    import transformers
    from transformers import AutoConfig, AutoProcessor

    device = resolve_device(adapter.device)
    torch_dtype = resolve_dtype(adapter.dtype, device)
    if adapter.trust_remote_code:
        pinned = (f"commit {adapter.revision}" if adapter.local_dir() is None
                  else f"local folder, content {adapter.weights_fingerprint()}")
        log.warning("model %s runs its own code (trust_remote_code): %s", adapter.model_id,
                    pinned)
    common = {"revision": adapter.revision, "local_files_only": adapter.local_files_only,
              "trust_remote_code": adapter.trust_remote_code}
    source = adapter.source
    try:
        config = AutoConfig.from_pretrained(source, **common)
    except (OSError, ValueError) as err:
        raise ConfigError(f"model {adapter.model_id}: cannot read its config "
                          f"({_one_line(err)})") from None
    family = (family_by_name(adapter.family) if adapter.family
              else family_for_model_type(getattr(config, "model_type", "")))
    if getattr(config, "model_type", "") == "llava_mistral":
        raise ConfigError(
            f"model {adapter.model_id} is in the original LLaVA code's format (model_type "
            "'llava_mistral'), which transformers cannot load; use a checkpoint converted to the "
            "transformers 'llava' format")
    auto_cls = getattr(transformers, family.auto_model)
    placement: dict[str, Any] = {}
    if adapter.device_map is not None:
        placement["device_map"] = adapter.device_map
    if adapter.attn_implementation is not None:
        placement["attn_implementation"] = adapter.attn_implementation
    try:
        processor = AutoProcessor.from_pretrained(source, **common, **adapter.processor_kwargs)
        model = auto_cls.from_pretrained(source, dtype=torch_dtype, **common, **placement,
                                         **dict(family.extra_load_kwargs))
    except (OSError, ValueError, KeyError, ImportError) as err:
        raise ConfigError(f"model {adapter.model_id}: cannot load ({_one_line(err)})") from None
    if adapter.device_map is None:
        model.to(device)
    else:  # accelerate placed the layers; inputs go where the embeddings are
        device = str(model.get_input_embeddings().weight.device)
        log.info("model %s placed on %s", adapter.model_id,
                 sorted({str(p.device) for p in model.parameters()}))
    model.eval()
    tokenizer = getattr(processor, "tokenizer", processor)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if family.chat_template and not getattr(processor, "chat_template", None):
        if getattr(tokenizer, "chat_template", None):
            processor.chat_template = tokenizer.chat_template
        else:
            raise ConfigError(f"model {adapter.model_id} has no chat template; set a family "
                              "without one (e.g. family: blip2) or add a template")
    params = frozenset(inspect.signature(model.forward).parameters)
    return LoadedModel(model=model, processor=processor, tokenizer=tokenizer, family=family,
                       device=torch.device(device), forward_params=params)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text[:300] + ("…" if len(text) > 300 else "")


# --------------------------------------------------------------------------- adapter


def split_continuation(tokenizer, prompt_text: str, answer: str) -> tuple[list[int], int]:
    """Tokens of ``answer`` as scored after ``prompt_text``: the tokenisation of prompt + answer
    beyond its common part with the prompt's, and how many trailing prompt tokens merge into the
    answer (usually 0). Raises ``ValueError`` when the answer adds no token."""
    a = tokenizer.encode(prompt_text, add_special_tokens=False)
    b = tokenizer.encode(prompt_text + answer, add_special_tokens=False)
    common = 0
    for x, y in zip(a, b):
        if x != y:
            break
        common += 1
    if common == len(b):
        raise ValueError(f"continuation {answer!r} adds no token to the prompt")
    return b[common:], len(a) - common


def check_placement(device_map: Any, attn_implementation: Any) -> None:
    """``model.device_map`` and ``model.attn_implementation``, checked before any work."""
    import importlib.util

    if device_map is not None:
        if not (device_map in DEVICE_MAPS or isinstance(device_map, Mapping)):
            raise ConfigError(f"model.device_map: {device_map!r} is not one of "
                              f"{', '.join(DEVICE_MAPS)} or a module-to-device mapping")
        if importlib.util.find_spec("accelerate") is None:
            raise ConfigError("model.device_map needs accelerate: pip install accelerate")
    if attn_implementation is not None:
        if attn_implementation not in ATTENTION:
            raise ConfigError(f"model.attn_implementation: {attn_implementation!r} is not one of "
                              f"{', '.join(ATTENTION)}")
        package = {"flash_attention_2": "flash_attn", "flash_attention_3": "flash_attn_3"}.get(
            attn_implementation)
        if package and importlib.util.find_spec(package) is None:
            raise ConfigError(f"model.attn_implementation={attn_implementation} needs the "
                              f"{package} package (a CUDA build): pip install {package.replace('_', '-')}")


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is the accelerator running out of memory."""
    import torch

    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err).lower()


def release_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def left_aligned(inputs: dict[str, Any]) -> dict[str, Any]:
    """The processor's per-token tensors with all padding moved to the left. BLIP-2 and
    InstructBLIP processors pad the text *after* prepending their image tokens, leaving padding
    between image and text; with position ids counted over the whole row, a request's answer
    would then depend on its batch neighbours. A stable sort keeps every row's token order."""
    import torch

    mask = inputs.get("attention_mask")
    if not isinstance(mask, torch.Tensor) or mask.dim() != 2:
        return inputs
    ones = mask.bool()
    inner = ones[:, :-1] & ~ones[:, 1:]  # an attended token followed by padding
    if not bool(inner.any()):
        return inputs
    order = torch.argsort(ones.to(torch.int8), dim=1, stable=True)
    out = dict(inputs)
    for name, tensor in inputs.items():
        if isinstance(tensor, torch.Tensor) and tensor.dim() >= 2 and \
                tensor.shape[:2] == mask.shape:
            index = order.view(*order.shape, *([1] * (tensor.dim() - 2))).expand_as(tensor)
            out[name] = torch.gather(tensor, 1, index)
    return out


class HFAdapter(WhiteBoxAdapter):
    """A Hugging Face vision-language model answering whole lists of requests in batches.

    Construction is cheap (nothing is read); the model loads on first use or :meth:`load`.
    """

    capabilities = frozenset({Capability.GENERATE, Capability.NEXT_TOKEN_SCORES,
                              Capability.LOGLIKELIHOOD})
    spellings = frozenset({"variants", "encoded"})

    def __init__(self, model_id: str | Path, revision: str | None = None, dtype: str = "auto",
                 device: str = "auto", batch_size: int = 8, local_files_only: bool = False,
                 trust_remote_code: bool = False, family: str | None = None,
                 processor_kwargs: Mapping[str, Any] | None = None, name: str | None = None,
                 max_images: int | None = None, score_with: str = "auto",
                 device_map: str | None = None, attn_implementation: str | None = None,
                 image_prefix_mb: int = 512, image_features_mb: int = 1024) -> None:
        model_id = str(model_id) if isinstance(model_id, Path) else model_id
        if not model_id or not isinstance(model_id, str):
            raise ConfigError("model.model_id: a hub id or local path is required")
        if dtype not in DTYPES:
            raise ConfigError(f"model.dtype: {dtype!r} is not one of {', '.join(DTYPES)}")
        if not (device in DEVICES or str(device).startswith("cuda:")):
            raise ConfigError(f"model.device: {device!r} is not one of {', '.join(DEVICES)}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"model.batch_size: must be a positive integer, got {batch_size!r}")
        if score_with not in SCORE_PATHS:
            raise ConfigError(f"model.score_with: {score_with!r} is not one of "
                              f"{', '.join(SCORE_PATHS)}")
        if family is not None and family not in known_family_names():
            raise ConfigError(f"model.family: unknown family {family!r} "
                              f"(known: {', '.join(known_family_names())})")
        check_placement(device_map, attn_implementation)
        for key, value in (("image_prefix_mb", image_prefix_mb),
                           ("image_features_mb", image_features_mb)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"model.{key}: must be a whole number of MiB (0: off), "
                                  f"got {value!r}")
        # reuse across conditions: image-bearing prompt prefixes' KV (prefix_kv.py) and the
        # vision tower's output per pixel digest (image_features.py)
        self._prefixes = PrefixStore(image_prefix_mb << 20) if image_prefix_mb else None
        self._features = FeatureStore(image_features_mb << 20) if image_features_mb else None
        self.device_map = device_map
        self.attn_implementation = attn_implementation
        self.peak_memory_bytes = 0  # the most GPU memory one batch took (CUDA only)
        self.oom_splits = 0  # batches halved after running out of GPU memory
        self.load_s = 0.0  # seconds this adapter spent loading the model (0: already loaded)
        self._model_id = model_id
        self.revision = revision
        self.dtype = dtype
        self.device = str(device)
        self.batch_size = batch_size
        self.local_files_only = strict_bool("model.local_files_only", local_files_only)
        self.trust_remote_code = strict_bool("model.trust_remote_code", trust_remote_code)

        self.family = family
        self.processor_kwargs = dict(processor_kwargs or {})
        self.name = name or model_id
        self.max_images = max_images
        self.score_with = score_with
        self._loaded: LoadedModel | None = None
        self._fingerprint: str | None = None
        self._config_family: str | None = None
        if self.trust_remote_code and not (is_commit(revision) or self.local_dir() is not None):
            raise ConfigError(f"model.revision: model {model_id} runs its repository's own code "
                              "(trust_remote_code), so pin the commit you reviewed: "
                              f"model.revision=<40-hex commit>, not {revision!r}")

    # -- identity and loading

    @property
    def model_id(self) -> str:
        return self._model_id

    def local_dir(self) -> Path | None:
        """The checkpoint folder when ``model_id`` is a local path: as given (``~`` expanded,
        relative to the working directory), else relative to the project root (so configs can
        name checkpoints shipped inside the package); ``None`` for hub ids."""
        path = Path(self._model_id).expanduser()
        if path.is_dir():
            return path.resolve()
        if not path.is_absolute():
            packaged = Path(__file__).resolve().parents[2] / path
            if packaged.is_dir():
                return packaged
        return None

    @property
    def source(self) -> str:
        """What ``from_pretrained`` reads: an absolute local folder, or the hub id."""
        local = self.local_dir()
        return str(local) if local is not None else self._model_id

    def load_key(self) -> tuple:
        return (self.source, self.revision, self.dtype, resolve_device(self.device),
                self.trust_remote_code, self.family, str(self.device_map),
                self.attn_implementation,
                tuple(sorted((k, repr(v)) for k, v in self.processor_kwargs.items())))

    def identity(self) -> dict[str, Any]:
        """What can change an answer. The device type and the dtype it resolves to are part of
        it (``dtype: auto`` is float32 on a CPU and bfloat16 on most GPUs), so answers computed
        on one are never served to the other; an unavailable device is refused here, before
        any work, even when every answer is cached."""
        device = resolve_device(self.device)
        resolved = self.dtype if self.dtype != "auto" else \
            str(resolve_dtype(self.dtype, device)).removeprefix("torch.")
        ident: dict[str, Any] = {"provider": "huggingface", "model_id": self._model_id,
                                 "revision": self.revision, "dtype": resolved,
                                 "device_type": device.split(":", 1)[0],
                                 "family": self.family or "auto"}
        if self.processor_kwargs:
            ident["processor_kwargs"] = dict(sorted(self.processor_kwargs.items()))
        if self.attn_implementation:  # kernels round differently; answers may differ slightly
            ident["attn_implementation"] = self.attn_implementation
        if self.local_dir() is not None:
            ident["weights"] = self.weights_fingerprint()
        return ident

    def weights_fingerprint(self) -> str:
        """A content hash of a local checkpoint folder, so retrained weights never hit the cache
        of old ones (files over 64 MiB contribute their size and first and last MiB)."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            root = self.local_dir()
            if root is None:
                raise ConfigError(f"model {self._model_id}: not a local folder")
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                h.update(str(path.relative_to(root)).encode())
                size = path.stat().st_size
                h.update(str(size).encode())
                with path.open("rb") as fh:
                    if size <= 64 << 20:
                        h.update(fh.read())
                    else:
                        h.update(fh.read(1 << 20))
                        fh.seek(size - (1 << 20))
                        h.update(fh.read())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def load(self) -> LoadedModel:
        """Load the model now (once per process and load key) and return it."""
        if self._loaded is None:
            key = self.load_key()
            with _REGISTRY_LOCK:
                loaded = _REGISTRY.get(key)
                if loaded is None:
                    started = time.perf_counter()
                    loaded = _load(self)
                    self.load_s = time.perf_counter() - started
                    _REGISTRY[key] = loaded
            self._loaded = loaded
        return self._loaded

    @property
    def spec(self) -> FamilySpec:
        return self.load().family

    @property
    def prompt_family(self) -> str:
        """The family name that selects per-family prompt templates; read from the checkpoint's
        config (not its weights) when not configured, so cached runs never load the model."""
        if self._loaded is not None:
            return self._loaded.family.name
        if self.family:
            return self.family
        if self._config_family is None:
            from transformers import AutoConfig

            try:
                config = AutoConfig.from_pretrained(
                    self.source, revision=self.revision, local_files_only=self.local_files_only,
                    trust_remote_code=self.trust_remote_code)
            except (OSError, ValueError) as err:
                raise ConfigError(f"model {self._model_id}: cannot read its config "
                                  f"({_one_line(err)})") from None
            self._config_family = family_for_model_type(getattr(config, "model_type", "")).name
        return self._config_family

    @property
    def plain_prompts(self) -> bool:
        """Whether the family takes the paper's plain-text wording (BLIP-2 style)."""
        return family_by_name(self.prompt_family).plain_prompts

    def _holds_reuse(self) -> bool:
        return any(store is not None and store.holds() for store in (self._prefixes,
                                                                      self._features))

    def clear_reuse(self) -> None:
        """Forget the stored prompts and vision features (a benchmark timing one pass from
        scratch; a new run starts with none)."""
        for store in (self._prefixes, self._features):
            if store is not None:
                store.clear()

    def close(self) -> None:
        self.clear_reuse()
        if self._loaded is not None:
            with _REGISTRY_LOCK:
                _REGISTRY.pop(self.load_key(), None)
            self._loaded = None

    # -- prompt rendering

    def _messages(self, prompt: Prompt, merge_system: bool = False) -> list[dict[str, Any]]:
        messages = [m.as_dict() for m in prompt.messages]
        if merge_system and messages and messages[0]["role"] == "system":
            system = ChatMessage(role="system", content=prompt.messages[0].content).text
            messages = messages[1:]
            for msg in messages:
                if msg["role"] == "user":
                    for part in msg["content"]:
                        if part.get("type") == "text":
                            part["text"] = f"{system}\n\n{part['text']}"
                            break
                    else:
                        msg["content"].append({"type": "text", "text": system})
                    break
        return messages

    def _apply_template(self, prompt: Prompt, **kwargs: Any) -> str:
        processor = self.load().processor
        try:
            return processor.apply_chat_template(self._messages(prompt), tokenize=False, **kwargs)
        except Exception as err:  # templates without a system role raise (jinja exceptions)
            if not (prompt.messages and prompt.messages[0].role == "system"):
                raise ConfigError(f"model {self._model_id}: chat template failed "
                                  f"({_one_line(err)})") from None
            return processor.apply_chat_template(self._messages(prompt, merge_system=True),
                                                 tokenize=False, **kwargs)

    def _plain_text(self, prompt: Prompt) -> str:
        """Families without a chat template: system and user texts joined by newlines, prior
        assistant turns appended after the answer joiner."""
        spec = self.spec
        parts: list[str] = []
        for msg in prompt.messages:
            if msg.role == "assistant":
                parts[-1:] = [f"{parts[-1] if parts else ''}{spec.answer_joiner}{msg.text}"]
            else:
                parts.append(msg.text)
        text = "\n".join(p for p in parts if p)
        return spec.plain_image_token * len(prompt.images) + text

    def render(self, prompt: Prompt) -> str:
        """The text handed to the processor for a prompt awaiting the assistant's answer."""
        self._check_images(prompt)
        if self.spec.chat_template:
            return self._apply_template(prompt, add_generation_prompt=True)
        return self._plain_text(prompt)

    def render_with_answer(self, prompt: Prompt, answer: str) -> tuple[str, str]:
        """Split ``prompt`` + ``answer`` (as the assistant's reply) into (prefix text, answer
        text) exactly as the template writes them; spaces at the seam go to the answer."""
        self._check_images(prompt)
        answer = answer.strip()
        if not answer:
            raise ValueError("cannot score an empty continuation")
        if self.spec.chat_template:
            turn = ChatMessage(role="assistant", content=({"type": "text", "text": answer},))
            full = self._apply_template(Prompt(messages=prompt.messages + (turn,),
                                               images=prompt.images),
                                        continue_final_message=True)
            if full.endswith(answer):
                prefix = full[: len(full) - len(answer)]
            else:  # a template that rewrites the answer: fall back to generation prompt + space
                prefix = self.render(prompt) + " "
        else:
            prefix = self._plain_text(prompt) + self.spec.answer_joiner
        stripped = prefix.rstrip(" ")
        return stripped, prefix[len(stripped):] + answer

    def _check_images(self, prompt: Prompt) -> None:
        limit = self.max_images if self.max_images is not None else self.spec.max_images
        if limit is not None and len(prompt.images) > limit:
            raise ConfigError(f"model {self._model_id} ({self.spec.name}) takes at most {limit} "
                              f"image(s) per prompt; this prompt has {len(prompt.images)} "
                              "(few-shot prompts need one per example)")

    # -- batching

    def _batches(self, n: int, group: Callable[[int], Any],
                 length: Callable[[int], int]) -> list[list[int]]:
        """Request indices sorted longest first, cut into batches of ``batch_size``; requests of
        different groups (number of images, generation settings) never share a batch."""
        order = sorted(range(n), key=lambda i: (repr(group(i)), length(i)), reverse=True)
        size = min(self.batch_size, self.spec.max_batch_size or self.batch_size)
        batches: list[list[int]] = []
        for i in order:
            if (batches and len(batches[-1]) < size
                    and group(batches[-1][0]) == group(i)):
                batches[-1].append(i)
            else:
                batches.append([i])
        return batches

    def _run_batches(self, n: int, batches: list[list[int]],
                     run: Callable[[list[int]], list[R]],
                     fail: Callable[[BaseException], R]) -> list[R]:
        """Run each batch; a batch that runs out of GPU memory is split in half (and again),
        and any other failing batch is retried one request at a time, so one bad request cannot
        sink its neighbours. Results are returned in request order."""
        results: list[R | None] = [None] * n
        for batch in batches:
            for i, out in zip(batch, self._run_one_batch(batch, run, fail)):
                results[i] = out
        return results  # type: ignore[return-value]

    def _run_one_batch(self, batch: list[int], run: Callable[[list[int]], list[R]],
                       fail: Callable[[BaseException], R]) -> list[R]:
        try:
            return self._measured(run, batch)
        except ConfigError:
            raise
        except Exception as err:  # noqa: BLE001 - recorded per request, never silent
            if is_out_of_memory(err) and len(batch) > 1:
                self.oom_splits += 1
                half = len(batch) // 2
                log.warning("a batch of %d ran out of GPU memory; retrying as %d + %d%s",
                            len(batch), half, len(batch) - half,
                            " without the stored prompts and features" if self._holds_reuse()
                            else "")
                self.clear_reuse()  # memory first for answering; reuse is only a saving
                release_memory()
                return (self._run_one_batch(batch[:half], run, fail)
                        + self._run_one_batch(batch[half:], run, fail))
            if len(batch) == 1:
                log.warning("request failed: %s", _one_line(err))
                return [fail(err)]
            outs: list[R] = []
            for i in batch:
                try:
                    outs.extend(self._measured(run, [i]))
                except ConfigError:
                    raise
                except Exception as single_err:  # noqa: BLE001
                    log.warning("request failed: %s", _one_line(single_err))
                    outs.append(fail(single_err))
            return outs

    def _measured(self, run: Callable[[list[int]], list[R]], batch: list[int]) -> list[R]:
        """``run(batch)``, recording the batch's peak GPU memory (on CUDA)."""
        import torch

        cuda = torch.cuda.is_available() and self._loaded is not None and \
            self._loaded.device.type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats(self._loaded.device)
        outs = run(batch)
        if cuda:
            peak = torch.cuda.max_memory_allocated(self._loaded.device)
            self.peak_memory_bytes = max(self.peak_memory_bytes, peak)
            log.debug("batch of %d: peak GPU memory %.0f MiB", len(batch), peak / 2 ** 20)
        return outs

    def stats(self) -> dict[str, Any] | None:
        """Resolved dtype and placement, the peak GPU memory of a batch and OOM splits."""
        if self._loaded is None:
            return None
        model = self._loaded.model
        out: dict[str, Any] = {"dtype": str(model.dtype).removeprefix("torch."),
                               "device": str(self._loaded.device),
                               "attn_implementation": getattr(model.config,
                                                              "_attn_implementation", None)}
        if self.device_map is not None:  # where the parameters ended up
            out["device_map"] = sorted({str(p.device) for p in model.parameters()})
        if self._loaded.device.type == "cuda":
            out["peak_gpu_memory_mib"] = round(self.peak_memory_bytes / 2 ** 20, 1)
        out["oom_splits"] = self.oom_splits
        out["load_s"] = round(self.load_s, 2)
        if self._prefixes is not None and self._loaded.family.image_prefix_reuse:
            out["image_prefixes"] = self._prefixes.stats()
        if self._features is not None and self._loaded.family.image_features_reuse:
            out["image_features"] = self._features.stats()
        return out

    def _with_features(self, inputs: dict[str, Any],
                       images: Sequence[tuple[Any, ...]]) -> dict[str, Any]:
        """``inputs`` with stored vision features in place of pixels where the family takes
        them (run under ``inference_mode``: unseen images go through the vision tower)."""
        loaded = self.load()
        if self._features is None or not loaded.family.image_features_reuse or \
                "pixel_values" not in inputs or "mm_encoder_outputs" not in loaded.forward_params:
            return inputs  # (transformers releases before mm_encoder_outputs take pixels only)
        return self._features.inject(loaded.model, inputs,
                                     [img.digest for imgs in images for img in imgs])

    def _prefix_slots(self, inputs: dict[str, Any],
                      images: Sequence[tuple[Any, ...]]) -> list[PrefixSlot] | None:
        """Where each row's image prefix ends, when this batch may reuse or record prefixes:
        the store is on, the family is verified for it and every request shows an image."""
        loaded = self.load()
        if self._prefixes is None or not loaded.family.image_prefix_reuse or \
                not all(images):
            return None
        return prefix_slots(inputs["input_ids"], inputs["attention_mask"],
                            loaded.model.config.image_token_id,
                            [[img.digest for img in imgs] for imgs in images])

    @staticmethod
    def _positions(mask: Any) -> Any:
        """Position ids counted over attended tokens (each row's first token at 0)."""
        return (mask.long().cumsum(-1) - 1).clamp(min=0)

    def encode(self, texts: list[str], images: list[tuple[Any, ...]]) -> dict[str, Any]:
        """Model inputs for prompt ``texts`` (from :meth:`render`) and their images: the
        processor's output, left-padded, on the model's device and dtype (also for explainers
        that need the model's own inputs)."""
        loaded = self.load()
        pil = [[img.pil("RGB") for img in imgs] for imgs in images]
        if loaded.family.encode is not None:
            return self._to_device(loaded.family.encode(loaded.processor, texts, pil))
        kwargs: dict[str, Any] = {"text": texts, "return_tensors": "pt", "padding": True}
        if not any(pil):
            inputs = loaded.processor(**kwargs)
        elif self._features is not None and loaded.family.image_features_reuse:
            with self._features.processing(loaded.processor,
                                           [img.digest for imgs in images for img in imgs]):
                inputs = loaded.processor(**kwargs, images=pil)
        else:
            inputs = loaded.processor(**kwargs, images=pil)
        return self._to_device(left_aligned(dict(inputs)))

    def _to_device(self, inputs: dict[str, Any]) -> dict[str, Any]:
        import torch

        loaded = self.load()
        dtype = loaded.model.dtype
        out: dict[str, Any] = {}
        for k, v in inputs.items():
            if k == "labels" or not isinstance(v, torch.Tensor):
                continue
            v = v.to(loaded.device)
            if v.is_floating_point():
                v = v.to(dtype)
            out[k] = v
        return {k: v for k, v in out.items() if k in loaded.forward_params or k == "attention_mask"}

    # -- generate

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        if not requests:
            return []
        texts = [self.render(r.prompt) for r in requests]
        # requests share a generate call only with identical settings
        batches = self._batches(len(requests),
                                lambda i: (len(requests[i].prompt.images),
                                           sorted(requests[i].settings.as_dict().items())),
                                lambda i: len(texts[i]))
        return self._run_batches(
            len(requests), batches,
            lambda b: self._generate_batch([requests[i] for i in b], [texts[i] for i in b]),
            lambda err: GenerateResult(text=None, error="model_error", error_detail=_one_line(err)))

    def _generate_batch(self, requests: list[GenerateRequest],
                        texts: list[str]) -> list[GenerateResult]:
        import torch

        loaded = self.load()
        settings = requests[0].settings
        start = time.perf_counter()
        images = [r.prompt.images for r in requests]
        inputs = self.encode(texts, images)
        config = self._generation_config(settings)
        slots = None if loaded.family.generate is not None else \
            self._prefix_slots(inputs, images)
        if settings.temperature > 0:
            torch.manual_seed(settings.seed)
        prompt, mask = inputs["input_ids"], inputs["attention_mask"]
        with torch.inference_mode():
            if loaded.family.generate is not None:
                out = loaded.family.generate(loaded.model, inputs, config, loaded.tokenizer)
            elif slots is None:
                out = loaded.model.generate(**self._with_features(inputs, images),
                                            generation_config=config)
            elif self._prefixes.covers(slots):
                cont = continue_after(self._prefixes, slots, inputs, loaded.tokenizer.pad_token_id)
                prompt, mask = cont.input_ids, cont.attention_mask
                out = loaded.model.generate(input_ids=prompt, attention_mask=mask,
                                            position_ids=cont.position_ids,
                                            generation_config=config, **cont.extra,
                                            **{self._cache_kwarg(): cont.cache})
            else:  # positions from the mask: every row's first token at 0
                config.return_dict_in_generate = True  # (a copy) to keep the prompts' cache
                result = loaded.model.generate(**self._with_features(inputs, images),
                                               generation_config=config)
                self._prefixes.record(self._cache_of(result), slots, inputs["input_ids"])
                out = result.sequences
        # decoder-only models return prompt + answer; some (encoder-decoder) the answer only
        echoed = out.shape[1] > prompt.shape[1] and torch.equal(out[:, : prompt.shape[1]], prompt)
        new = out[:, prompt.shape[1]:] if echoed else out
        stop_ids = self._stop_ids(config)
        elapsed = (time.perf_counter() - start) / len(requests)
        results = []
        for row, attended in zip(new.tolist(), mask):
            stop_at = next((k for k, t in enumerate(row) if t in stop_ids), None)
            n_out = len(row) if stop_at is None else stop_at + 1
            finish = "length" if stop_at is None else "stop"
            text = loaded.tokenizer.decode(row[:n_out], skip_special_tokens=True).strip()
            results.append(GenerateResult(text=text, latency_s=elapsed, finish_reason=finish,
                                          usage=Usage(int(attended.sum()), n_out)))
        return results

    def _generation_config(self, settings: GenerationSettings) -> Any:
        import copy

        loaded = self.load()
        config = copy.deepcopy(loaded.model.generation_config)
        sample = settings.temperature > 0
        config.do_sample = sample
        config.max_new_tokens = settings.max_new_tokens
        config.num_beams = settings.num_beams
        config.temperature = settings.temperature if sample else None
        config.top_p = settings.top_p if sample else None
        config.top_k = None
        if config.pad_token_id is None:
            config.pad_token_id = loaded.tokenizer.pad_token_id
        if config.eos_token_id is None:
            config.eos_token_id = loaded.tokenizer.eos_token_id
        return config

    @staticmethod
    def _stop_ids(config: Any) -> set[int]:
        eos = config.eos_token_id
        ids = set(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
        if config.pad_token_id is not None:
            ids.add(config.pad_token_id)
        return ids

    # -- next-token scores

    def candidate_token_ids(self, candidate: str, spelling: str = "variants") -> tuple[int, ...]:
        """Distinct single-token spellings of ``candidate`` (``A``, `` A``, ``▁A``, ``ĠA``);
        the first token of its encoding when none exists. Cached per loaded model.
        ``spelling="encoded"``: only the first token of ``tokenizer.encode(candidate)``, as the
        official GD code reads its letter."""
        loaded = self.load()
        if spelling == "encoded":
            enc = loaded.tokenizer.encode(candidate, add_special_tokens=False)
            if not enc:
                raise ValueError(f"candidate {candidate!r} encodes to no token")
            return (enc[0],)
        if candidate in loaded.variant_ids:
            return loaded.variant_ids[candidate]
        tok = loaded.tokenizer
        ids: list[int] = []
        for text in (candidate, " " + candidate):
            enc = tok.encode(text, add_special_tokens=False)
            if len(enc) == 1:
                ids.append(enc[0])
            elif len(enc) == 2 and tok.convert_ids_to_tokens(enc[0]) in SPACE_MARKERS:
                pass  # a lone space marker then the letter: the letter token is covered below
        vocab = tok.get_vocab()
        for spelling in (candidate, *(m + candidate for m in SPACE_MARKERS)):
            if spelling in vocab:
                ids.append(vocab[spelling])
        unk = tok.unk_token_id
        ids = [i for i in dict.fromkeys(ids) if i != unk]
        if not ids:
            enc = tok.encode(candidate, add_special_tokens=False)
            if not enc:
                raise ValueError(f"candidate {candidate!r} encodes to no token")
            ids = [enc[0]]
        loaded.variant_ids[candidate] = tuple(ids)
        return loaded.variant_ids[candidate]

    def next_token_scores(self, requests: Sequence[NextTokenRequest]) -> list[NextTokenResult]:
        if not requests:
            return []
        texts = [self.render(r.prompt) for r in requests]
        batches = self._batches(len(requests), lambda i: len(requests[i].prompt.images),
                                lambda i: len(texts[i]))
        return self._run_batches(
            len(requests), batches,
            lambda b: self._next_token_batch([requests[i] for i in b], [texts[i] for i in b]),
            lambda err: NextTokenResult(logprobs={}, error="model_error",
                                        error_detail=_one_line(err)))

    @staticmethod
    def _cache_of(out: Any) -> Any:
        """The KV cache a forward pass or ``generate`` returned (``past_key_values`` in
        transformers releases before it was renamed ``cache``)."""
        return getattr(out, "cache", None) or getattr(out, "past_key_values")

    def _cache_kwarg(self) -> str:
        """The name the loaded model's forward takes a KV cache by."""
        return "cache" if "cache" in self.load().forward_params else "past_key_values"

    def _forward(self, inputs: dict[str, Any], **kwargs: Any) -> Any:
        loaded = self.load()
        if "logits_to_keep" in kwargs and "logits_to_keep" not in loaded.forward_params:
            kwargs.pop("logits_to_keep")
        if "past_key_values" in kwargs:
            kwargs[self._cache_kwarg()] = kwargs.pop("past_key_values")
        return loaded.model(**inputs, **kwargs)

    def _next_token_batch(self, requests: list[NextTokenRequest],
                          texts: list[str]) -> list[NextTokenResult]:
        import torch

        start = time.perf_counter()
        images = [r.prompt.images for r in requests]
        inputs = self.encode(texts, images)
        slots = self._prefix_slots(inputs, images)
        with torch.inference_mode():
            if slots is None:
                out = self._forward(self._with_features(inputs, images), use_cache=False,
                                    logits_to_keep=1)
            elif self._prefixes.covers(slots):
                cont = continue_after(self._prefixes, slots, inputs,
                                      self.load().tokenizer.pad_token_id)
                tail = {"input_ids": cont.input_ids[:, cont.width:],
                        **{k: v[:, cont.width:] for k, v in cont.extra.items()}}
                out = self._forward(tail, attention_mask=cont.attention_mask,
                                    position_ids=cont.position_ids[:, cont.width:],
                                    past_key_values=cont.cache, use_cache=True,
                                    logits_to_keep=1)
            else:
                out = self._forward(self._with_features(inputs, images),
                                    position_ids=self._positions(inputs["attention_mask"]),
                                    use_cache=True, logits_to_keep=1)
                self._prefixes.record(self._cache_of(out), slots, inputs["input_ids"])
        logprobs = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)
        elapsed = (time.perf_counter() - start) / len(requests)
        results = []
        for row, req, mask in zip(logprobs, requests, inputs["attention_mask"]):
            scores = {c: float(torch.logsumexp(row[list(self.candidate_token_ids(c,
                                                                                    req.spelling))],
                                               dim=0))
                      for c in req.candidates}
            results.append(NextTokenResult(logprobs=scores, latency_s=elapsed,
                                           usage=Usage(int(mask.sum()), 0)))
        return results

    # -- log-likelihood

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        if not requests:
            return []
        plans: list[_ScorePlan | None] = []
        failed: dict[int, LoglikelihoodResult] = {}
        for i, request in enumerate(requests):
            try:
                plans.append(self._plan(request))
            except ValueError as err:  # e.g. an empty option text: this request only
                plans.append(None)
                failed[i] = LoglikelihoodResult(scores=[], error="bad_request",
                                                error_detail=_one_line(err))
        todo = [i for i in range(len(requests)) if i not in failed]
        batches = self._batches(len(todo), lambda k: len(requests[todo[k]].prompt.images),
                                lambda k: len(plans[todo[k]].prefix))  # type: ignore[union-attr]
        done = self._run_batches(
            len(todo), batches,
            lambda b: self._loglikelihood_batch([requests[todo[k]] for k in b],
                                                [plans[todo[k]] for k in b]),  # type: ignore[misc]
            lambda err: LoglikelihoodResult(scores=[], error="model_error",
                                            error_detail=_one_line(err)))
        results = dict(zip(todo, done))
        return [failed.get(i) or results[i] for i in range(len(requests))]

    def _plan(self, request: LoglikelihoodRequest) -> "_ScorePlan":
        """Render and tokenise one request: the shared prompt text, and per option the answer's
        token ids plus how many trailing prompt tokens merge into the answer (usually 0)."""
        tok = self.load().tokenizer
        suffix = self.spec.processor_text_suffix
        prefixes, cont_ids, trims = [], [], []
        for cont in request.continuations:
            prefix, answer = self.render_with_answer(request.prompt, cont)
            ids, trim = split_continuation(tok, prefix + suffix, answer)
            prefixes.append(prefix)
            cont_ids.append(ids)
            trims.append(trim)
        shared = len(set(prefixes)) == 1 and not any(trims)
        return _ScorePlan(prefix=prefixes[0], prefixes=prefixes, cont_ids=cont_ids, trims=trims,
                          shared=shared)

    def _loglikelihood_batch(self, requests: list[LoglikelihoodRequest],
                             plans: list["_ScorePlan"]) -> list[LoglikelihoodResult]:
        start = time.perf_counter()
        if self.score_with == "prefix_cache" and self.spec.prefix_cache_unsupported:
            raise ConfigError(f"model {self._model_id}: score_with=prefix_cache: the "
                              f"{self.spec.name} family cannot: "
                              f"{self.spec.prefix_cache_unsupported}")
        use_cache = (self.score_with == "prefix_cache"
                     or (self.score_with == "auto" and self.spec.prefix_cache))
        if use_cache and all(p.shared for p in plans):
            per_request = self._score_from_cache(requests, plans)
        else:
            per_request = self._score_sequences(requests, plans)
        elapsed = (time.perf_counter() - start) / len(requests)
        results = []
        for req, (logprobs, n_prompt) in zip(requests, per_request):
            scores = [ContinuationScore(logprob=lp, n_tokens=n, n_chars=len(c))
                      for (lp, n), c in zip(logprobs, req.continuations)]
            n_cont = sum(s.n_tokens for s in scores)
            results.append(LoglikelihoodResult(scores=scores, latency_s=elapsed,
                                               usage=Usage(n_prompt + n_cont, 0)))
        return results

    def _score_from_cache(self, requests: list[LoglikelihoodRequest],
                          plans: list["_ScorePlan"]) -> list[tuple[list[tuple[float, int]], int]]:
        """One prompt pass per question (left-padded, with images), then every option's tokens
        fed from a copy of that question's KV cache (right-padded)."""
        import torch

        loaded = self.load()
        images = [r.prompt.images for r in requests]
        inputs = self.encode([p.prefix for p in plans], images)
        with torch.inference_mode():
            out = self._forward(self._with_features(inputs, images), use_cache=True,
                                logits_to_keep=1)
            first = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)  # [B, V]
            cache = self._cache_of(out)
            rows = [(q, j) for q, p in enumerate(plans) for j in range(len(p.cont_ids))]
            index = torch.tensor([q for q, _ in rows], device=loaded.device)
            cache.reorder_cache(index)
            conts = [plans[q].cont_ids[j] for q, j in rows]
            width = max(len(c) for c in conts)
            pad = loaded.tokenizer.pad_token_id
            ids = torch.full((len(rows), width), pad, dtype=torch.long, device=loaded.device)
            cmask = torch.zeros((len(rows), width), dtype=torch.long, device=loaded.device)
            for r, c in enumerate(conts):
                ids[r, : len(c)] = torch.tensor(c, device=loaded.device)
                cmask[r, : len(c)] = 1
            prefix_mask = inputs["attention_mask"][index]
            kwargs: dict[str, Any] = {"attention_mask": torch.cat([prefix_mask, cmask], dim=1)}
            hook = self.spec.continuation_positions
            if hook is not None:
                kwargs["position_ids"] = hook(loaded.model, prefix_mask, index, width)
            later = self._forward({"input_ids": ids}, past_key_values=cache, use_cache=True,
                                  **kwargs)
            later_lp = torch.log_softmax(later.logits.float(), dim=-1)  # [R, W, V]
        sums: list[list[tuple[float, int]]] = [[] for _ in plans]
        for r, ((q, _), c) in enumerate(zip(rows, conts)):
            total = first[q, c[0]]
            if len(c) > 1:
                targets = torch.tensor(c[1:], device=loaded.device)[:, None]
                steps = later_lp[r, : len(c) - 1].gather(-1, targets)
                total = total + steps.sum()
            sums[q].append((float(total), len(c)))
        n_prompt = inputs["attention_mask"].sum(-1).tolist()
        return [(s, int(n)) for s, n in zip(sums, n_prompt)]

    def _score_sequences(self, requests: list[LoglikelihoodRequest],
                         plans: list["_ScorePlan"]) -> list[tuple[list[tuple[float, int]], int]]:
        """Every option as a whole sequence (prompt + answer), all in one forward pass."""
        import torch

        loaded = self.load()
        rows = [(q, j) for q, p in enumerate(plans) for j in range(len(p.cont_ids))]
        images = [requests[q].prompt.images for q, _ in rows]
        inputs = self.encode([plans[q].prefixes[j] for q, j in rows], images)
        mask = inputs["attention_mask"]
        new_rows: list[dict[str, Any]] = []
        for r, (q, j) in enumerate(rows):
            # the attended positions, wherever the padding is (BLIP-2's processor pads between
            # its image tokens and the text)
            attended = mask[r].nonzero().squeeze(-1)
            keep = int(attended.shape[0]) - plans[q].trims[j]
            cont = torch.tensor(plans[q].cont_ids[j], device=loaded.device)
            row: dict[str, Any] = {}
            for name, tensor in inputs.items():
                if tensor.dim() < 2 or tensor.shape[:2] != mask.shape:
                    continue
                body = tensor[r, attended[:keep]]
                row[name] = torch.cat([body, self._continuation_values(name, body, cont)])
            new_rows.append(row)
        width = max(int(row["input_ids"].shape[0]) for row in new_rows)
        merged = dict(inputs)
        pad = loaded.tokenizer.pad_token_id
        for name in new_rows[0]:
            parts = []
            for row in new_rows:
                t = row[name]
                fill = pad if name == "input_ids" else 0
                padding = torch.full((width - t.shape[0], *t.shape[1:]), fill, dtype=t.dtype,
                                     device=t.device)
                parts.append(torch.cat([padding, t]))
            merged[name] = torch.stack(parts)
        keep = max(len(c) for p in plans for c in p.cont_ids) + 1  # logits of the answers only
        with torch.inference_mode():
            out = self._forward(self._with_features(merged, images), use_cache=False,
                                logits_to_keep=keep)
            logprobs = torch.log_softmax(out.logits[:, -keep:].float(), dim=-1)
        sums: list[list[tuple[float, int]]] = [[] for _ in plans]
        for r, (q, j) in enumerate(rows):
            c = plans[q].cont_ids[j]
            n = len(c)
            targets = torch.tensor(c, device=loaded.device)[:, None]
            steps = logprobs[r, keep - n - 1: keep - 1].gather(-1, targets)
            sums[q].append((float(steps.sum()), n))
        first_row = {q: r for r, (q, _) in reversed(list(enumerate(rows)))}
        n_prompt = [int(mask[first_row[q]].sum()) for q in range(len(plans))]
        return list(zip(sums, n_prompt))

    def _continuation_values(self, name: str, body: Any, cont: Any) -> Any:
        """Values of a per-token input for appended answer tokens."""
        import torch

        n = cont.shape[0]
        if name == "input_ids":
            return cont.to(body.dtype)
        if name == "attention_mask":
            return torch.ones(n, dtype=body.dtype, device=body.device)
        if name == "token_type_ids":
            return torch.full((n,), self.spec.continuation_token_type, dtype=body.dtype,
                              device=body.device)
        if name == "cross_attention_mask":  # answer tokens see the images the prompt's end sees
            return body[-1:].expand(n, *body.shape[1:]).clone()
        return torch.zeros((n, *body.shape[1:]), dtype=body.dtype, device=body.device)


@dataclass
class _ScorePlan:
    prefix: str
    prefixes: list[str]
    cont_ids: list[list[int]]
    trims: list[int]
    shared: bool

