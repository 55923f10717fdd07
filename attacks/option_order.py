"""``option_swap``: show the two options in the opposite order and measure order sensitivity.

The truth moves with the option text: the displayed letters swap, ``label_map`` records that
displayed A is now the original B, and ``correct`` (a displayed label) is remapped, so every
choice still maps back to the pair's original labels and scores against the same annotations.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from attacks.base import (Answers, Condition, Probe, ProbeContext, Queries, QueryKey,
                          index_by_key, percent, truth)
from robustness.data.types import OPTION_LABELS, Choice, OptionLabel, Pair
from robustness.data.query import Answer, Query, swap_options

# Keys of ``Answer.raw`` that carry per-letter scores, keyed by *displayed* letter, as the
# modes write them: GD ``letter_probs`` (softmax over the letters) and ``letter_logprobs``;
# PS ``option_scores`` (normalised log-likelihoods of the option texts).
PROBABILITY_KEYS = ("letter_probs",)
LOG_SCORE_KEYS = ("letter_logprobs", "option_scores")


class OptionSwap(Probe):
    """Options in the opposite order; adds order consistency, position bias and PriDe scores."""

    name = "option_swap"

    def __init__(self, name: str | None = None) -> None:
        self._set_name(name)

    def conditions(self) -> list[Condition]:
        return [Condition(name=self.name, probe=self.name, params={"order": "reversed"})]

    def apply(self, condition: Condition, pair: Pair, queries: tuple[Query, Query],
              ctx: ProbeContext) -> Sequence[Query]:
        return tuple(swap_options(q) for q in queries)

    def extra_metrics(self, condition: Condition, clean_answers: Answers, probe_answers: Answers,
                      probe_queries: Queries) -> dict[str, Any]:
        return order_metrics(index_by_key(clean_answers), index_by_key(probe_answers),
                             index_by_key(probe_queries))


# ------------------------------------------------------------------------------- metrics


def _share_of_a(answers: Sequence[Answer]) -> float | None:
    valid = [a for a in answers if a.displayed_choice is not None]
    return percent(sum(a.displayed_choice == "A" for a in valid), len(valid))


def order_metrics(clean: Mapping[QueryKey, Answer], swapped: Mapping[QueryKey, Answer],
                  queries: Mapping[QueryKey, Query]) -> dict[str, Any]:
    """Order consistency, position bias and (with probabilities) PriDe-debiased accuracy.

    - ``order_consistency``: % of images whose chosen option *content* (original label) is the
      same in both orders; an invalid answer on either side counts as inconsistent.
    - ``position_bias_clean`` / ``_swapped``: % of valid answers that are the displayed letter
      A in each order; ``position_bias`` is their mean (50 = no preference for a position).
    - ``pride``: see :func:`pride_metrics` (only when answers carry letter/option scores).
    """
    keys = sorted(set(clean) & set(swapped))
    consistent = sum(1 for k in keys
                     if clean[k].choice is not None and clean[k].choice == swapped[k].choice)
    bias_clean = _share_of_a([clean[k] for k in keys])
    bias_swapped = _share_of_a([swapped[k] for k in keys])
    out: dict[str, Any] = {
        "n_images": len(keys),
        "order_consistency": percent(consistent, len(keys)),
        "position_bias_clean": bias_clean,
        "position_bias_swapped": bias_swapped,
        "position_bias": (round((bias_clean + bias_swapped) / 2, 2)
                          if bias_clean is not None and bias_swapped is not None else None),
    }
    pride = pride_metrics(clean, swapped, queries)
    if pride is not None:
        out["pride"] = pride
    return out


def position_logprobs(answer: Answer) -> tuple[float, float] | None:
    """Normalised log-probabilities of displayed positions (A, B) from ``answer.raw``, if any.

    Accepts ``raw["letter_probs"]`` (probabilities), ``raw["letter_logprobs"]`` or
    ``raw["option_scores"]`` (log-scale scores), each ``{"A": x, "B": y}`` keyed by the
    *displayed* letter. Returns None for failed answers or answers without usable scores.
    """
    if answer.error or not isinstance(answer.raw, Mapping):
        return None
    for key in PROBABILITY_KEYS + LOG_SCORE_KEYS:
        scores = answer.raw.get(key)
        if not isinstance(scores, Mapping) or not all(l in scores for l in OPTION_LABELS):
            continue
        try:
            values = [float(scores[l]) for l in OPTION_LABELS]
        except (TypeError, ValueError):
            return None
        if key in PROBABILITY_KEYS:
            if any(v < 0 or math.isnan(v) for v in values) or sum(values) <= 0:
                return None
            values = [math.log(max(v, 1e-300)) for v in values]
        if any(math.isnan(v) or v == math.inf for v in values) or max(values) == -math.inf:
            return None
        top = max(values)
        norm = top + math.log(sum(math.exp(v - top) for v in values))
        return (values[0] - norm, values[1] - norm)
    return None


def _argmax(scores: tuple[float, float]) -> OptionLabel:
    return "A" if scores[0] >= scores[1] else "B"


def _accuracy(choices: Mapping[QueryKey, Choice], truths: Mapping[QueryKey, OptionLabel]
              ) -> dict[str, Any]:
    """Individual and set accuracy and confusion on complete pairs (both images present)."""
    pairs = sorted({pid for pid, _ in choices if (pid, 1) in choices and (pid, 2) in choices})
    right = both = confused = 0
    for pid in pairs:
        c1, c2 = choices[(pid, 1)], choices[(pid, 2)]
        ok1, ok2 = c1 == truths[(pid, 1)], c2 == truths[(pid, 2)]
        right += ok1 + ok2
        both += ok1 and ok2
        confused += c1 is not None and c1 == c2
    return {"set_accuracy": percent(both, len(pairs)),
            "individual_accuracy": percent(right, 2 * len(pairs)),
            "confusion": percent(confused, len(pairs)), "n_pairs": len(pairs)}


def pride_metrics(clean: Mapping[QueryKey, Answer], swapped: Mapping[QueryKey, Answer],
                  queries: Mapping[QueryKey, Query]) -> dict[str, Any] | None:
    """PriDe-style debiasing (Zheng et al., ICLR 2024) from the two orders of every image.

    The observed probability of displayed position d factorises as prior(d) × debiased(option
    shown at d). Over the cyclic permutations of the options (for two options: the clean and
    the swapped order) each option visits each position once, so the mean log-probability of
    position d over both orders estimates log prior(d) up to a constant. We average these
    per-image priors over all images (PriDe's global prior; here estimated on every image, as
    both orders were asked anyway) and debias the clean order: P(option at d) ∝ P_obs(d) /
    prior(d). ``permutation_averaged`` uses each image's own prior instead, which equals the
    geometric mean of an option's probability over both orders. Accuracy is reported on pairs
    whose two images have scores in both orders, with ``observed`` (argmax of clean scores) on
    the same pairs for comparison. Returns None when no answer carries scores.
    """
    per_image: dict[QueryKey, tuple[tuple[float, float], tuple[float, float]]] = {}
    for key, q in queries.items():
        if key not in clean or key not in swapped:
            continue
        lc, ls = position_logprobs(clean[key]), position_logprobs(swapped[key])
        if lc is not None and ls is not None:
            per_image[key] = (lc, ls)
    if not per_image:
        return None
    priors = []
    for lc, ls in per_image.values():
        logs = [(lc[d] + ls[d]) / 2 for d in (0, 1)]
        top = max(logs)  # normalise in log space: both can be tiny
        weights = [math.exp(v - top) for v in logs]
        priors.append((weights[0] / sum(weights), weights[1] / sum(weights)))
    prior = (sum(p[0] for p in priors) / len(priors), sum(p[1] for p in priors) / len(priors))

    truths: dict[QueryKey, OptionLabel] = {}
    observed: dict[QueryKey, Choice] = {}
    debiased: dict[QueryKey, Choice] = {}
    averaged: dict[QueryKey, Choice] = {}
    for key, (lc, ls) in per_image.items():
        q = queries[key]  # swapped order; the clean order shows the options the other way round
        clean_map = (q.label_map[1], q.label_map[0])
        truths[key] = truth(q)
        observed[key] = clean_map[OPTION_LABELS.index(_argmax(lc))]
        deb = (lc[0] - math.log(max(prior[0], 1e-300)), lc[1] - math.log(max(prior[1], 1e-300)))
        debiased[key] = clean_map[OPTION_LABELS.index(_argmax(deb))]
        # option shown at clean position d sits at swapped position 1 - d
        avg = ((lc[0] + ls[1]) / 2, (lc[1] + ls[0]) / 2)
        averaged[key] = clean_map[OPTION_LABELS.index(_argmax(avg))]
    return {
        "n_images": len(per_image),
        "prior": {"A": round(prior[0], 4), "B": round(prior[1], 4)},
        "observed": _accuracy(observed, truths),
        "debiased": _accuracy(debiased, truths),
        "permutation_averaged": _accuracy(averaged, truths),
    }
