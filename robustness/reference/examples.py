"""Training examples for the reference model: phantom images asked in every answering format.

Each example is one query (an image with its pair's question and options in a sampled display
order and prompting strategy), the request the real answering mode renders for it (captured with
:func:`record_requests`), and the answer text the model should produce:

- MC and GD: the displayed letter of the right option (MC ``cot``: the right option restated
  as the reasoning, then ``Answer: <letter>``: find the finding, then the letter it sits at);
- PS: the right option's continuation, exactly as the PS mode scores it;
- FF: short finding sentences: the right finding in each wording the training pairs give it
  under the asked question (see :class:`FindingStatements`).

The display order is where the biased variant differs: with ``p_correct_first`` = 0.5 the right
option is at A half the time (position carries no signal); the biased variant uses ~0.88.
Some queries use the pair's own paraphrase (``AI_question``/``AI_option_*``), as the paraphrase
probe does, so the model answers both wordings.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Mapping, Sequence

from robustness.data.types import OPTION_LABELS, OptionLabel, Pair, other_label
from robustness.data.image import ImageInput
from robustness.models.base import Capability, LoglikelihoodRequest
from robustness.modes.base import AnsweringMode, ScoreKind
from robustness.modes.prompts import PAPER_PERSONA
from robustness.data.query import FewShotExample, Query, swap_options
from robustness.modes.recording import Request, record_requests

# System prompts seen in training: the paper's persona and a radiologist persona like the
# expert_persona probe's (any other system text still works: unknown words become [UNK]).
SYSTEM_PROMPTS: tuple[str, ...] = (
    PAPER_PERSONA,
    "You are an experienced board-certified radiologist. Read the image systematically, compare "
    "it with the typical appearance of each finding, and answer precisely.",
    "You are an expert radiologist.",
)


@dataclass(frozen=True)
class PairImage:
    """One image of a pair with what training needs to know about it.

    ``answer_classes`` name what options A and B mean for this image's finding (e.g.
    ``renal_calculus:present`` / ``renal_calculus:absent``), the labels the vision tower is
    pre-trained on; ``finding``, ``present`` and ``mask`` give the finding's place in the image.
    """

    pair: Pair
    index: int  # 1 or 2
    image: ImageInput
    family: str
    answer_classes: tuple[str, str] = ("", "")
    finding: str = ""
    present: bool = False
    mask: Path | None = None

    @property
    def correct(self) -> OptionLabel:
        """The right option in the pair's original labels."""
        return self.pair.correct[self.index - 1]

    @property
    def caption(self) -> str:
        fields = self.pair.mediconfusion
        return fields.captions[self.index - 1] if fields is not None else ""

    @property
    def key(self) -> tuple[str, int]:
        return (self.pair.pair_id, self.index)


@dataclass(frozen=True)
class Example:
    """A rendered request and the answer text the model should learn for it."""

    mode: str
    strategy: str
    request: Request
    target: str
    correct: OptionLabel  # displayed label of the right option
    family: str
    key: tuple[str, int]
    options: tuple[str, str] = ("", "")  # displayed option texts (A, B)
    # FF: the target for the pair's other finding under the same question; where the two part
    # ways is the one token that needs the image (the rest restates what that token chose)
    rival: str | None = None


def finding_sentence(option_text: str) -> str:
    """The free-form finding the model states for FF and before a ``cot`` answer.

    It restates the right option as a sentence, so its words overlap that option and not the
    other (what a judge, lexical or LLM, scores).
    """
    text = option_text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def letter_modes(modes: Mapping[str, AnsweringMode]) -> tuple[str, ...]:
    """Names of the modes whose answers are displayed letters (position matters)."""
    return tuple(name for name, mode in modes.items() if mode.score_kind is ScoreKind.LETTER)


def states_finding(mode: AnsweringMode) -> bool:
    """Whether ``mode`` asks for a free-text finding (FF): option texts, generated."""
    return mode.score_kind is ScoreKind.OPTION and mode.capability is Capability.GENERATE


def mode_target(mode: AnsweringMode, strategy: str, query: Query, request: Request,
                caption: str = "", statement: str | None = None) -> str:
    """The answer text the model should produce for ``request`` (see the module docstring);
    ``statement``: the free-form finding for FF (default: the right option restated)."""
    letter = query.correct
    finding = finding_sentence(query.options[OPTION_LABELS.index(letter)])
    if mode.score_kind is ScoreKind.LETTER:
        return f"{finding} Answer: {letter}" if strategy == "cot" else letter
    if isinstance(request, LoglikelihoodRequest):
        continuations = request.continuations
        if len(continuations) != 2:
            raise RuntimeError(f"PS mode sent {len(continuations)} continuations, expected 2")
        wanted = query.options[OPTION_LABELS.index(letter)].strip()
        for text in continuations:  # the mode may add a prefix or ordering of its own
            if text.strip() == wanted:
                return text
        return continuations[OPTION_LABELS.index(letter)]
    if states_finding(mode):
        return statement or finding
    raise ValueError(f"mode {mode.name!r}: no training target for what it scores")


class FindingStatements:
    """FF answers: every wording the training pairs give the right finding under this question.

    FF shows the question without options, and the same question comes with different option
    wordings in different pairs ("Left-sided pleural effusion" / "The left side"), so restating
    one pair's option asks the model to guess a wording it cannot see. Instead it learns to state
    the finding in each of the question's wordings (most frequent first), a target fixed by the
    question and the image alone, which an option-overlap judge credits whichever wording the
    asked pair uses.
    """

    def __init__(self, images: Sequence[PairImage], limit: int = 3) -> None:
        self.limit = limit
        self._wordings: dict[tuple[str, str], Counter] = {}
        for item in images:
            pair = item.pair
            versions = [(pair.question, pair.options)]
            fields = pair.mediconfusion
            if fields is not None and fields.has_paraphrase:
                versions.append((fields.ai_question, fields.ai_options))
            for question, options in versions:
                for label, cls in zip(OPTION_LABELS, item.answer_classes):
                    text = options[OPTION_LABELS.index(label)]
                    self._wordings.setdefault((question, cls), Counter())[text] += 1

    def say(self, item: PairImage, query: Query, *, rival: bool = False) -> str | None:
        """The FF target for ``query`` about ``item`` (None: no wordings known); with ``rival``,
        what the target would be for the pair's other finding (the other image's answer)."""
        right = OPTION_LABELS.index(item.correct)
        ranked = self.wordings(query.question, item.answer_classes[1 - right if rival else right])
        if not ranked:
            return None
        return " ".join(finding_sentence(text) for text in ranked[:self.limit])

    def wordings(self, question: str, answer_class: str) -> list[str]:
        """Every option text the training pairs give ``answer_class`` under ``question``, most
        frequent first."""
        counts = self._wordings.get((question, answer_class), Counter())
        return sorted(counts, key=lambda text: (-counts[text], text))


class QuerySampler:
    """Draws queries for pair images: display order, strategy, persona prompt, few-shot shots."""

    def __init__(self, images: Sequence[PairImage], *, p_correct_first: float = 0.5,
                 strategy_weights: Mapping[str, float] | None = None,
                 system_prompts: Sequence[str] = SYSTEM_PROMPTS, max_shots: int = 2,
                 p_paraphrase: float = 0.0, seed: int = 0) -> None:
        if not 0.0 <= p_correct_first <= 1.0:
            raise ValueError("p_correct_first must lie in [0, 1]")
        if not 0.0 <= p_paraphrase <= 1.0:
            raise ValueError("p_paraphrase must lie in [0, 1]")
        self.images = list(images)
        self.p_correct_first = p_correct_first
        self.strategy_weights = dict(strategy_weights or {"direct": 1.0})
        self.system_prompts = list(system_prompts)
        self.max_shots = max_shots
        self.p_paraphrase = p_paraphrase
        self.rng = random.Random(seed)
        self.statements = FindingStatements(self.images)

    def strategy_for(self, mode: AnsweringMode) -> str:
        """A strategy ``mode`` serves, drawn by weight (``direct`` if none has weight)."""
        allowed = [s for s in mode.strategies() if self.strategy_weights.get(s, 0) > 0]
        if not allowed:
            return "direct"
        weights = [self.strategy_weights[s] for s in allowed]
        return self.rng.choices(allowed, weights=weights)[0]

    def wording(self, item: PairImage) -> tuple[str, tuple[str, str]]:
        """The question and original-order options: the pair's own, or its paraphrase."""
        pair = item.pair
        fields = pair.mediconfusion
        if (self.p_paraphrase and fields is not None and fields.has_paraphrase
                and self.rng.random() < self.p_paraphrase):
            return fields.ai_question, fields.ai_options
        return pair.question, pair.options

    def displayed(self, item: PairImage, options: tuple[str, str]
                  ) -> tuple[tuple[str, str], tuple[OptionLabel, OptionLabel]]:
        """Options in displayed order and the label map (displayed → original)."""
        right = item.correct
        first = right if self.rng.random() < self.p_correct_first else other_label(right)
        label_map: tuple[OptionLabel, OptionLabel] = (first, other_label(first))
        texts = tuple(options[OPTION_LABELS.index(label)] for label in label_map)
        return texts, label_map  # type: ignore[return-value]

    def _shots(self, item: PairImage) -> tuple[FewShotExample, ...]:
        shots: list[FewShotExample] = []
        wanted = self.rng.randint(1, max(1, self.max_shots))
        while len(shots) < wanted:
            other = self.rng.choice(self.images)
            if other.pair.pair_id == item.pair.pair_id:
                continue  # never a shot from the pair being asked
            question, original = self.wording(other)
            options, label_map = self.displayed(other, original)
            answer = OPTION_LABELS[label_map.index(other.correct)]
            shots.append(FewShotExample(image=other.image, question=question, options=options,
                                        answer=answer, source_pair_id=other.pair.pair_id))
        return tuple(shots)

    def query(self, item: PairImage, strategy: str) -> Query:
        return self.pair_queries([item], strategy)[0]

    def pair_queries(self, items: Sequence[PairImage], strategy: str) -> list[Query]:
        """Queries for images of one pair sharing wording, system prompt and few-shot examples;
        each image draws its own display order (so a bias towards A stays possible)."""
        question, original = self.wording(items[0])
        system = self.rng.choice(self.system_prompts) if strategy == "persona" else None
        shots = self._shots(items[0]) if strategy == "few_shot" else ()
        queries = []
        for item in items:
            options, label_map = self.displayed(item, original)
            queries.append(Query(
                pair_id=item.pair.pair_id, image_index=item.index, image=item.image,
                question=question, options=options, label_map=label_map,
                correct=OPTION_LABELS[label_map.index(item.correct)], strategy=strategy,
                system_prompt=system, few_shot=shots))
        return queries


def build_examples(modes: Mapping[str, AnsweringMode], sampler: QuerySampler,
                   items: Sequence[PairImage], mode_names: Sequence[str]) -> list[Example]:
    """One example per (item, mode name), rendered by the real modes in one batch per mode."""
    return build_group_examples(modes, sampler, [[item] for item in items], mode_names)


def build_group_examples(modes: Mapping[str, AnsweringMode], sampler: QuerySampler,
                         groups: Sequence[Sequence[PairImage]],
                         mode_names: Sequence[str],
                         both_orders: Collection[str] = ()) -> list[Example]:
    """Examples for groups of images of one pair (each group: one mode, one strategy, one
    wording), rendered by the real modes in one batch per (mode, strategy). Asking both images
    of a pair the same question side by side shows training that only the image decides.

    For modes in ``both_orders`` every query is also asked with its options swapped, so within
    one step the right letter flips with the options' order as well as with the image: the
    letter can only come from matching the image to the options' texts."""
    planned: dict[tuple[str, str], list[tuple[PairImage, Query]]] = {}
    for group, mode in zip(groups, mode_names):
        strategy = sampler.strategy_for(modes[mode])
        for item, query in zip(group, sampler.pair_queries(group, strategy)):
            planned.setdefault((mode, strategy), []).append((item, query))
            if mode in both_orders:
                planned[(mode, strategy)].append((item, swap_options(query)))
    examples: list[Example] = []
    for (mode, strategy), batch in planned.items():
        requests = record_requests(modes[mode], [q for _, q in batch])
        for (item, query), request in zip(batch, requests):
            asks_finding = states_finding(modes[mode])
            statement = sampler.statements.say(item, query) if asks_finding else None
            rival = sampler.statements.say(item, query, rival=True) if statement else None
            target = mode_target(modes[mode], strategy, query, request, item.caption, statement)
            examples.append(Example(mode=mode, strategy=strategy, request=request, target=target,
                                    correct=query.correct, family=item.family, key=item.key,
                                    options=tuple(query.options), rival=rival))
    return examples
