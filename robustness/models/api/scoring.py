"""Turning what servers return about log-probabilities into the adapter interface's numbers.

- Next-token scores (GD): the server's top-k log-probabilities for the first generated token;
  a candidate's score merges its variants ("A", " A", "A\\n": same text once stripped) by
  log-sum-exp. A candidate not among the top-k gets ``-inf`` (its probability is below the
  k-th, which the server does not tell).
- Continuation log-likelihood (PS): vLLM's ``prompt_logprobs`` for a prompt that ends with the
  continuation; the tokens covering the continuation's characters are summed, counted from the
  end (a token straddling the boundary counts, as in lm-evaluation-harness).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

from robustness.models.api.failures import MALFORMED, ApiFailure
from robustness.models.base import ContinuationScore


def logsumexp(values: Iterable[float]) -> float:
    vals = [v for v in values if v != -math.inf]
    if not vals:
        return -math.inf
    top = max(vals)
    return top + math.log(sum(math.exp(v - top) for v in vals))


def merge_candidate_logprobs(top: Sequence[tuple[str, float]],
                             candidates: Sequence[str]) -> dict[str, float]:
    """Candidate -> log-probability of the next token, merging whitespace variants."""
    out: dict[str, float] = {}
    for cand in candidates:
        target = cand.strip()
        out[cand] = logsumexp(lp for tok, lp in top if tok is not None and tok.strip() == target)
    return out


def _first_entry(position: Mapping[str, Any]) -> Mapping[str, Any]:
    """The prompt token's own entry (vLLM puts it first; with ``prompt_logprobs=0`` it is the
    only one)."""
    for _token_id, info in position.items():
        return info
    raise ApiFailure(MALFORMED, "empty prompt_logprobs entry")


def continuation_score(prompt_logprobs: Sequence[Any] | None, continuation: str) -> ContinuationScore:
    """Sum of the log-probabilities of the final prompt tokens that spell ``continuation``."""
    if not prompt_logprobs:
        raise ApiFailure(MALFORMED, "server returned no prompt_logprobs (is it vLLM?)")
    need = len(continuation)
    total, n_tokens, covered = 0.0, 0, 0
    for position in reversed(prompt_logprobs):
        if covered >= need:
            break
        if not isinstance(position, Mapping):
            raise ApiFailure(MALFORMED, "continuation reaches the start of the prompt")
        info = _first_entry(position)
        try:
            logprob = float(info["logprob"])
            text = info.get("decoded_token")
        except (KeyError, TypeError, ValueError) as exc:
            raise ApiFailure(MALFORMED, f"bad prompt_logprobs entry: {exc}") from None
        if text is None:
            raise ApiFailure(MALFORMED, "prompt_logprobs without decoded_token")
        total += logprob
        n_tokens += 1
        covered += len(text)
    return ContinuationScore(logprob=total, n_tokens=n_tokens, n_chars=len(continuation))
