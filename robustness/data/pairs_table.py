"""The user's own confusing pairs: a CSV, TSV, JSON Lines or JSON table with a minimal schema.

Required columns: ``pair_id``, ``question``, ``option_A``, ``option_B``, ``image_1``, ``image_2``,
``answer_1``, ``answer_2`` (A or B, different). Optional: ``category`` (one or several, split on
``;`` or ``|``), ``caption_1``, ``caption_2``; any other column (``paraphrase_*`` included) is
kept as metadata. Column names map through ``dataset.columns`` (``{question: Frage}``). Images
are paths relative to the table, inside its folder unless ``allow_outside``. Every problem of a
table is collected — each naming the file, row and field — before any is reported.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from robustness.data.types import OPTION_LABELS, Pair
from robustness.errors import UserError

REQUIRED = ("pair_id", "question", "option_A", "option_B", "image_1", "image_2", "answer_1",
            "answer_2")
OPTIONAL = ("category", "caption_1", "caption_2")
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json")
UNCATEGORISED = "uncategorised"


@dataclass
class Row:
    """One record of the table, with where it is (``row 3`` / ``line 3`` / ``record 3``)."""

    where: str
    values: dict[str, Any]


@dataclass
class TableCheck:
    """What reading and checking a table found."""

    path: Path
    rows: list[Row] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def problem(self, where: str, column: str, message: str) -> None:
        self.problems.append(f"{self.path}: {where}, field {column}: {message}")


def read_rows(path: Path) -> tuple[list[Row], list[str]]:
    """The table's records and its column names (header, or the keys of its records)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read ({type(err).__name__}); expected UTF-8 text") from None
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        reader = csv.DictReader(io.StringIO(text), delimiter="\t" if suffix == ".tsv" else ",")
        rows = [Row(f"row {i}", {k: v for k, v in r.items() if k is not None})
                for i, r in enumerate(reader, start=2)]
        return rows, [c for c in (reader.fieldnames or [])]
    if suffix == ".jsonl":
        rows = []
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as err:
                raise UserError(f"{path}: line {i}: not JSON ({err.msg})") from None
            if not isinstance(record, dict):
                raise UserError(f"{path}: line {i}: expected a JSON object per line")
            rows.append(Row(f"line {i}", record))
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as err:
            raise UserError(f"{path}: not JSON ({err.msg} at line {err.lineno})") from None
        if isinstance(data, dict):  # {pair_id: record}
            data = [{"pair_id": k, **v} if isinstance(v, dict) else v for k, v in data.items()]
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise UserError(f"{path}: expected a list of pair objects (or an object of them)")
        rows = [Row(f"record {i}", r) for i, r in enumerate(data, start=1)]
    else:
        raise UserError(f"{path}: expected a .csv, .tsv, .jsonl or .json table")
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row.values if k not in columns]
    return rows, columns


def column_map(columns: Mapping[str, str] | None) -> dict[str, str]:
    """Canonical name → the table's name (``dataset.columns``), checked."""
    mapping = dict(columns or {})
    unknown = [k for k in mapping if k not in REQUIRED + OPTIONAL]
    if unknown:
        raise UserError(f"dataset.columns: unknown field(s) {', '.join(unknown)} (fields: "
                        f"{', '.join(REQUIRED + OPTIONAL)})")
    return mapping


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def split_categories(value: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in re.split(r"[;|]", value) if c.strip())


def resolve_image(check: TableCheck, row: Row, column: str, value: str,
                  allow_outside: bool) -> Path | None:
    """The image file a row names, or None (with a problem recorded)."""
    if not value:
        check.problem(row.where, column, "empty")
        return None
    base = check.path.parent.resolve()
    path = Path(value).expanduser()
    path = (path if path.is_absolute() else base / path).resolve()
    if not allow_outside and not path.is_relative_to(base):
        check.problem(row.where, column, f"{value} is outside the table's folder {base} "
                                         "(dataset.allow_outside=true allows it)")
        return None
    if not path.is_file():
        check.problem(row.where, column, f"{value}: no such file")
        return None
    return path


def check_table(path: Path, columns: Mapping[str, str] | None = None,
                allow_outside: bool = False) -> TableCheck:
    """Read ``path`` and collect every schema problem (images are only located here)."""
    check = TableCheck(Path(path))
    names = column_map(columns)
    rows, header = read_rows(check.path)
    if not rows:
        check.problems.append(f"{check.path}: no pairs in the table")
        return check
    missing = [c for c in REQUIRED if names.get(c, c) not in header]
    for c in missing:
        hint = f" (dataset.columns.{c}=<your column> maps it)" if c not in names else ""
        check.problems.append(f"{check.path}: column {names.get(c, c)!r} missing{hint}")
    if missing:
        return check
    seen: dict[str, str] = {}
    for row in rows:
        canon = {c: row.values.get(names.get(c, c)) for c in REQUIRED + OPTIONAL}
        for c in ("pair_id", "question", "option_A", "option_B"):
            if not _text(canon[c]):
                check.problem(row.where, names.get(c, c), "empty")
        pid = _text(canon["pair_id"])
        if pid and pid in seen:
            check.problem(row.where, names.get("pair_id", "pair_id"),
                          f"{pid!r} repeats the pair id of {seen[pid]}")
        seen.setdefault(pid, row.where)
        answers = []
        for c in ("answer_1", "answer_2"):
            value = _text(canon[c]).upper()
            if value not in OPTION_LABELS:
                check.problem(row.where, names.get(c, c), f"expected A or B, got {canon[c]!r}")
            answers.append(value)
        if answers[0] in OPTION_LABELS and answers[0] == answers[1]:
            check.problem(row.where, names.get("answer_2", "answer_2"),
                          f"both images answer {answers[0]}: a confusing pair's answers are "
                          "opposite")
        if _text(canon["option_A"]) and _text(canon["option_A"]) == _text(canon["option_B"]):
            check.problem(row.where, names.get("option_B", "option_B"), "the same as option_A")
        images = [resolve_image(check, row, names.get(c, c), _text(canon[c]), allow_outside)
                  for c in ("image_1", "image_2")]
        if images[0] is not None and images[0] == images[1]:
            check.problem(row.where, names.get("image_2", "image_2"),
                          "the same file as image_1")
        row.values = {**row.values, "_canon": canon, "_images": images,
                      "_answers": answers}
        check.rows.append(row)
    return check


def build_pairs(check: TableCheck, columns: Mapping[str, str] | None,
                prepared: Mapping[Path, Path]) -> list[Pair]:
    """Pairs from a checked table; ``prepared`` maps each source image to the file to read."""
    names = column_map(columns)
    used = {names.get(c, c) for c in REQUIRED + OPTIONAL}
    pairs = []
    for row in check.rows:
        canon, images, answers = (row.values["_canon"], row.values["_images"],
                                  row.values["_answers"])
        cats = split_categories(_text(canon["category"])) or (UNCATEGORISED,)
        extra = {k: v for k, v in row.values.items() if k not in used and not k.startswith("_")}
        captions = (_text(canon["caption_1"]), _text(canon["caption_2"]))
        if any(captions):
            extra["captions"] = list(captions)
        pairs.append(Pair(pair_id=_text(canon["pair_id"]), question=_text(canon["question"]),
                          options=(_text(canon["option_A"]), _text(canon["option_B"])),
                          correct=(answers[0], answers[1]),  # type: ignore[arg-type]
                          categories=(cats, cats),
                          images=(prepared[images[0]], prepared[images[1]]), extra=extra))
    return pairs


def content_hash(pairs: Iterable[Pair]) -> str:
    """sha256 over the pairs' fields and the bytes of the images a model will see."""
    digest = hashlib.sha256()
    for pair in pairs:
        assert pair.images is not None
        record = {"pair_id": pair.pair_id, "question": pair.question,
                  "options": list(pair.options), "correct": list(pair.correct),
                  "categories": [list(c) for c in pair.categories],
                  "images": [hashlib.sha256(p.read_bytes()).hexdigest() for p in pair.images]}
        digest.update(json.dumps(record, sort_keys=True, ensure_ascii=False).encode())
    return digest.hexdigest()
