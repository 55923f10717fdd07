"""The text the reference model can meet, from which its word-level vocabulary is built.

Phantom pair texts (questions, options, AI paraphrases, captions, finding sentences), the phantom
generator's templates, every prompt the real modes render under every prompting strategy, the
system prompts and the chat template's role words. Words outside this corpus map to ``[UNK]``.
"""

from __future__ import annotations

from typing import Iterator, Mapping, Sequence

from robustness.data.types import Pair
from robustness.models.base import LoglikelihoodRequest
from robustness.modes.base import AnsweringMode
from robustness.reference.examples import (
    PairImage,
    QuerySampler,
    build_examples,
    finding_sentence,
)
from robustness.reference.processor import TEMPLATE_WORDS


def pair_texts(pair: Pair) -> Iterator[str]:
    """Every human-readable text field of a pair, and the finding sentences of its options."""
    fields = pair.mediconfusion
    yield pair.question
    if fields is not None:
        yield fields.ai_question
    for text in (*pair.options, *(fields.ai_options if fields is not None else ())):
        yield text
        yield finding_sentence(text)
    if fields is not None:
        yield from fields.captions


def prompt_texts(modes: Mapping[str, AnsweringMode], items: Sequence[PairImage],
                 system_prompts: Sequence[str], seed: int = 0) -> Iterator[str]:
    """Texts of the prompts and answers the modes render for ``items`` in every strategy."""
    for name, mode in modes.items():
        for strategy in mode.strategies():
            sampler = QuerySampler(items, strategy_weights={strategy: 1.0},
                                   system_prompts=system_prompts, seed=seed)
            for example in build_examples(modes, sampler, items, [name] * len(items)):
                for message in example.request.prompt.messages:
                    yield message.text
                yield example.target
                if isinstance(example.request, LoglikelihoodRequest):
                    yield from example.request.continuations


def generator_templates() -> Iterator[str]:
    """The phantom generator's own template strings (slot names included, harmless)."""
    from robustness.data.phantom import vocabulary

    yield from vocabulary()


def corpus(modes: Mapping[str, AnsweringMode], pairs: Sequence[Pair],
           items: Sequence[PairImage], system_prompts: Sequence[str]) -> Iterator[str]:
    """The whole corpus: pair texts, generator templates, rendered prompts (for ``items``),
    system prompts and template words."""
    for pair in pairs:
        yield from pair_texts(pair)
    yield from generator_templates()
    yield from prompt_texts(modes, items, system_prompts)
    yield from system_prompts
    yield " ".join(TEMPLATE_WORDS)
