"""Judges for FF mode: score how close a free-form answer is to each option, 1 to 10.

The model judge sends the paper's judge prompt (MediConfusion ``configs/prompts/answering.json``,
"conversion") to any configured adapter that can generate, and parses the paper's output format
(``A: <SCORE>`` / ``B: <SCORE>`` / ``Your explanation: ...``). The lexical judge is an offline
stand-in: it scores option-text overlap and writes the same format, so the same parser and the
same threshold rule apply. An unparseable reply is an invalid verdict, never a crash, and the
judge's raw output is always kept.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import snowballstemmer

from robustness.data.types import OPTION_LABELS, Choice
from robustness.errors import ConfigError
from robustness.metrics import threshold_choice as scores_to_choice
from robustness.models.base import (Capability, GenerateRequest, GenerationSettings, ModelAdapter,
                                    Prompt, Usage, text_message)

# The paper's judge wording, two-option version (kept verbatim, spelling included).
PAPER_JUDGE_INSTRUCTION = (
    "We would like to request your feedback on the performance of an AI assistant in response "
    "to the user question displayed above. The user asks the question on observing an image. We "
    "have provided two possible answers, [Answer A] and [Answer B] to the question. Your job is "
    "to evaluate how close the AI assistant's answer is to each of the answers. You don't have "
    "to decide whether the answers are correct or not. Each answer should receive an overall "
    "score on a scale of 1 to 10, where a higher score indicates the AI assistant's answer is "
    "closer to the specific answer. After providing the scores, concisely provide your "
    "explanation for the given scores. Remember, you don't need to comment on the correctness "
    "of the answers. Please provide your answer in the following format:\nA: <SCORE>\n"
    "B: <SCORE>\nYour explanation: <EXPLANATION>")
PAPER_JUDGE_ROLE = "AI Assistant"
PAPER_JUDGE_SYSTEM = ("You are a helpful and precise assistant for checking the quality of the "
                      "answer.")
PAPER_THRESHOLD = 3  # a letter wins when its score beats the other's by at least this much
SCORE_RANGE = (1.0, 10.0)

_SCORE_LINE = re.compile(r"^[\s*#>\-\[]*(?:answer\s*)?\[?([A-Z])\]?\s*\**\s*[:=\-]\s*\**\s*"
                         r"(\d+(?:\.\d+)?)(?:\s*/\s*10)?", re.IGNORECASE | re.MULTILINE)


def judge_prompt_text(question: str, options: Sequence[str], response: str,
                      instruction: str = PAPER_JUDGE_INSTRUCTION,
                      role: str = PAPER_JUDGE_ROLE) -> str:
    """The paper's judge prompt for one answer (options in displayed order)."""
    answers = "".join(f"[Answer {label}]\n{text}\n\n"
                      for label, text in zip(OPTION_LABELS, options))
    return (f"[Question]\n{question}\n\n{answers}[{role}]\n{response}\n\n[End of {role}]\n\n"
            f"[System]\n{instruction}\n\n")


def parse_judge_scores(text: str | None,
                       labels: Sequence[str] = OPTION_LABELS) -> dict[str, float] | None:
    """Scores per label from a judge reply in the paper's format, or ``None`` if any label's
    score is missing, repeated with different values, or outside 1–10."""
    if not text:
        return None
    found: dict[str, float] = {}
    for match in _SCORE_LINE.finditer(text):
        label = match.group(1).upper()
        if label not in labels:
            continue
        value = float(match.group(2))
        if label in found and found[label] != value:
            return None
        found[label] = value
    if set(found) != set(labels):
        return None
    if any(not SCORE_RANGE[0] <= v <= SCORE_RANGE[1] for v in found.values()):
        return None
    return found


def threshold_choice(scores: Mapping[str, float] | None,
                     threshold: float = PAPER_THRESHOLD) -> Choice:
    """The paper's rule on a judge's per-option scores (``metrics.threshold_choice``);
    missing or partial scores are invalid."""
    if not scores or set(scores) != set(OPTION_LABELS):
        return None
    return scores_to_choice(scores["A"], scores["B"], threshold)


@dataclass(frozen=True)
class JudgeItem:
    """One free-form answer to judge against the options as they were displayed."""

    question: str
    options: tuple[str, ...]
    response: str | None


@dataclass
class JudgeVerdict:
    """Scores per displayed label (``None`` when the reply could not be read) and the raw reply."""

    scores: dict[str, float] | None
    raw: str | None
    error: str | None = None  # "judge_unparseable", "no_answer", or the judge backend's failure
    latency_s: float = 0.0
    usage: Usage | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Judge(ABC):
    """Scores free-form answers against each option, in batches."""

    name: str = ""

    def check(self) -> None:
        """Fail at configuration time if the judge cannot work."""

    @abstractmethod
    def judge(self, items: Sequence[JudgeItem]) -> list[JudgeVerdict]:
        """One verdict per item, in order."""

    def adapters(self) -> Mapping[str, ModelAdapter]:
        """The models this judge asks, by role (none for an offline judge)."""
        return {}

    def wrap_adapters(self, wrap: Callable[[ModelAdapter], ModelAdapter]) -> None:
        """Replace each model this judge asks by ``wrap(model)`` (e.g. the answer cache)."""

    def identity(self) -> dict[str, Any]:
        return {"judge": self.name}


class ModelJudge(Judge):
    """Any generating adapter as judge, with the paper's instruction and output format.

    The paper ran GPT-4o at temperature 0.7; the default here is greedy (0.0) so verdicts are
    reproducible and cacheable; set ``temperature: 0.7`` for the paper's setting."""

    name = "model"

    def __init__(self, adapter: ModelAdapter, instruction: str = PAPER_JUDGE_INSTRUCTION,
                 role: str = PAPER_JUDGE_ROLE, system_prompt: str | None = PAPER_JUDGE_SYSTEM,
                 temperature: float = 0.0, max_new_tokens: int = 256, seed: int = 0) -> None:
        if not isinstance(adapter, ModelAdapter):
            raise ConfigError("mode.judge.adapter: a model adapter config is required")
        self.adapter = adapter
        self.instruction = instruction
        self.role = role
        self.system_prompt = system_prompt
        self.settings = GenerationSettings(max_new_tokens=max_new_tokens, temperature=temperature,
                                           seed=seed)

    def check(self) -> None:
        self.adapter.require(Capability.GENERATE, "the FF judge")

    def adapters(self) -> Mapping[str, ModelAdapter]:
        return {"judge": self.adapter}

    def wrap_adapters(self, wrap: Callable[[ModelAdapter], ModelAdapter]) -> None:
        self.adapter = wrap(self.adapter)

    def prompt(self, item: JudgeItem) -> Prompt:
        messages = []
        if self.system_prompt:
            messages.append(text_message("system", self.system_prompt))
        messages.append(text_message("user", judge_prompt_text(
            item.question, item.options, item.response or "", self.instruction, self.role)))
        return Prompt(messages=tuple(messages))

    def judge(self, items: Sequence[JudgeItem]) -> list[JudgeVerdict]:
        asked = [i for i, item in enumerate(items) if item.response is not None]
        results = self.adapter.generate([GenerateRequest(self.prompt(items[i]), self.settings)
                                         for i in asked])
        verdicts = [JudgeVerdict(scores=None, raw=None, error="no_answer") for _ in items]
        for i, result in zip(asked, results):
            if result.error:
                verdicts[i] = JudgeVerdict(scores=None, raw=result.text, error=result.error,
                                           latency_s=result.latency_s, usage=result.usage,
                                           extra={"error_detail": result.error_detail})
                continue
            scores = parse_judge_scores(result.text)
            verdicts[i] = JudgeVerdict(scores=scores, raw=result.text,
                                       error=None if scores else "judge_unparseable",
                                       latency_s=result.latency_s, usage=result.usage)
        return verdicts

    def identity(self) -> dict[str, Any]:
        return {"judge": self.name, "adapter": self.adapter.identity(),
                "instruction": self.instruction, "role": self.role,
                "system_prompt": self.system_prompt, "settings": self.settings.as_dict()}


# ----------------------------------------------------------------------------- lexical judge

_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset("""
a an the is are was were be been being am of in on at to from by for with as and or but this
that these those there here it its they them their which what who whom whose image images
picture shows show shown showing seen visible appears appear appearing demonstrates
demonstrated reveals revealed see can could would may might likely probably i we you he she
answer based question also very well into onto than then so such some any""".split())


_STEMMER = snowballstemmer.stemmer("english")  # Porter2: "abnormality" and "abnormal" meet


def _stem(word: str) -> str:
    return _STEMMER.stemWord(word)


def content_words(text: str) -> list[str]:
    """Lower-cased, stemmed words without stopwords (negations are kept)."""
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


def token_f1(answer: set[str], option: set[str]) -> float:
    """SQuAD-style word F1 of an answer's words against an option's words."""
    hits = len(answer & option)
    if not hits:
        return 0.0
    precision, recall = hits / len(answer), hits / len(option)
    return 2 * precision * recall / (precision + recall)


def _features(words: list[str]) -> set[str]:
    return set(words) | {f"{a} {b}" for a, b in zip(words, words[1:])}


_TOKEN = re.compile(r"[a-z0-9]+|[.;,:!?]")
# NegEx-style scope (Chapman et al. 2001, much simplified): a trigger negates the words after it
# up to the end of its clause.
_NEGATION_TRIGGERS = frozenset({"no", "not", "without", "absent", "negative", "none", "nor"})
_SCOPE_BREAKS = frozenset({".", ";", ",", ":", "!", "?", "but", "however", "although", "though",
                           "except"})


def polarity(text: str) -> tuple[set[str], set[str]]:
    """(asserted, negated) content words of ``text``: a word is negated inside the scope of a
    negation trigger ("no", "without", ...), which ends at the end of its clause."""
    asserted: set[str] = set()
    negated: set[str] = set()
    in_scope = False
    for token in _TOKEN.findall(text.lower()):
        if token in _SCOPE_BREAKS:
            in_scope = False
        elif token in _NEGATION_TRIGGERS:
            in_scope = True
        elif token not in _STOPWORDS:
            (negated if in_scope else asserted).add(_stem(token))
    return asserted, negated


def contradicts(answer: str, option: str) -> bool:
    """Whether ``answer`` denies ``option``.

    - Both deny the same thing: they agree ("no liver lesion" and "homogeneous liver without
      focal lesion"), whatever else the clauses' scopes swept in.
    - The answer negates (and never asserts) more of the option's asserted words than it
      asserts: "no skull fracture" denies "a linear skull fracture"; "homogeneous liver
      without focal lesion" denies "focal liver lesion" (two denied, one shared place word);
      "calvarial fracture. No skull fracture." contradicts itself and denies nothing.
    - The answer asserts (and never negates) a word the option negates: "focal nodular opacity
      in the lung" denies "clear lungs without a focal nodule".
    """
    return _denies(polarity(answer), polarity(option))


Polarity = tuple[set[str], set[str]]  # (asserted, negated) stems, as :func:`polarity` reads them


def _denies(answer: Polarity, option: Polarity) -> bool:
    """:func:`contradicts` on texts already read by :func:`polarity`."""
    said, denied = answer
    claims, excludes = option
    if excludes & denied:
        return False
    if len(claims & (denied - said)) > len(claims & said):
        return True
    return bool(excludes & (said - denied))


def _signed(words: Polarity) -> set[str]:
    """Stems with their polarity: ``fractur`` asserted, ``no fractur`` negated (so "no skull
    fracture" shares no word with "a linear skull fracture")."""
    asserted, negated = words
    return asserted | {f"no {word}" for word in negated}


class LexicalJudge(Judge):
    """Offline FF judge: option-text overlap with the answer, scored 1–10 per option.

    Words are stemmed (Porter2) content words. Each option is represented by its *distinctive*
    features (words and word bigrams the other options lack); its closeness is the larger of
    the share of those features found in the answer (recall: a long answer restating the
    option) and the word F1 between the answer and the option's distinctive words (a short
    answer whose words all point at one long option: "branch occlusion" for "an abrupt cut-off
    of a branch, consistent with occlusion"); the score is ``1 + round(9 × closeness)``. An
    option with no distinctive feature (a subset of another, e.g. "nodule" vs "no nodule")
    scores by its full overlap times the share of the other's distinctive features that are
    absent. The verdict is written in the paper's judge format and parsed back with the same
    parser, so the paper's threshold rule decides.

    Negation is read as an LLM judge would: an option the answer denies (:func:`contradicts`:
    "no pacemaker" against "Pacemaker present") scores 1, and when exactly one of the two
    options is denied the other, the only one left, scores at least ``ELIMINATED`` (6: implied,
    not stated). Lexical overlap stays blind to paraphrase ("intact calvarium" for "no skull
    fracture" is found only through the denial): use a model judge for real models.
    """

    ELIMINATED = 6

    name = "lexical"

    def identity(self) -> dict[str, Any]:
        # recorded in every run's summary: FF results before negation was read are not comparable
        return {"judge": self.name, "reads_negation": True, "closeness": "recall-or-f1, porter2"}

    def judge(self, items: Sequence[JudgeItem]) -> list[JudgeVerdict]:
        verdicts = []
        for item in items:
            if item.response is None:
                verdicts.append(JudgeVerdict(scores=None, raw=None, error="no_answer"))
                continue
            start = time.perf_counter()
            raw = self.reply(item.options, item.response)
            scores = parse_judge_scores(raw)
            verdicts.append(JudgeVerdict(scores=scores, raw=raw,
                                         error=None if scores else "judge_unparseable",
                                         latency_s=time.perf_counter() - start))
        return verdicts

    def reply(self, options: Sequence[str], response: str) -> str:
        """The judge's reply in the paper's format, with its explanation."""
        answer = _features(content_words(response))
        feats = [_features(content_words(o)) for o in options]
        read = polarity(response)  # each text is read for negation once
        option_reads = [polarity(o) for o in options]
        signed = [_signed(r) for r in option_reads]
        said = _signed(read)
        scores: list[int] = []
        notes: list[str] = []
        for k, (label, own) in enumerate(zip(OPTION_LABELS, feats)):
            others = set().union(*(f for j, f in enumerate(feats) if j != k))
            distinct = own - others
            if distinct:
                words = signed[k] - set().union(*(w for j, w in enumerate(signed) if j != k))
                f1 = token_f1(said, words)
                share = max(len(distinct & answer) / len(distinct), f1)
                notes.append(f"{label} matched {sorted(distinct & answer)} of {sorted(distinct)} "
                             f"(word F1 {f1:.2f})")
            else:
                other_distinct = others - own
                full = len(own & answer) / len(own) if own else 0.0
                absent = (1 - len(other_distinct & answer) / len(other_distinct)
                          if other_distinct else 0.0)
                share = full * absent
                notes.append(f"{label} matched {sorted(own & answer)} of {sorted(own)} with "
                             f"{sorted(other_distinct & answer)} of the other option's words")
            scores.append(1 + round(9 * share))
        denied = [_denies(read, r) for r in option_reads]
        if any(denied):
            left = [k for k, d in enumerate(denied) if not d]
            for k, d in enumerate(denied):
                if d:
                    scores[k] = 1
                    notes.append(f"{OPTION_LABELS[k]} denied by the answer")
            if len(left) == 1 and len(options) == 2:
                scores[left[0]] = max(scores[left[0]], self.ELIMINATED)
                notes.append(f"{OPTION_LABELS[left[0]]} is the option left")
        lines = [f"{label}: {score}" for label, score in zip(OPTION_LABELS, scores)]
        return "\n".join(lines) + "\nYour explanation: lexical overlap; " + "; ".join(notes)
