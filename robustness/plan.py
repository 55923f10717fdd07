"""What a run will ask, before it asks: ``robustness plan [overrides]`` (or ``plan=true``).

The plan builds the same parts as the run — benchmark, probes, mode, the model's adapter (not
its weights) — renders every condition's requests through the mode with a recording stand-in
for the model, keys them exactly as the answer cache does, and counts what is already cached.
What it calls ``new`` is what the run then asks the model (each key once, across conditions).
Token counts and cost are estimates, given where the adapter can estimate (API models) and the
config has prices; FF's judge requests depend on the answers and are an upper bound.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping

from robustness.models.base import GenerateRequest, ModelAdapter
from robustness.models.cache import CachedAdapter, request_key
from robustness.modes.recording import Request, RecordingAdapter

KINDS = {"GenerateRequest": "generate", "NextTokenRequest": "next_token_scores",
         "LoglikelihoodRequest": "loglikelihood"}


@dataclass
class ConditionPlan:
    name: str
    requests: int = 0
    cached: int = 0  # in the cache already, or asked earlier in this run
    kinds: Counter = field(default_factory=Counter)
    input_tokens: float = 0.0
    output_tokens: float = 0.0

    @property
    def new(self) -> int:
        return self.requests - self.cached

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "requests": self.requests, "cached": self.cached,
                "new": self.new, "kinds": dict(self.kinds)}


def _tokens(model: ModelAdapter, request: Request) -> tuple[float, float] | None:
    """Estimated (input, output) tokens of one request, where the adapter can estimate."""
    out = float(request.settings.max_new_tokens) if isinstance(request, GenerateRequest) else 1.0
    total = model.estimate_tokens(request.prompt, 0)
    return None if total is None else (float(total), out)


def _cost(prices: Mapping[str, float] | None, inp: float, out: float) -> float | None:
    if not prices:
        return None
    return (inp * float(prices.get("input_per_million", 0.0))
            + out * float(prices.get("output_per_million", 0.0))) / 1e6


def plan_run(runner: Any, explainer: Any = None) -> dict[str, Any]:
    """The plan of ``runner``'s conditions (its adapter wrapped in the answer cache)."""
    cached: CachedAdapter = runner.adapter
    model = cached.unwrap()
    identity = cached.identity()
    store = cached.store
    seen: set[str] = set()
    estimable = True
    plans: list[ConditionPlan] = []
    judge = {"requests": 0}
    ctx = runner.probe_context()
    for probe, condition in runner.conditions:
        plan = ConditionPlan(condition.name)
        queries = [q for pair in runner.benchmark.pairs
                   for q in runner.condition_queries(probe, condition, pair, ctx)]
        recorder = RecordingAdapter.like(model)
        judges: list[RecordingAdapter] = []
        runner.mode.wrap_auxiliary(lambda inner: judges.append(RecordingAdapter.like(inner))
                                   or judges[-1])
        runner.mode.answer(recorder, queries)
        judge["requests"] += sum(len(j.requests) for j in judges)
        for request in recorder.requests:
            kind = KINDS[type(request).__name__]
            key = request_key(identity, kind, request)
            plan.requests += 1
            plan.kinds[kind] += 1
            if key in seen or (store is not None and key in store):
                plan.cached += 1
            else:
                tokens = _tokens(model, request)
                if tokens is None:
                    estimable = False
                else:
                    plan.input_tokens += tokens[0]
                    plan.output_tokens += tokens[1]
            seen.add(key)
        plans.append(plan)
    total = sum(p.requests for p in plans)
    done = sum(p.cached for p in plans)
    out: dict[str, Any] = {
        "model": model.model_id, "mode": runner.mode.name, "n_pairs": len(runner.benchmark),
        "conditions": [p.as_dict() for p in plans], "total_requests": total, "cached": done,
        "new": total - done,
        "judge_requests_at_most": judge["requests"] or None,
        "estimated_tokens": ({"input": round(sum(p.input_tokens for p in plans)),
                              "output_at_most": round(sum(p.output_tokens for p in plans))}
                             if estimable else None),
        "estimated_cost_usd": None,
        "saliency": (explainer.plan(runner.benchmark, model, runner.mode)
                     if explainer is not None else None),
    }
    if estimable:
        cost = _cost(model.prices, out["estimated_tokens"]["input"],
                     out["estimated_tokens"]["output_at_most"])
        out["estimated_cost_usd"] = None if cost is None else round(cost, 4)
    return out


def format_plan(plan: Mapping[str, Any]) -> str:
    """The plan as a table for the terminal."""
    lines = [f"plan: {plan['model']} · {plan['mode']} · {plan['n_pairs']} pairs",
             f"{'condition':<22} {'requests':>9} {'cached':>8} {'new':>6}  kinds"]
    for c in plan["conditions"]:
        kinds = ", ".join(f"{k} {v}" for k, v in c["kinds"].items())
        lines.append(f"{c['name']:<22} {c['requests']:>9} {c['cached']:>8} {c['new']:>6}  {kinds}")
    lines.append(f"{'total':<22} {plan['total_requests']:>9} {plan['cached']:>8} "
                 f"{plan['new']:>6}")
    if plan.get("judge_requests_at_most"):
        lines.append(f"judge: at most {plan['judge_requests_at_most']} requests (one per answer)")
    tokens = plan.get("estimated_tokens")
    if tokens:
        cost = plan.get("estimated_cost_usd")
        lines.append(f"tokens (estimated, new requests): {tokens['input']:,} in, at most "
                     f"{tokens['output_at_most']:,} out"
                     + (f"; cost ≈ ${cost:,.4f}" if cost is not None else
                        " (no prices in the model config)"))
    saliency = plan.get("saliency")
    if saliency:
        lines.append("saliency: " + ", ".join(f"{k} {v}" for k, v in saliency.items()))
    return "\n".join(lines)


def plan_json(plan: Mapping[str, Any]) -> str:
    return json.dumps(plan, indent=2)
