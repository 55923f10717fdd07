"""Prompting strategies as probes: the same images and options, asked another way.

The probes only set ``Query`` fields (``strategy``, ``system_prompt``, ``few_shot``, the
question text); the answering mode renders them (``robustness/modes``). Truths never change.
``strategies()`` names what the mode must serve, so the runner can reject e.g. GD + ``cot``
before any work.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any, Sequence

from attacks.base import (Answers, Condition, Probe, ProbeContext, Queries, derive_seed,
                          index_by_key, percent)
from robustness.data.types import OPTION_LABELS, Benchmark, OptionLabel, Pair
from robustness.errors import ConfigError
from robustness.data.image import ImageInput
from robustness.data.query import FewShotExample, Query

DEFAULT_PERSONA = ("You are an experienced board-certified radiologist. Read the image "
                   "systematically, compare it with the typical appearance of each finding, "
                   "and answer precisely.")


class _StrategyProbe(Probe):
    """A probe that only switches the prompting strategy (and its fields)."""

    strategy = ""

    def __init__(self, name: str | None = None) -> None:
        self._set_name(name)

    def strategies(self) -> frozenset[str]:
        return frozenset({self.strategy})

    def conditions(self) -> list[Condition]:
        return [Condition(name=self.name, probe=self.name, params={"strategy": self.strategy})]

    def apply(self, condition: Condition, pair: Pair, queries: tuple[Query, Query],
              ctx: ProbeContext) -> Sequence[Query]:
        return tuple(replace(q, strategy=self.strategy) for q in queries)


class ChainOfThought(_StrategyProbe):
    """Reason step by step, then finish with ``Answer: <letter>`` (strategy ``cot``)."""

    name = "chain_of_thought"
    strategy = "cot"


class ExpertPersona(_StrategyProbe):
    """A radiologist system prompt (strategy ``persona``, text in ``system_prompt``)."""

    name = "expert_persona"
    strategy = "persona"

    def __init__(self, system_prompt: str = DEFAULT_PERSONA, name: str | None = None) -> None:
        super().__init__(name)
        if not isinstance(system_prompt, str) or not system_prompt.strip():
            raise ConfigError(f"probe {self.name}: system_prompt is empty")
        self.system_prompt = system_prompt.strip()

    def conditions(self) -> list[Condition]:
        return [Condition(name=self.name, probe=self.name,
                          params={"strategy": self.strategy, "system_prompt": self.system_prompt})]

    def apply(self, condition: Condition, pair: Pair, queries: tuple[Query, Query],
              ctx: ProbeContext) -> Sequence[Query]:
        return tuple(replace(q, strategy=self.strategy, system_prompt=self.system_prompt)
                     for q in queries)


class Paraphrase(Probe):
    """Ask the dataset's own paraphrase: ``AI_question`` and ``AI_option_A``/``_B`` (the LLM
    wording before radiologist revision). Option texts keep the query's displayed order and
    the truth. Where a pair has no paraphrase text the original is kept; ``paraphrased``
    reports the % of queries whose wording actually changed."""

    name = "paraphrase"

    def __init__(self, question: bool = True, options: bool = True,
                 name: str | None = None) -> None:
        self._set_name(name)
        if not (question or options):
            raise ConfigError(f"probe {self.name}: paraphrase neither question nor options?")
        self.question, self.options = bool(question), bool(options)

    def conditions(self) -> list[Condition]:
        return [Condition(name=self.name, probe=self.name,
                          params={"question": self.question, "options": self.options})]

    def check(self, benchmark: Benchmark) -> None:
        """Refuse a benchmark whose pairs carry no paraphrase (MediConfusion's ``AI_*``)."""
        if not any(p.mediconfusion is not None and p.mediconfusion.has_paraphrase
                   for p in benchmark):
            raise ConfigError(f"probe {self.name}: benchmark {benchmark.name!r} has no "
                              "paraphrased questions (MediConfusion's AI_question, AI_option_A, "
                              "AI_option_B); drop this probe for it")

    def apply(self, condition: Condition, pair: Pair, queries: tuple[Query, Query],
              ctx: ProbeContext) -> Sequence[Query]:
        out = []
        fields = pair.mediconfusion
        ai_question = fields.ai_question if fields is not None else ""
        ai_options = fields.ai_options if fields is not None else ("", "")
        for q in queries:
            question = ai_question if self.question and ai_question else q.question
            options = q.options
            if self.options and all(ai_options):
                options = tuple(ai_options[OPTION_LABELS.index(l)] for l in q.label_map)
            changed = question != q.question or options != q.options
            out.append(replace(q, question=question, options=options)  # type: ignore[arg-type]
                       .with_meta(paraphrased=changed))
        return tuple(out)

    def extra_metrics(self, condition: Condition, clean_answers: Answers, probe_answers: Answers,
                      probe_queries: Queries) -> dict[str, Any]:
        queries = index_by_key(probe_queries)
        changed = sum(1 for q in queries.values() if q.meta.get("paraphrased"))
        return {"paraphrased": percent(changed, len(queries))}


class FewShot(Probe):
    """``k`` worked examples before the question, each an image of *another* pair with its
    question, options and right answer (strategy ``few_shot``).

    Examples never come from the pair asked nor from any pair sharing an image with it (images
    recur across MediConfusion pairs). Selection is seeded by (probe name, pair id, base seed):
    both images of a pair get the same examples, and every run and model the same ones. With
    ``balanced`` the displayed answers are ⌊k/2⌋ A and ⌊k/2⌋ B (the odd one drawn), in
    shuffled order; each example pair supplies the image whose answer is the one wanted (a confusing
    pair has one of each). ``match_category`` prefers pairs sharing a category with the one
    asked (falling back to all when too few). Images come from ``ctx.load_queries`` (the
    runner's loader, so probes on the clean images stay consistent) or the pair's image files.
    """

    name = "few_shot"

    def __init__(self, k: int = 2, balanced: bool = True, match_category: bool = False,
                 name: str | None = None) -> None:
        self._set_name(name)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"probe {self.name}: k must be a positive integer, got {k!r}")
        self.k, self.balanced, self.match_category = k, bool(balanced), bool(match_category)

    def strategies(self) -> frozenset[str]:
        return frozenset({"few_shot"})

    def conditions(self) -> list[Condition]:
        return [Condition(name=self.name, probe=self.name,
                          params={"k": self.k, "balanced": self.balanced,
                                  "match_category": self.match_category})]

    # -- selection (pure: depends only on the benchmark, the pair and the seed)

    @staticmethod
    def _image_names(pair: Pair) -> set[str]:
        fields = pair.mediconfusion
        extra = set(fields.image_refs) if fields is not None else set()
        return set(pair.image_keys) | extra

    @classmethod
    def _eligible(cls, pair: Pair, candidates: Sequence[Pair]) -> list[Pair]:
        taken = cls._image_names(pair)
        return [p for p in candidates if p.pair_id != pair.pair_id
                and not (taken & cls._image_names(p))]

    def select(self, pair: Pair, ctx: ProbeContext) -> list[tuple[Pair, int]]:
        """The example (pair, image 1 or 2) list for ``pair``, in presentation order."""
        pool = self._eligible(pair, ctx.benchmark.pairs)
        if self.match_category:
            wanted = set(pair.pair_categories)
            near = [p for p in pool if wanted & set(p.pair_categories)]
            pool = near if len(near) >= self.k else pool
        if len(pool) < self.k:
            raise ConfigError(f"probe {self.name}: k={self.k} examples needed but only "
                              f"{len(pool)} other pairs share no image with pair {pair.pair_id}")
        rng = random.Random(derive_seed(self.name, "examples", pair.pair_id, ctx.seed))
        chosen = rng.sample(pool, self.k)
        if self.balanced:
            answers: list[OptionLabel] = ["A", "B"] * (self.k // 2)
            if self.k % 2:
                answers.append(rng.choice(OPTION_LABELS))
            rng.shuffle(answers)
        else:
            answers = [rng.choice(OPTION_LABELS) for _ in chosen]
        return [(p, 1 + p.correct.index(a)) if a in p.correct else (p, 1)
                for p, a in zip(chosen, answers)]

    @staticmethod
    def _image(example: Pair, image: int, ctx: ProbeContext) -> ImageInput:
        if ctx.load_queries is not None:
            return ctx.load_queries(example)[image - 1].image
        if example.images is not None:
            return ImageInput.open(example.images[image - 1])
        raise ConfigError(f"few_shot needs the images of other pairs: pair {example.pair_id} "
                          "has no image files and the run gives no image loader")

    def apply(self, condition: Condition, pair: Pair, queries: tuple[Query, Query],
              ctx: ProbeContext) -> Sequence[Query]:
        chosen = self.select(pair, ctx)
        examples = tuple(
            FewShotExample(image=self._image(p, image, ctx), question=p.question,
                           options=p.options, answer=p.correct[image - 1],
                           source_pair_id=p.pair_id)
            for p, image in chosen)
        sources = [f"{p.pair_id}/{image}" for p, image in chosen]
        return tuple(replace(q, strategy="few_shot", few_shot=examples)
                     .with_meta(few_shot_examples=sources) for q in queries)
