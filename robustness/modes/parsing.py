"""Turning a model's free text into an option letter, robustly and conservatively.

Accepted forms (displayed labels, usually ``A``/``B``): a bare letter, ``(A)``, ``A:``, ``A.``,
``"A")`` (the paper's ``#answer: ("`` priming), ``**B**``, ``Answer: B`` / ``The answer is B``,
``option B``, a letter leading an answer (``B: No``) or concluding it (``..., so A.``), or the
text of exactly one option.
Invalid (``None``): empty output, a refusal, both letters, a letter that is not an option, or
nothing recognisable. A leading article ("A nodule is seen") is not a letter.

Chain-of-thought answers (``cot``) are read from their final ``Answer: X``; without one, only
the last non-empty line is parsed, since reasoning usually mentions every option.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from robustness.data.types import OPTION_LABELS, Choice

_MARKDOWN = re.compile(r"(\*\*|__|`+)")
# "Answer: B", "Final answer - (B)", "the answer is B", "Answer: **B**" (markdown stripped first)
_ANSWER_MARKER = re.compile(
    r"(?i:\banswer\b)(?:\s+(?i:is))?\s*[:\-=]?\s*(?i:option\s*)?[\(\[\"']*\s*"
    r"([A-Z])(?![A-Za-z0-9])")
_OPTION_WORD = re.compile(r"(?i:\b(?:option|choice))\s*[\(\[\"']?\s*([A-Z])(?![A-Za-z0-9])")
_WHOLE = re.compile(r"^[\W_]*([A-Za-z])[\W_]*$")  # a whole answer of one letter, any case
_LEADING = re.compile(r"^[\s\(\[\"'#*]*([A-Z])\s*(?:[\)\]\.:,;\"'*]|\n|$)")
_PAREN = re.compile(r"[\(\[]\s*[\"']?([A-Z])[\"']?\s*[\)\]]")
_QUOTED = re.compile(r"\"([A-Z])\"")
_CLOSED = re.compile(r"(?<![A-Za-z0-9])([A-Z])\)")  # "A)" anywhere
_CONCLUDING = re.compile(r"(?i:\b(?:so|thus|therefore|hence)),?\s+(?i:the answer is\s+)?"
                         r"([A-Z])[\.\)!]?\s*$")  # "..., so A." at the very end
_PAIR = re.compile(r"(?<![A-Za-z0-9])([A-Z])\s*(?:,|/|\band\b|\bor\b)\s*([A-Z])(?![A-Za-z0-9])")
_REFUSAL = re.compile(
    r"(?i)\b(?:i\s*(?:can\s*not|cannot|can't|can’t|am unable|'m unable|am not able|'m not able)"
    r"|unable to (?:determine|answer|provide|tell|assess|say)"
    r"|i'?m sorry|i apologi[sz]e|not possible to (?:determine|tell|say)"
    r"|cannot be determined|can't be determined|as an ai\b"
    r"|consult (?:a|your) (?:doctor|physician|radiologist))")
_NON_WORD = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class ParsedChoice:
    """A displayed label (or ``None``) and the rule that produced it, for auditing."""

    choice: Choice
    how: str  # answer_marker, letter, option_text, refusal, both, other_letter, empty, none


def parse_choice(text: str | None, options: Sequence[str],
                 labels: Sequence[str] = OPTION_LABELS, *, cot: bool = False) -> ParsedChoice:
    """The option ``text`` answers, in displayed labels, or ``None`` with the reason."""
    if text is None or not text.strip():
        return ParsedChoice(None, "empty")
    clean = _MARKDOWN.sub("", text).strip()
    markers = [m.group(1) for m in _ANSWER_MARKER.finditer(clean)]
    if cot:
        if markers:
            return _single(markers[-1:], labels, "answer_marker")
        lines = [ln for ln in clean.splitlines() if ln.strip()]
        clean = lines[-1].strip() if lines else ""
        markers = []
    if markers:
        return _single(markers, labels, "answer_marker")
    if _REFUSAL.search(clean):
        return ParsedChoice(None, "refusal")
    letters = _letters(clean, labels)
    if letters:
        return _single(letters, labels, "letter")
    return _by_option_text(clean, options, labels)


def _single(letters: Sequence[str], labels: Sequence[str], how: str) -> ParsedChoice:
    distinct = list(dict.fromkeys(letters))
    valid = [x for x in distinct if x in labels]
    if len(valid) > 1:
        return ParsedChoice(None, "both")
    if len(valid) == 1 and len(distinct) == 1:
        return ParsedChoice(valid[0], how)  # type: ignore[arg-type]
    if valid:  # an option letter plus a non-option letter ("A or C"): ambiguous
        return ParsedChoice(None, "both")
    return ParsedChoice(None, "other_letter")


def _letters(clean: str, labels: Sequence[str]) -> list[str]:
    """Letters written as answers (not articles): whole answer, leading, in parentheses or
    quotes, or after "option"/"choice"."""
    whole = _WHOLE.match(clean)
    if whole:
        return [whole.group(1).upper()]
    found: list[str] = []
    lead = _LEADING.match(clean)
    if lead:
        found.append(lead.group(1))
    for pattern in (_PAREN, _QUOTED, _CLOSED, _OPTION_WORD, _CONCLUDING):
        found.extend(m.group(1) for m in pattern.finditer(clean))
    for pair in _PAIR.finditer(clean):  # "A and B" (only option letters: not "A, I think")
        if all(letter in labels for letter in pair.groups()):
            found.extend(pair.groups())
    return found


def normalise(text: str) -> str:
    """Lower case, punctuation to single spaces (for option-text matching)."""
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


def _by_option_text(clean: str, options: Sequence[str], labels: Sequence[str]) -> ParsedChoice:
    answer = normalise(clean)
    norm = [normalise(o) for o in options]
    for label, opt in zip(labels, norm):
        if opt and answer == opt:
            return ParsedChoice(label, "option_text")  # type: ignore[arg-type]
    padded = f" {answer} "
    spans: dict[str, list[tuple[int, int]]] = {}
    for label, opt in zip(labels, norm):
        if not opt:
            continue
        needle = f" {opt} "
        start = padded.find(needle)
        while start != -1:
            spans.setdefault(label, []).append((start, start + len(needle)))
            start = padded.find(needle, start + 1)
    # an option found only inside another option's occurrence ("nodule" in "no nodule") loses
    standalone = []
    for label, own in spans.items():
        others = [span for lab, found in spans.items() if lab != label for span in found]
        if any(not _inside(span, others) for span in own):
            standalone.append(label)
    if len(standalone) == 1:
        return ParsedChoice(standalone[0], "option_text")  # type: ignore[arg-type]
    if len(standalone) > 1:
        return ParsedChoice(None, "both")
    return ParsedChoice(None, "none")


def _inside(span: tuple[int, int], others: list[tuple[int, int]]) -> bool:
    return any(o[0] <= span[0] and span[1] <= o[1] and o != span for o in others)


def official_valid_forms(label: str) -> list[str]:
    """The whitespace tokens the official ``clean_up_manual`` accepts as ``label`` (verbatim,
    the two newline forms included, although the text has no newline left when they are
    compared)."""
    return [f"{label}", f"{label}:", f".{label}", f".{label}:", f"{label}.", f'{label}")',
            f"{label}\n", f"\n{label}", f'("{label}":', f'("{label}")', f'("{label}").']


def parse_official(text: str | None, labels: Sequence[str] = OPTION_LABELS) -> ParsedChoice:
    """The official MediConfusion MC rule (``utils/answering.py``, ``clean_up_manual``): the
    text's newlines become spaces, it is split on single spaces, and a label counts when one of
    its forms is a whole token; one label found is the answer, none or both are invalid."""
    if text is None:
        return ParsedChoice(None, "empty")
    tokens = text.replace("\n", " ").split(" ")
    found = [la for la in labels if any(form in tokens for form in official_valid_forms(la))]
    if len(found) == 1:
        return ParsedChoice(found[0], "official")  # type: ignore[arg-type]
    return ParsedChoice(None, "official_both" if found else "official_none")
