"""Read model predictions: our JSON Lines records or the official MediConfusion results files.

JSON Lines: one record per image, ``{"pair_id": "10001", "image": 1, "choice": "A"}`` (extra
fields allowed). Official: ``{"10001": {"answer": {"im1": {"A": 10, "B": 0, ...}, "im2": ...}}}``,
turned into choices with the threshold rule. The format is detected from the content.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Collection, Iterable, Literal

from robustness.data.types import Choice
from robustness.data.text_files import read_text
from robustness.errors import UserError
from robustness.metrics import ChoiceKey, threshold_choice

Format = Literal["jsonl", "official"]


def detect_format(text: str) -> Format:
    """Official results are one JSON object keyed by pair id; anything else is JSON Lines."""
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        return "jsonl"
    if isinstance(whole, dict) and "pair_id" not in whole:
        return "official"
    return "jsonl"


def _check_known(path: Path, where: str, pair_id: str, known: Collection[str] | None) -> None:
    if known is not None and pair_id not in known:
        raise UserError(f"{path}: {where}: unknown pair id {pair_id!r}")


def _parse_jsonl(path: Path, text: str, known: Collection[str] | None) -> dict[ChoiceKey, Choice]:
    choices: dict[ChoiceKey, Choice] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"line {lineno}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}: {where}: malformed JSON ({err.msg})") from None
        if not isinstance(rec, dict):
            raise UserError(f"{path}: {where}: expected an object")
        for name in ("pair_id", "image", "choice"):
            if name not in rec:
                raise UserError(f"{path}: {where}: missing field '{name}'")
        pair_id = rec["pair_id"]
        if isinstance(pair_id, int) and not isinstance(pair_id, bool):
            pair_id = str(pair_id)
        if not isinstance(pair_id, str):
            raise UserError(f"{path}: {where}: field 'pair_id' must be a string")
        image = rec["image"]
        if isinstance(image, bool) or image not in (1, 2):
            raise UserError(f"{path}: {where}: field 'image' must be 1 or 2, got {image!r}")
        choice = rec["choice"]
        if choice not in ("A", "B", None):
            raise UserError(f"{path}: {where}: field 'choice' must be \"A\", \"B\" or null, "
                            f"got {choice!r}")
        _check_known(path, where, pair_id, known)
        key = (pair_id, int(image))
        if key in choices:
            raise UserError(f"{path}: {where}: pair {pair_id} image {image} given twice")
        choices[key] = choice
    if not choices:
        raise UserError(f"{path}: no prediction records")
    return choices


def _official_score(path: Path, pair_id: str, slot: str, entry: Any, label: str) -> float:
    value = entry.get(label) if isinstance(entry, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{path}: pair {pair_id}: field 'answer.{slot}.{label}' must be a number")
    return float(value)


def _parse_official(path: Path, whole: dict, threshold: float,
                    known: Collection[str] | None) -> dict[ChoiceKey, Choice]:
    choices: dict[ChoiceKey, Choice] = {}
    for pair_id, record in whole.items():
        _check_known(path, f"pair {pair_id}", pair_id, known)
        answer = record.get("answer") if isinstance(record, dict) else None
        if not isinstance(answer, dict):
            raise UserError(f"{path}: pair {pair_id}: missing field 'answer'")
        for image, slot in ((1, "im1"), (2, "im2")):
            if slot not in answer:
                raise UserError(f"{path}: pair {pair_id}: missing field 'answer.{slot}'")
            entry = answer[slot]
            a = _official_score(path, pair_id, slot, entry, "A")
            b = _official_score(path, pair_id, slot, entry, "B")
            choices[(pair_id, image)] = threshold_choice(a, b, threshold)
    if not choices:
        raise UserError(f"{path}: no pairs in results file")
    return choices


def read_predictions(path: str | Path, *, threshold: float = 3,
                     known_pairs: Collection[str] | None = None) -> tuple[dict[ChoiceKey, Choice], Format]:
    """Read a predictions file; returns the choices keyed by (pair id, image) and the format."""
    path = Path(path)
    text = read_text(path, "a predictions file")
    fmt = detect_format(text)
    if fmt == "official":
        return _parse_official(path, json.loads(text), threshold, known_pairs), fmt
    return _parse_jsonl(path, text, known_pairs), fmt


def complete_pairs(path: Path, choices: dict[ChoiceKey, Choice]) -> list[str]:
    """Pair ids with both images answered, in first-seen order; an image missing is an error."""
    seen: dict[str, set[int]] = {}
    for pair_id, image in choices:
        seen.setdefault(pair_id, set()).add(image)
    for pair_id, images in seen.items():
        if images != {1, 2}:
            missing = ({1, 2} - images).pop()
            raise UserError(f"{path}: pair {pair_id}: image {missing} has no prediction")
    return list(seen)


def write_jsonl(path: str | Path, records: Iterable[dict]) -> None:
    """Write prediction records as JSON Lines (one object per line, UTF-8)."""
    with open(path, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
