"""Held-out evaluation of a reference checkpoint through the real Hugging Face adapter and modes.

What the model card reports: per mode (MC, GD, PS, FF with the lexical judge) the official pair
metrics on a held-out phantom benchmark, set accuracy per finding family, and the position
preference that the option-order probe looks for: the share of valid answers at displayed option
A, with the options as given and swapped (A ↔ B). A model without position bias sits near 50%
both ways; one that prefers A stays high after the swap while its accuracy collapses.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from robustness.data.types import OPTION_LABELS, Benchmark, Pair
from robustness.metrics import score_pairs
from robustness.data.image import ImageInput
from robustness.models.base import ModelAdapter
from robustness.modes.base import AnsweringMode
from robustness.data.query import Answer, Query, clean_queries, swap_options
from robustness.reference.data import pair_family
from robustness.reference.examples import (
    letter_modes,
    FindingStatements,
    PairImage,
    finding_sentence,
)


def benchmark_queries(benchmark: Benchmark) -> list[Query]:
    """The clean queries of every pair (both images, options in the benchmark's order)."""
    queries: list[Query] = []
    for pair in benchmark:
        if pair.images is None:
            raise ValueError(f"pair {pair.pair_id} has no images attached")
        images = (ImageInput.open(pair.images[0]), ImageInput.open(pair.images[1]))
        queries.extend(clean_queries(pair, images))
    return queries


def a_share(answers: Sequence[Answer]) -> float:
    """Percent of valid answers whose displayed choice is A."""
    valid = [a for a in answers if a.displayed_choice is not None]
    return 100.0 * sum(a.displayed_choice == "A" for a in valid) / max(1, len(valid))


def score_answers(pairs: Sequence[Pair], answers: Sequence[Answer]) -> dict[str, Any]:
    """Official overall metrics plus set accuracy per finding family."""
    choices = {(a.pair_id, a.image_index): a.choice for a in answers}
    overall = score_pairs(pairs, choices).overall.as_dict()
    by_family: dict[str, list[Pair]] = {}
    for pair in pairs:
        by_family.setdefault(pair_family(pair), []).append(pair)
    families = {fam: {"set_accuracy": round(score_pairs(group, choices).overall.set_accuracy, 2),
                      "pairs": len(group)}
                for fam, group in sorted(by_family.items())}
    return {"overall": overall, "per_family": families}


def evaluate_adapter(adapter: ModelAdapter, benchmark: Benchmark,
                     modes: Mapping[str, AnsweringMode], *,
                     swap_modes: Sequence[str] | None = None) -> dict[str, Any]:
    """Every mode on ``benchmark`` (and swapped options for ``swap_modes``, by default the
    modes that answer with letters)."""
    if swap_modes is None:
        swap_modes = letter_modes(modes)
    queries = benchmark_queries(benchmark)
    pairs = list(benchmark.pairs)
    results: dict[str, Any] = {}
    for name, mode in modes.items():
        mode.check(adapter)
        start = time.perf_counter()
        answers = mode.answer(adapter, queries)
        entry = score_answers(pairs, answers)
        entry["a_share"] = round(a_share(answers), 2)
        entry["seconds"] = round(time.perf_counter() - start, 1)
        if name in swap_modes:
            flipped = mode.answer(adapter, [swap_options(q) for q in queries])
            entry["swapped"] = {
                "set_accuracy": round(score_answers(pairs, flipped)["overall"]["set_accuracy"], 2),
                "a_share": round(a_share(flipped), 2),
            }
        results[name] = entry
    return results


def evaluate_checkpoint(path: str | Path, benchmark: Benchmark,
                        modes: Mapping[str, AnsweringMode], *, batch_size: int = 16,
                        swap_modes: Sequence[str] | None = None) -> dict[str, Any]:
    """Load the checkpoint folder with the Hugging Face adapter (CPU, float32) and evaluate it."""
    from robustness.models.hf import HFAdapter

    adapter = HFAdapter(str(path), device="cpu", dtype="float32", batch_size=batch_size,
                        local_files_only=True)
    try:
        return evaluate_adapter(adapter, benchmark, modes, swap_modes=swap_modes)
    finally:
        adapter.close()


def judge_paraphrases(judge, statements: FindingStatements, items: Sequence[PairImage],
                      threshold: float = 3) -> list[tuple[str, bool, PairImage, Any]]:
    """A judge on paraphrased findings, no model involved: every wording ``statements`` know for
    each image's right finding and for its rival (the pair's other finding) is stated alone as
    a one-sentence answer to the image's pair. Returns (wording, is_rival, image, choice) per
    statement; the right finding should win and the rival never should."""
    from robustness.metrics import threshold_choice
    from robustness.modes.judge import parse_judge_scores

    verdicts = []
    for item in items:
        right = OPTION_LABELS.index(item.correct)
        for cls, rival in ((item.answer_classes[right], False),
                           (item.answer_classes[1 - right], True)):
            for text in statements.wordings(item.pair.question, cls):
                scores = parse_judge_scores(judge.reply(item.pair.options, finding_sentence(text)))
                choice = threshold_choice(scores["A"], scores["B"], threshold) if scores else None
                verdicts.append((text, rival, item, choice))
    return verdicts
