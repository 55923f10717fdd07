"""Read what the gate compares: run directories written by ``robustness`` or predictions files.

A run directory holds ``summary.json`` (model, mode, seed, benchmark {name, path, content_hash,
n_pairs}, conditions {NAME: {probe: {name, params}, ...}}) and ``predictions/<NAME>.jsonl``
(records with pair_id, image, choice in original labels and the gold label ``correct``). A file
is a single clean condition: official MediConfusion results (``{"10001": {"answer": ...}}``) or
JSON Lines predictions. Every problem is a :class:`UserError` naming the file and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Literal, Mapping

from robustness.data.mediconfusion import load_benchmark
from robustness.data.types import Benchmark, Choice, OptionLabel
from robustness.data.text_files import read_text
from robustness.errors import UserError
from robustness.metrics import ChoiceKey
from robustness.predictions import complete_pairs, detect_format, read_predictions

CLEAN = "clean"
InputKind = Literal["run", "official", "jsonl"]


@dataclass
class ConditionPredictions:
    """One condition of one run: choices and, where recorded, gold labels per (pair, image)."""

    name: str
    source: Path
    choices: dict[ChoiceKey, Choice]
    gold: dict[ChoiceKey, OptionLabel]  # from records' ``correct``; may be empty
    pair_ids: list[str]


@dataclass
class RunInput:
    """One side of the comparison, as read from disk (predictions loaded on demand)."""

    path: Path
    kind: InputKind
    model: str | None = None
    mode: str | None = None
    prompt: str | None = None  # the run's base prompting strategy (e.g. direct, cot)
    dataset: str | None = None
    seed: int | None = None
    benchmark_name: str | None = None
    benchmark_hash: str | None = None
    benchmark_path: str | None = None
    probes: dict[str, Mapping[str, Any] | None] = field(default_factory=dict)  # condition -> probe
    conditions: dict[str, ConditionPredictions] = field(default_factory=dict)

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json" if self.kind == "run" else self.path

    @property
    def label(self) -> str:
        """How reports name this side: the model if known, else the path."""
        return self.model or self.path.name

    def describe(self) -> dict[str, Any]:
        """Provenance for the JSON, markdown and JUnit outputs."""
        return {"path": str(self.path), "kind": self.kind, "model": self.model, "mode": self.mode,
                "prompt": self.prompt, "seed": self.seed, "benchmark": self.benchmark_name}


def normalise_hash(value: str) -> str:
    """``sha256:ABC`` and ``abc`` name the same content."""
    value = value.strip().lower()
    return value.split(":", 1)[1] if value.startswith("sha256:") else value


def open_input(path: str | Path) -> RunInput:
    """Open a run directory (or its ``summary.json``) or a predictions file; no predictions yet."""
    path = Path(path)
    if path.is_file() and path.name == "summary.json":
        path = path.parent
    if path.is_dir():
        return _open_run_dir(path)
    if not path.exists():
        raise UserError(f"{path}: no such run directory or predictions file")
    kind: InputKind = detect_format(_read_text(path))
    return RunInput(path=path, kind=kind, probes={CLEAN: None})


def _read_text(path: Path) -> str:
    return read_text(path, "a results file",
                     hint=" (is this a run directory written by robustness?)")


def _load_json(path: Path) -> Any:
    text = _read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None


def _field(path: Path, obj: Mapping[str, Any], name: str, kind: type | tuple[type, ...],
           prefix: str = "", required: bool = True) -> Any:
    where = f"{prefix}{name}"
    if name not in obj or obj[name] is None:
        if required:
            raise UserError(f"{path}: missing field '{where}'")
        return None
    value = obj[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        expected = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise UserError(f"{path}: field '{where}' must be {expected}, got {type(value).__name__}")
    return value


def _open_run_dir(path: Path) -> RunInput:
    summary_path = path / "summary.json"
    summary = _load_json(summary_path)
    if not isinstance(summary, dict):
        raise UserError(f"{summary_path}: expected a JSON object")
    bench = _field(summary_path, summary, "benchmark", dict)
    content_hash = _field(summary_path, bench, "content_hash", str, "benchmark.")
    if not content_hash.strip():
        raise UserError(f"{summary_path}: field 'benchmark.content_hash' is empty")
    conditions = _field(summary_path, summary, "conditions", dict)
    if CLEAN not in conditions:
        raise UserError(f"{summary_path}: missing field 'conditions.{CLEAN}' (the unperturbed run)")
    probes: dict[str, Mapping[str, Any] | None] = {}
    for name, entry in conditions.items():
        prefix = f"conditions.{name}."
        if not isinstance(entry, dict):
            raise UserError(f"{summary_path}: field 'conditions.{name}' must be an object")
        probe = _field(summary_path, entry, "probe", dict, prefix, required=name != CLEAN)
        if probe is not None:
            _field(summary_path, probe, "name", str, f"{prefix}probe.")
            params = _field(summary_path, probe, "params", dict, f"{prefix}probe.", required=False)
            probe = {"name": probe["name"], "params": params or {}}
        probes[name] = probe
    seed = _field(summary_path, summary, "seed", int, required=False)
    return RunInput(
        path=path,
        kind="run",
        model=_field(summary_path, summary, "model", str, required=False),
        mode=_field(summary_path, summary, "mode", str),
        prompt=_field(summary_path, summary, "prompt", str, required=False),
        dataset=_field(summary_path, summary, "dataset", str, required=False),
        seed=seed,
        benchmark_name=_field(summary_path, bench, "name", str, "benchmark.", required=False),
        benchmark_hash=normalise_hash(content_hash),
        benchmark_path=_field(summary_path, bench, "path", str, "benchmark.", required=False),
        probes=probes,
    )


def _read_gold(path: Path, choices: Mapping[ChoiceKey, Choice]) -> dict[ChoiceKey, OptionLabel]:
    """The ``correct`` field of JSON Lines records (already validated by ``read_predictions``)."""
    gold: dict[ChoiceKey, OptionLabel] = {}
    text = _read_text(path)
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        rec = json.loads(line)
        value = rec.get("correct")
        if value is None:
            continue
        if value not in ("A", "B"):
            raise UserError(f"{path}: line {lineno}: field 'correct' must be \"A\" or \"B\", "
                            f"got {value!r}")
        gold[(str(rec["pair_id"]), int(rec["image"]))] = value
    partial = [key for key in choices if key not in gold]
    if gold and partial:
        pair_id, image = partial[0]
        raise UserError(f"{path}: pair {pair_id} image {image}: missing field 'correct' "
                        "(other records have it)")
    return gold


def predictions_file(run_dir: Path, condition: str) -> Path:
    """``predictions/<condition>.jsonl``; the runner replaces characters other than letters,
    digits and ``._-@=`` with ``_`` in the file name (``blend w=0.5`` → ``blend_w=0.5.jsonl``)."""
    safe = "".join(ch if ch.isalnum() or ch in "._-@=" else "_" for ch in condition)
    folder = run_dir / "predictions"
    exact = folder / f"{condition}.jsonl"
    if safe != condition and "/" not in condition and "\\" not in condition and exact.is_file():
        return exact
    return folder / f"{safe}.jsonl"


def load_condition(run: RunInput, name: str, *, known_pairs: Collection[str] | None,
                   threshold: float) -> ConditionPredictions:
    """Read the predictions of condition ``name`` (cached on ``run``)."""
    if name in run.conditions:
        return run.conditions[name]
    source = predictions_file(run.path, name) if run.kind == "run" else run.path
    choices, fmt = read_predictions(source, threshold=threshold, known_pairs=known_pairs)
    if run.kind == "run" and fmt != "jsonl":
        raise UserError(f"{source}: expected JSON Lines prediction records")
    gold = _read_gold(source, choices) if fmt == "jsonl" else {}
    pair_ids = complete_pairs(source, choices)
    run.conditions[name] = ConditionPredictions(name, source, choices, gold, pair_ids)
    return run.conditions[name]


def _candidate_paths(run: RunInput) -> list[Path]:
    if not run.benchmark_path:
        return []
    recorded = Path(run.benchmark_path).expanduser()
    if recorded.is_absolute():
        return [recorded]
    return [Path.cwd() / recorded, run.path / recorded]


def find_benchmark(runs: list[RunInput], annotations: str | Path | None
                   ) -> tuple[Benchmark | None, list[str]]:
    """The benchmark whose content hash the runs recorded; ``--annotations`` wins when given.

    Returns the benchmark (or None) and notes on paths tried, for error messages.
    """
    recorded = {r.benchmark_hash for r in runs if r.benchmark_hash}
    expected = next(iter(recorded)) if recorded else None
    if annotations is not None:
        bench = load_benchmark(annotations)
        if expected and normalise_hash(bench.content_hash) != expected:
            raise UserError(f"{annotations}: content hash {bench.content_hash[:12]} differs from "
                            f"the benchmark the runs recorded ({expected[:12]}); pass the "
                            "dataset.json the runs used")
        return bench, []
    notes: list[str] = []
    for run in runs:
        for candidate in _candidate_paths(run):
            if not candidate.is_file():
                continue
            bench = load_benchmark(candidate)
            if normalise_hash(bench.content_hash) == expected:
                return bench, notes
            notes.append(f"{candidate} has content hash {bench.content_hash[:12]}, the runs "
                         f"recorded {expected[:12] if expected else '?'} (changed since the run?)")
        if run.benchmark_path and not any(p.is_file() for p in _candidate_paths(run)):
            notes.append(f"{run.summary_path}: benchmark.path {run.benchmark_path} not found")
    return None, notes
