"""Two-stage training of the reference model, LLaVA-style.

Stage 1 teaches the vision tower (and projector) to see the findings: a head over the patch
features picks each image's answer among its pair's two options, a per-patch head says where
which finding is (from the ground-truth masks), and the CLS token's feature is aligned with the
mean word embedding of the right option's text (CLIP-style, in the decoder's own embedding
table). Stage 2 freezes the tower and trains the projector and decoder on the answer formats of
every mode (letters, option texts, finding sentences), rendered by the real modes; in letter
prompts, auxiliary heads at the options' tokens learn which option is right and which is A/B.

Measured reasons: end to end from scratch, a tiny LLaVA did not learn a left/right question in
3,000 steps; after stage 1 it learned it in about 200. Without the alignment and the option-level
signals the decoder learned option likelihoods (PS) but answered letters at chance (always A)
for 500+ steps; with them, letters start to follow the image within ~300 steps.

Training state is saved every ``save_every`` steps next to the output folder, so an interrupted
run continues where it stopped when started again with the same settings.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch
from torch import nn

from robustness.data.types import OPTION_LABELS
from robustness.modes.base import AnsweringMode
from robustness.reference.augment import Augment
from robustness.reference.data import pair_kind
from robustness.reference.encoding import (
    IGNORE_INDEX,
    Encoded,
    ExampleEncoder,
    ImageCache,
    collate,
)
from robustness.reference.examples import (
    SYSTEM_PROMPTS,
    Example,
    PairImage,
    QuerySampler,
    build_examples,
    build_group_examples,
    letter_modes,
)


@dataclass(frozen=True)
class StageOne:
    """Vision pre-training on finding labels (stage 1)."""

    steps: int = 2200
    lr: float = 2e-3
    batch_size: int = 64  # images; batches hold both images of each pair
    dense_weight: float = 2.0  # weight of the per-patch finding loss beside the answer loss
    align_weight: float = 1.0  # weight of the CLS-to-option-words alignment loss
    head_dim: int = 8
    p_paraphrase: float = 0.3  # share of alignment targets worded with the AI paraphrase
    pooled: bool = True  # add a position-invariant (pooled per-patch) term to the answer head
    position_weight: float = 0.5  # weight of "which row and column am I" per patch feature
    # how often pairs are drawn, per finding family or phantom kind (default 1): more batches
    # for the thin findings the tower finds hardest
    oversample: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        bad = {k: v for k, v in (self.oversample or {}).items() if not float(v) > 0}
        if bad:
            raise ValueError(f"stage1.oversample: weights must be positive, got {bad}")

    def pair_weight(self, item: PairImage) -> float:
        """Sampling weight of ``item``'s pair: its kind's, else its family's, else 1."""
        weights = self.oversample or {}
        return float(weights.get(pair_kind(item.pair), weights.get(item.family, 1.0)))


@dataclass(frozen=True)
class StageTwo:
    """End-to-end training on every answer format (stage 2)."""

    steps: int = 650
    lr: float = 2e-3
    vision_lr: float = 3e-4  # used only when the tower is not frozen
    batch_size: int = 24  # examples: both images of batch_size / 2 pairs (x2 in both_orders)
    warmup_steps: int = 50
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    token_budget: int = 4096  # padded tokens per forward pass (gradients accumulate over passes)
    freeze_vision: bool = True  # keep stage 1's vision tower; its outputs are computed once
    aux_weight: float = 1.0  # weight of the option-level auxiliary losses in letter prompts
    aux_layer: int = 2  # decoder layer whose output states say which option is right
    feature_dropout: float = 0.1  # dropout on the cached vision features (against memorising)
    feature_views: int = 1  # cached tower outputs per image: the image plus augmented views
    # extra loss on FF's decisive token (where the statement leaves the other finding's): a
    # sentence's mean token loss gives the one token that needs the image a tenth of its weight
    decisive_weight: float = 0.0

    def __post_init__(self) -> None:
        if not self.decisive_weight >= 0:
            raise ValueError(f"stage2.decisive_weight: must be 0 or more, got "
                             f"{self.decisive_weight}")


@dataclass(frozen=True)
class TrainSettings:
    """Everything that changes the trained weights (hashed to match a resumable state)."""

    seed: int = 0
    threads: int = 2
    stage1: StageOne = field(default_factory=StageOne)
    stage2: StageTwo = field(default_factory=StageTwo)
    augment: Augment = field(default_factory=Augment)  # stage-1 batches and stage-2 views
    mode_weights: Mapping[str, float] = field(
        default_factory=lambda: {"mc": 0.3, "gd": 0.2, "ps": 0.25, "ff": 0.25})
    strategy_weights: Mapping[str, float] = field(
        default_factory=lambda: {"direct": 0.6, "cot": 0.1, "few_shot": 0.1, "persona": 0.2})
    system_prompts: tuple[str, ...] = SYSTEM_PROMPTS
    p_correct_first: float = 0.5  # share of answers shown at option A (0.5: no position signal)
    p_paraphrase: float = 0.15  # share of queries worded with the pair's AI paraphrase
    max_shots: int = 2  # few-shot prompts carry 1..max_shots worked examples
    both_orders: bool = False  # letter questions (MC, GD) asked in both option orders per step
    eval_every: int = 100
    save_every: int = 200

    def __post_init__(self) -> None:
        if not any(w > 0 for w in self.mode_weights.values()):
            raise ValueError("mode_weights needs at least one positive weight")
        if self.both_orders and self.p_correct_first != 0.5:
            raise ValueError(f"mix.both_orders shows every letter question in both orders, "
                             f"which cancels bias={self.p_correct_first}; turn one off")

    def fingerprint(self) -> str:
        payload = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass
class TrainLog:
    """What happened during training (for the model card)."""

    stage1_accuracy: float = float("nan")
    stage2_loss: float = float("nan")
    heldout_letter_accuracy: float = float("nan")
    stage1_seconds: float = 0.0
    stage2_seconds: float = 0.0
    steps_done: int = 0
    resumed_from: int = 0
    history: list[dict] = field(default_factory=list)


class VisionTargets:
    """Stage-1 labels: each image's answer class among its pair's two, and per patch the finding
    it shows (from the ground-truth mask; 0 = no finding there or the finding is absent)."""

    def __init__(self, items: Sequence[PairImage], grid: int) -> None:
        self.grid = grid
        self.classes = {c: i for i, c in enumerate(sorted({c for it in items
                                                           for c in it.answer_classes}))}
        self.findings = {f: i + 1 for i, f in enumerate(sorted({it.finding for it in items
                                                                if it.finding}))}
        self._dense: dict[tuple[str, int], torch.Tensor] = {}

    def answers(self, items: Sequence[PairImage]) -> tuple[torch.Tensor, torch.Tensor]:
        """Class indices (B, 2) of options A and B, and the right one (B,)."""
        index = torch.tensor([[self.classes[c] for c in it.answer_classes] for it in items])
        target = torch.tensor([OPTION_LABELS.index(it.correct) for it in items])
        return index, target

    def dense(self, items: Sequence[PairImage]) -> torch.Tensor:
        """Finding id per patch (B, grid²)."""
        return torch.stack([self._patch_labels(it) for it in items])

    def _patch_labels(self, item: PairImage) -> torch.Tensor:
        if item.key not in self._dense:
            labels = torch.zeros(self.grid * self.grid, dtype=torch.long)
            if item.present and item.mask is not None and item.finding in self.findings:
                from PIL import Image

                import numpy as np

                with Image.open(item.mask) as img:
                    cover = img.convert("L").resize((self.grid, self.grid), Image.BOX)
                covered = torch.from_numpy(np.asarray(cover).reshape(-1) > 0.05 * 255)
                labels[covered] = self.findings[item.finding]
            self._dense[item.key] = labels
        return self._dense[item.key]


class VisionHead(nn.Module):
    """Stage-1 heads on the projected image features.

    - answer head: each patch squeezed to a few numbers, then one linear map of all of them, so
      where a finding lies counts; with ``pooled``, plus per-patch class scores pooled over the
      image (log-sum-exp), a detector that works wherever the finding is. Measured on the thin
      findings (fractures, aneurysms): the position-specific map alone memorised the training
      images (97% right) while the tower's per-patch detections generalised much better;
    - per-patch finding classifier (where is which finding);
    - alignment (``full`` strategy): the CLS token's projected feature against the mean word
      embedding of each option's text (the decoder's own embedding table), CLIP-style, so the
      decoder later finds the right option by comparing the words it reads with the image summary.
    """

    def __init__(self, hidden: int, patches: int, n_classes: int, n_findings: int,
                 dim: int = 8, pooled: bool = False) -> None:
        super().__init__()
        self.squeeze = nn.Linear(hidden, dim)
        self.answer = nn.Linear(dim * patches, n_classes)
        self.pooled = nn.Linear(hidden, n_classes) if pooled else None
        self.patch = nn.Linear(hidden, n_findings + 1)
        self.grid = math.isqrt(patches)
        self.where = nn.Linear(hidden, 2 * self.grid)  # row and column of each patch
        self.log_scale = nn.Parameter(torch.tensor(2.0))

    def forward(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        answer = self.answer(self.squeeze(patches).flatten(1))
        if self.pooled is not None:
            answer = answer + torch.logsumexp(self.pooled(patches), dim=1)
        return answer, self.patch(patches)

    def position_loss(self, patches: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of each patch feature's own row and column: keeps where a patch lies
        readable from its content, so the decoder can tell upper from lower by what it attends
        to rather than by sequence offsets, which shift with every prompt's length."""
        index = torch.arange(patches.shape[1])
        logits = self.where(patches).reshape(-1, 2, self.grid)
        targets = torch.stack([index // self.grid, index % self.grid], -1).repeat(patches.shape[0], 1)
        return nn.functional.cross_entropy(logits.reshape(-1, self.grid), targets.reshape(-1))

    def align(self, summary: torch.Tensor, options: torch.Tensor) -> torch.Tensor:
        """Scaled cosine similarity of summaries (B, H) and option embeddings (B, 2, H)."""
        summary = nn.functional.normalize(summary, dim=-1)
        options = nn.functional.normalize(options, dim=-1)
        return torch.einsum("bh,bkh->bk", summary, options) * self.log_scale.exp()


def split_features(model, features: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(CLS summary or None, patch features) of projected image features."""
    if model.config.vision_feature_select_strategy == "full":
        return features[:, 0], features[:, 1:]
    return None, features


def image_features(model, pixel_values: torch.Tensor) -> torch.Tensor:
    """Projected patch features as the decoder sees them: (images, patches, text hidden)."""
    out = model.get_image_features(pixel_values=pixel_values)
    feats = out.pooler_output if hasattr(out, "pooler_output") else out
    return torch.stack(list(feats)) if isinstance(feats, (list, tuple)) else feats


def _cosine(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _draw(rng: random.Random, pairs: Sequence[list[PairImage]], k: int,
          weights: Sequence[float] | None = None) -> list[list[PairImage]]:
    """``k`` distinct pairs, uniformly or (``weights``) by weighted sampling without
    replacement (Efraimidis & Spirakis: the k largest u^(1/w))."""
    k = min(k, len(pairs))
    if weights is None:
        return rng.sample(list(pairs), k)
    keys = [rng.random() ** (1.0 / w) for w in weights]
    return [pairs[i] for i in heapq.nlargest(k, range(len(pairs)), key=keys.__getitem__)]


def _pairs_of(items: Sequence[PairImage]) -> list[list[PairImage]]:
    grouped: dict[str, list[PairImage]] = {}
    for item in items:
        grouped.setdefault(item.pair.pair_id, []).append(item)
    return list(grouped.values())


@torch.no_grad()
def vision_accuracy(model, head: VisionHead, targets: VisionTargets, images: ImageCache,
                    items: Sequence[PairImage], batch_size: int = 64) -> float:
    """Share of held-out images whose answer head ranks the right option first."""
    right = 0
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        index, target = targets.answers(chunk)
        _, patches = split_features(model, image_features(model, images.stack([i.image for i in chunk])))
        logits, _ = head(patches)
        right += int((logits.gather(1, index).argmax(-1) == target).sum())
    return right / max(1, len(items))


class OptionEmbedder:
    """Mean input embedding of an option text's words (token ids cached per text)."""

    def __init__(self, model, text_ids: Callable[[str], list[int]]) -> None:
        self.embeddings = model.get_input_embeddings()
        self.text_ids = text_ids
        self._ids: dict[str, torch.Tensor] = {}

    def __call__(self, text: str) -> torch.Tensor:
        if text not in self._ids:
            self._ids[text] = torch.tensor(self.text_ids(text) or [0])
        return self.embeddings(self._ids[text]).mean(0)

    def pair(self, item: PairImage, rng: random.Random, p_paraphrase: float) -> torch.Tensor:
        options = item.pair.options
        fields = item.pair.mediconfusion
        ai = fields.ai_options if fields is not None else ()
        if ai and all(ai) and rng.random() < p_paraphrase:
            options = ai
        return torch.stack([self(options[0]), self(options[1])])


def train_stage_one(model, images: ImageCache, items: Sequence[PairImage], cfg: StageOne,
                    seed: int, heldout: Sequence[PairImage] = (),
                    progress: Callable | None = None,
                    text_ids: Callable[[str], list[int]] | None = None,
                    augment: Augment = Augment()) -> float:
    """Pre-train the vision tower and projector on finding labels (answer classes and masks),
    and with the ``full`` strategy align the CLS summary with the option words' embeddings.

    Batches hold both images of each pair: the two differ only at the finding, so every batch
    shows the tower exactly what to look at. Returns held-out answer accuracy (or the last
    running training accuracy when nothing is held out).
    """
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    grid = model.config.vision_config.image_size // model.config.vision_config.patch_size
    targets = VisionTargets(list(items) + list(heldout), grid)
    head = VisionHead(model.config.text_config.hidden_size, grid * grid,
                      len(targets.classes), len(targets.findings), cfg.head_dim, cfg.pooled)
    aligned = (model.config.vision_feature_select_strategy == "full" and text_ids is not None
               and cfg.align_weight > 0)
    embedder = OptionEmbedder(model, text_ids) if aligned else None
    params = list(model.model.vision_tower.parameters()) + \
        list(model.model.multi_modal_projector.parameters()) + list(head.parameters())
    if aligned:
        params += list(model.get_input_embeddings().parameters())
    optim = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    patch_weights = torch.ones(len(targets.findings) + 1)
    patch_weights[0] = 0.1  # most patches show no finding
    pairs = _pairs_of(items)
    per_batch = max(1, cfg.batch_size // 2)
    weights = [cfg.pair_weight(pair[0]) for pair in pairs] if cfg.oversample else None
    running = 0.5
    model.train()
    for step in range(cfg.steps):
        batch = [item for pair in _draw(rng, pairs, per_batch, weights) for item in pair]
        index, target = targets.answers(batch)
        summary, patches = split_features(
            model, image_features(model, augment(images.stack([i.image for i in batch]), generator)))
        answer_logits, patch_logits = head(patches)
        logits = answer_logits.gather(1, index)
        loss = nn.functional.cross_entropy(logits, target)
        if cfg.dense_weight:
            loss = loss + cfg.dense_weight * nn.functional.cross_entropy(
                patch_logits.reshape(-1, patch_logits.shape[-1]), targets.dense(batch).reshape(-1),
                weight=patch_weights)
        if cfg.position_weight:
            loss = loss + cfg.position_weight * head.position_loss(patches)
        if embedder is not None and summary is not None:
            options = torch.stack([embedder.pair(i, rng, cfg.p_paraphrase) for i in batch])
            loss = loss + cfg.align_weight * nn.functional.cross_entropy(
                head.align(summary, options), target)
        for group in optim.param_groups:
            group["lr"] = cfg.lr * _cosine(step, cfg.steps, max(1, cfg.steps // 20))
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optim.step()
        running = 0.9 * running + 0.1 * (logits.argmax(-1) == target).float().mean().item()
        if progress:
            progress(step, {"loss": loss.item(), "train_acc": running})
    if not heldout:
        return running
    return vision_accuracy(model, head, targets, images, heldout)


class VisionFeatureCache:
    """The frozen vision tower's selected outputs per image (before the projector), computed
    once: stage 2 then spends its time on the decoder, and stage 1's features stay as trained.

    With ``views`` > 1 each image also gets ``views - 1`` augmented versions; while the model
    trains, every use draws one of them at random (evaluation always sees the image itself), so
    the decoder meets varied features for one image instead of memorising a single copy.
    """

    def __init__(self, model, images: ImageCache, dropout: float = 0.0, views: int = 1,
                 augment: Augment = Augment(), seed: int = 0) -> None:
        self.model = model
        self.images = images
        self.dropout = dropout  # applied while the model trains: the decoder cannot memorise
        self.views = views if augment.active else 1
        self.augment = augment
        self._generator = torch.Generator().manual_seed(seed)
        self._pick = random.Random(seed)
        self._features: dict[str, list[torch.Tensor]] = {}

    @torch.no_grad()
    def add(self, inputs: Sequence, batch_size: int = 128) -> None:
        todo = list({img.digest: img for img in inputs if img.digest not in self._features}.values())
        if not todo:
            return
        tower = self.model.model.vision_tower
        was_training = tower.training
        tower.eval()
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            pixels = self.images.stack(chunk)
            for view in range(self.views):
                shown = pixels if view == 0 else self.augment(pixels, self._generator)
                hidden = tower(shown, output_hidden_states=True).hidden_states
                selected = hidden[self.model.config.vision_feature_layer]
                if self.model.config.vision_feature_select_strategy == "default":
                    selected = selected[:, 1:]
                for img, feats in zip(chunk, selected):
                    self._features.setdefault(img.digest, []).append(feats.to(torch.float16))
        tower.train(was_training)

    def pick_state(self) -> tuple:
        return self._pick.getstate()

    def set_pick_state(self, state: tuple) -> None:
        """Continue the view draws of a saved run (resumed training repeats it exactly)."""
        self._pick.setstate(state)

    def projected(self, inputs: Sequence) -> torch.Tensor:
        """Projected features of ``inputs`` in order: (images, tokens, text hidden)."""
        self.add(inputs)  # only images not cached yet are computed
        training = self.model.training
        views = [self._features[img.digest] for img in inputs]
        stacked = torch.stack([v[self._pick.randrange(len(v))] if training else v[0]
                               for v in views]).float()
        stacked = nn.functional.dropout(stacked, self.dropout, training=training)
        return self.model.model.multi_modal_projector(stacked)


class OptionHeads(nn.Module):
    """Auxiliary heads (training only, not saved): at every token of a letter prompt's options,
    "is this option the right one for this image" (read at ``aux_layer``) and "am I option A or
    B" (read after the first layer). The answer then only has to copy the letter of the option
    flagged right; without these signals a small decoder sat at chance on letters for hundreds
    of steps while it learned option likelihoods (PS) from the same images."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.match = nn.Linear(hidden, 1)
        self.which = nn.Linear(hidden, 1)


def _option_targets(chunk: Sequence[Encoded], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per token: right option (1/0, -1 elsewhere) and displayed position (1 for B)."""
    match = torch.full((len(chunk), length), -1.0)
    which = torch.zeros((len(chunk), length))
    for row, enc in enumerate(chunk):
        for label, (start, end) in zip(OPTION_LABELS, enc.option_spans):
            match[row, start:end] = float(label == enc.example.correct)
            which[row, start:end] = float(label == "B")
    return match, which


def answer_loss_sum(model, batch: Mapping[str, torch.Tensor], chunk: Sequence[Encoded] = (),
                    features: VisionFeatureCache | None = None, heads: OptionHeads | None = None,
                    aux_weight: float = 0.0, aux_layer: int = 2,
                    decisive_weight: float = 0.0) -> torch.Tensor:
    """Sum over the batch's examples of each example's mean answer-token loss (plus, with
    ``heads``, the option-level auxiliary losses of letter prompts, and ``decisive_weight`` times
    the loss at each example's decisive token).

    Short answers weigh as much as long sentences, so the one decisive letter is not drowned by
    finding sentences. Logits are computed only where there is an answer token. With
    ``features`` the vision tower is skipped: its cached outputs go through the projector into
    the image-token slots, exactly as ``LlavaModel`` places them.
    """
    ids, mask = batch["input_ids"], batch["attention_mask"]
    want_states = heads is not None and aux_weight > 0
    if features is None:
        out = model.model(input_ids=ids, attention_mask=mask, pixel_values=batch.get("pixel_values"),
                          output_hidden_states=want_states)
    else:
        embeds = model.get_input_embeddings()(ids)
        slots = (ids == model.config.image_token_id).unsqueeze(-1).expand_as(embeds)
        if slots.any():
            image = features.projected([img for enc in chunk for img in enc.images])
            embeds = embeds.masked_scatter(slots, image.reshape(-1, image.shape[-1]).to(embeds.dtype))
        out = model.model.language_model(inputs_embeds=embeds, attention_mask=mask,
                                         output_hidden_states=want_states)
    hidden = out.last_hidden_state
    labels = batch["labels"][:, 1:]
    where = labels != IGNORE_INDEX
    logits = model.lm_head(hidden[:, :-1][where]).float()
    token_loss = nn.functional.cross_entropy(logits, labels[where], reduction="none")
    rows = where.nonzero()[:, 0]
    per_example = torch.zeros(labels.shape[0]).index_add(0, rows, token_loss)
    counts = torch.zeros(labels.shape[0]).index_add(0, rows, torch.ones_like(token_loss))
    total = (per_example / counts.clamp(min=1)).sum()
    if decisive_weight:  # that token's loss is already among the answer tokens' losses
        marks = torch.zeros_like(where)
        for row, enc in enumerate(chunk):
            if enc.decisive > 0:
                marks[row, enc.decisive - 1] = True  # labels are shifted by one
        total = total + decisive_weight * token_loss[marks[where]].sum()
    if want_states and any(enc.option_spans for enc in chunk):
        match, which = _option_targets(chunk, ids.shape[1])
        on = match >= 0
        states = out.hidden_states
        match_loss = nn.functional.binary_cross_entropy_with_logits(
            heads.match(states[min(aux_layer, len(states) - 1)][on]).squeeze(-1), match[on])
        which_loss = nn.functional.binary_cross_entropy_with_logits(
            heads.which(states[1][on]).squeeze(-1), which[on])
        letter_rows = sum(1 for enc in chunk if enc.option_spans)
        total = total + aux_weight * (match_loss + which_loss) * letter_rows
    return total


def micro_batches(encoded: Sequence[Encoded], token_budget: int) -> list[list[Encoded]]:
    """Examples sorted by length and cut so each padded micro-batch stays within the budget
    (a few-shot prompt with three images never pads thirty one-image prompts to its length)."""
    ordered = sorted(encoded, key=lambda e: len(e.input_ids))
    batches: list[list[Encoded]] = []
    for enc in ordered:
        if batches and len(enc.input_ids) * (len(batches[-1]) + 1) <= token_budget:
            batches[-1].append(enc)
        else:
            batches.append([enc])
    return batches


@torch.no_grad()
def letter_accuracy(model, encoder: ExampleEncoder, images: ImageCache,
                    examples: Sequence[Example], batch_size: int = 32) -> float:
    """Share of letter examples whose next-token score ranks the right letter above the other."""
    tok = encoder.tokenizer
    letter_ids = [tok.convert_tokens_to_ids(x) for x in OPTION_LABELS]
    was_training = model.training
    model.eval()
    right = 0
    for start in range(0, len(examples), batch_size):
        chunk = examples[start:start + batch_size]
        encoded = [encoder.encode(e) for e in chunk]
        for enc in encoded:  # keep the prompt only: scores of the first answer token
            n_prompt = sum(1 for lab in enc.labels if lab == IGNORE_INDEX)
            enc.input_ids, enc.labels = enc.input_ids[:n_prompt], enc.labels[:n_prompt]
        batch = collate(encoded, images, tok.pad_token_id)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       pixel_values=batch["pixel_values"]).logits
        last = batch["attention_mask"].sum(1) - 1
        scores = logits[torch.arange(len(chunk)), last][:, letter_ids]
        for row, example in enumerate(chunk):
            right += int(OPTION_LABELS[int(scores[row].argmax())] == example.correct)
    model.train(was_training)
    return right / max(1, len(examples))


def _param_groups(model, cfg: StageTwo) -> list[dict]:
    vision = {id(p) for p in model.model.vision_tower.parameters()}
    seen: set[int] = set()
    groups: dict[str, list] = {"vision": [], "decay": [], "no_decay": []}
    for name, param in model.named_parameters():
        if id(param) in seen or not param.requires_grad:
            continue
        seen.add(id(param))
        if id(param) in vision:
            groups["vision"].append(param)
        elif param.ndim < 2 or "norm" in name:
            groups["no_decay"].append(param)
        else:
            groups["decay"].append(param)
    return [
        {"params": groups["vision"], "lr": cfg.vision_lr, "base_lr": cfg.vision_lr,
         "weight_decay": cfg.weight_decay},
        {"params": groups["decay"], "lr": cfg.lr, "base_lr": cfg.lr, "weight_decay": cfg.weight_decay},
        {"params": groups["no_decay"], "lr": cfg.lr, "base_lr": cfg.lr, "weight_decay": 0.0},
    ]


class Trainer:
    """Runs both stages on phantom pair images with the real modes rendering every prompt."""

    def __init__(self, model, processor, modes: Mapping[str, AnsweringMode],
                 train_items: Sequence[PairImage], heldout_items: Sequence[PairImage],
                 settings: TrainSettings, state_path: Path | None = None) -> None:
        unknown = set(settings.mode_weights) - set(modes)
        if unknown:
            raise ValueError(f"unknown modes in mode_weights: {sorted(unknown)} "
                             f"(modes: {', '.join(modes)})")
        self.model = model
        self.processor = processor
        self.modes = modes
        self.train_items = list(train_items)
        self.heldout_items = list(heldout_items)
        self.settings = settings
        self.state_path = state_path
        self.images = ImageCache(processor.image_processor)
        self.encoder = ExampleEncoder(processor, model.config.image_seq_length)
        self.log = TrainLog()

    def _heldout_examples(self) -> list[Example]:
        """Letter questions on held-out images, balanced display order, fixed for the run."""
        sampler = QuerySampler(self.heldout_items, p_correct_first=0.5,
                               seed=self.settings.seed + 7)
        return build_examples(self.modes, sampler, self.heldout_items,
                              ["mc"] * len(self.heldout_items))

    def _save_state(self, step: int, optim, sampler: QuerySampler, rng: random.Random,
                    features: VisionFeatureCache | None = None) -> None:
        if self.state_path is None:
            return
        tmp = self.state_path.with_suffix(".tmp")
        heads = self._heads
        torch.save({"fingerprint": self.settings.fingerprint(), "step": step,
                    "model": self.model.state_dict(), "heads": heads.state_dict(),
                    "optim": optim.state_dict(),
                    "sampler_rng": sampler.rng.getstate(), "rng": rng.getstate(),
                    "torch_rng": torch.get_rng_state(), "log": asdict(self.log),
                    "views_rng": features.pick_state() if features is not None else None}, tmp)
        tmp.replace(self.state_path)

    def _load_state(self) -> dict | None:
        if self.state_path is None or not self.state_path.is_file():
            return None
        state = torch.load(self.state_path, weights_only=False)
        if state.get("fingerprint") != self.settings.fingerprint():
            return None  # a state from other settings: start over rather than mix
        return state

    def run(self, bar_factory: Callable[..., object] | None = None) -> TrainLog:
        """Train both stages (or continue a saved state); returns the log."""
        torch.set_num_threads(self.settings.threads)
        s = self.settings
        self.images.add([item.image for item in self.train_items + self.heldout_items])
        heldout = self._heldout_examples()
        state = self._load_state()
        bar_factory = bar_factory or _tqdm
        if state is None:
            torch.manual_seed(s.seed)
            start = time.perf_counter()
            bar = bar_factory(total=s.stage1.steps, desc="stage 1 (vision)")
            self.log.stage1_accuracy = train_stage_one(
                self.model, self.images, self.train_items, s.stage1, s.seed,
                heldout=self.heldout_items, progress=lambda step, info: _advance(bar, info),
                text_ids=self.encoder.text_ids, augment=s.augment)
            _close(bar)
            self.log.stage1_seconds = time.perf_counter() - start
        return self._stage_two(heldout, state, bar_factory)

    def _stage_two(self, heldout: list[Example], state: dict | None, bar_factory) -> TrainLog:
        s, cfg = self.settings, self.settings.stage2
        model = self.model
        if cfg.freeze_vision:
            model.model.vision_tower.requires_grad_(False)
        heads = OptionHeads(model.config.text_config.hidden_size)
        groups = [g for g in _param_groups(model, cfg) if g["params"]]
        groups.append({"params": list(heads.parameters()), "lr": cfg.lr, "base_lr": cfg.lr,
                       "weight_decay": 0.0})
        optim = torch.optim.AdamW(groups)
        self._heads = heads
        sampler = QuerySampler(self.train_items, p_correct_first=s.p_correct_first,
                               strategy_weights=s.strategy_weights,
                               system_prompts=s.system_prompts, max_shots=s.max_shots,
                               p_paraphrase=s.p_paraphrase, seed=s.seed + 1)
        rng = random.Random(s.seed + 2)
        first = 0
        if state is not None:
            model.load_state_dict(state["model"])
            heads.load_state_dict(state["heads"])
            optim.load_state_dict(state["optim"])
            sampler.rng.setstate(state["sampler_rng"])
            rng.setstate(state["rng"])
            torch.set_rng_state(state["torch_rng"])
            for key, value in state["log"].items():
                setattr(self.log, key, value)
            first = self.log.resumed_from = state["step"]
        features = None
        if cfg.freeze_vision:  # after a resumed state is loaded: features of its tower
            features = VisionFeatureCache(model, self.images, cfg.feature_dropout,
                                          cfg.feature_views, s.augment, s.seed + 3)
            features.add([item.image for item in self.train_items])
            if state is not None and state.get("views_rng") is not None:
                features.set_pick_state(state["views_rng"])
        pairs = _pairs_of(self.train_items)  # both images of a pair asked the same way
        modes = [m for m in self.modes if s.mode_weights.get(m, 0) > 0]
        weights = [s.mode_weights[m] for m in modes]
        pad = self.processor.tokenizer.pad_token_id
        start = time.perf_counter() - self.log.stage2_seconds
        bar = bar_factory(total=cfg.steps, initial=first, desc="stage 2 (decoder)" if cfg.freeze_vision
                          else "stage 2 (end to end)")
        running = None
        model.train()
        for step in range(first, cfg.steps):
            groups = rng.sample(pairs, min(len(pairs), max(1, cfg.batch_size // 2)))
            names = rng.choices(modes, weights=weights, k=len(groups))
            examples = build_group_examples(self.modes, sampler, groups, names,
                                            letter_modes(self.modes) if s.both_orders else ())
            encoded = [self.encoder.encode(e) for e in examples]
            optim.zero_grad(set_to_none=True)
            total = 0.0
            for chunk in micro_batches(encoded, cfg.token_budget):
                batch = collate(chunk, self.images, pad, pixels=features is None)
                loss = answer_loss_sum(model, batch, chunk, features, heads, cfg.aux_weight,
                                       cfg.aux_layer, cfg.decisive_weight) / len(encoded)
                loss.backward()
                total += loss.item()
            factor = _cosine(step, cfg.steps, cfg.warmup_steps)
            for group in optim.param_groups:
                group["lr"] = group["base_lr"] * factor
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optim.step()
            running = total if running is None else 0.95 * running + 0.05 * total
            done = step + 1
            info = {"loss": running}
            if done % s.eval_every == 0 or done == cfg.steps:
                self.log.heldout_letter_accuracy = letter_accuracy(model, self.encoder,
                                                                   self.images, heldout)
                self.log.history.append({"step": done, "loss": round(running, 4),
                                         "heldout_acc": round(self.log.heldout_letter_accuracy, 4)})
            if self.log.history:
                info["heldout_acc"] = self.log.heldout_letter_accuracy
            _advance(bar, info)
            self.log.steps_done = done
            self.log.stage2_loss = running
            self.log.stage2_seconds = time.perf_counter() - start
            if s.save_every and done % s.save_every == 0 and done < cfg.steps:
                self._save_state(done, optim, sampler, rng, features)
        _close(bar)
        model.eval()
        return self.log


def _tqdm(**kwargs):
    from tqdm.auto import tqdm

    return tqdm(dynamic_ncols=True, **kwargs)


def _advance(bar, info: Mapping[str, float]) -> None:
    if bar is None:
        return
    bar.set_postfix({k: f"{v:.3f}" for k, v in info.items()}, refresh=False)
    bar.update(1)


def _close(bar) -> None:
    if bar is not None and hasattr(bar, "close"):
        bar.close()
