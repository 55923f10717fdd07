"""Adversarial conditions in a run: the runner's helper for attacks that need the model.

The runner owns the loop; this helper owns what attacks need from it: the gradient oracle of the
white-box model (built once, on the uncached adapter) for gradient attacks, a margin scorer
through the *cached* adapter for query attacks (their queries are cached and counted), the clean
answers (the confusion attack aims at the other image's answer), the attacked queries of each
condition (computed per batch of pairs, kept for explainers), the transfer sets written after
each condition, and each pair's minimal breaking budget once every budget of an attack has run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from attacks.adversarial import AdversarialAttack, min_eps_per_pair
from attacks.base import Condition, Probe, ProbeContext
from attacks.transfer import write_transfer_set
from robustness.data.query import Answer, Query
from robustness.data.types import Benchmark, Pair
from robustness.errors import ConfigError
from robustness.models.base import ModelAdapter
from robustness.modes.base import AnsweringMode, ScoreKind

Key = tuple[str, int]


class AttackSession:
    """Everything a run's attack conditions need, built only if the run has any."""

    def __init__(self, probes: Sequence[Probe], adapter: ModelAdapter,
                 mode: AnsweringMode) -> None:
        self.attacks = [p for p in probes if isinstance(p, AdversarialAttack)]
        self.adapter = adapter  # the cached one: query attacks ask through it
        self.model = adapter.unwrap()
        self.mode = mode
        self._oracle: Any = None
        self._scorer: Any = None
        self.clean_answers: dict[Key, Answer] = {}
        self.attacked: dict[str, dict[str, tuple[Query, Query]]] = {}
        if self.attacks:
            self.check()

    def check(self) -> None:
        """Refuse, before any work, a model without gradients or a mode without a margin."""
        from explain.whitebox import require_white_box

        names = ", ".join(a.name for a in self.attacks)
        if self.mode.score_kind is ScoreKind.OPTION and self.mode.capability.value == "generate":
            raise ConfigError(f"probe {names}: FF answers are judged free text, with no margin "
                              "to attack; use mode=mc, gd or ps")
        gradient = [a.name for a in self.attacks if a.needs == "gradients"]
        if gradient:
            require_white_box(self.model, f"probe {', '.join(gradient)}")
        if any(a.needs == "scores" for a in self.attacks):
            from explain.scoring import AnswerScorer

            AnswerScorer(self.adapter, self.mode)  # refuses a model without the scores needed

    def handles(self, probe: Probe | None) -> bool:
        return isinstance(probe, AdversarialAttack)

    def scorer(self, queries: Sequence[Query], labels: Sequence[Any]) -> Any:
        """Margins of ``labels`` (displayed) on the queries' images, through the answer cache."""
        from explain.scoring import AnswerScorer

        if self._scorer is None:
            self._scorer = AnswerScorer(self.adapter, self.mode)
        return self._scorer.margins(queries, labels)

    @property
    def oracle(self) -> Any:
        if self._oracle is None:
            from explain.whitebox import AdapterGradientOracle

            self._oracle = AdapterGradientOracle(self.model, self.mode)
        return self._oracle

    def prepare(self, probe: AdversarialAttack, condition: Condition, pairs: Sequence[Pair],
                clean: Callable[[Pair], tuple[Query, Query]], ctx: ProbeContext) -> None:
        """Attack a batch of pairs (one oracle batch) and keep their queries."""
        done = self.attacked.setdefault(condition.name, {})
        todo = [(p, clean(p)) for p in pairs if p.pair_id not in done]
        if todo:
            if probe.needs == "scores":
                attacked = probe.perturb_with_scores(condition, todo, self.scorer, ctx,
                                                     self.clean_answers)
            else:
                attacked = probe.perturb(condition, todo, self.oracle, ctx, self.clean_answers)
            for (pair, _), qs in zip(todo, attacked):
                done[pair.pair_id] = qs

    def queries(self, probe: AdversarialAttack, condition: Condition, pair: Pair,
                clean: Callable[[Pair], tuple[Query, Query]],
                ctx: ProbeContext) -> tuple[Query, Query]:
        self.prepare(probe, condition, [pair], clean, ctx)
        return self.attacked[condition.name][pair.pair_id]

    def save(self, run_dir: Path, probe: AdversarialAttack, condition: Condition,
             queries: Mapping[Key, Query], clean: Mapping[Key, Query],
             benchmark: Benchmark) -> None:
        """The condition's transfer set (adversarial PNGs and manifest)."""
        write_transfer_set(run_dir, condition.name, queries, clean, benchmark,
                           surrogate=self.model.identity(),
                           attack={"name": probe.name, "class": type(probe).__name__,
                                   "condition": condition.name, "params": dict(condition.params)})

    def finish(self, conditions: dict[str, dict[str, Any]],
               correct: Mapping[str, Mapping[str, bool]], pair_ids: Sequence[str]) -> None:
        """Add each attack's ``min_eps_per_pair`` to the probe metrics of all its conditions."""
        for attack in self.attacks:
            smallest = min_eps_per_pair(attack, pair_ids, correct)
            for condition in attack.conditions():
                conditions[condition.name].setdefault("probe_metrics", {})[
                    "min_eps_per_pair"] = smallest
