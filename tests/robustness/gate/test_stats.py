"""The gate's statistics and rules: exact paired tests, contrast CIs, multiplicity, config."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from tests.helpers.paths import ROOT
from robustness.errors import ConfigError
from robustness.gate.rules import GateRules, MetricRule, load_rules, rules_from_mapping
from robustness.stats import (adjust_pvalues, bootstrap_contrast_ci, mcnemar_exact,
                              paired_bootstrap_diff_ci, sign_flip_exact)



def brute_force_sign_flip(d: list[int]) -> float:
    nonzero = [x for x in d if x]
    observed = abs(sum(d))
    hits = sum(abs(sum(s * abs(x) for s, x in zip(signs, nonzero))) >= observed
               for signs in itertools.product((-1, 1), repeat=len(nonzero)))
    return hits / 2 ** len(nonzero) if nonzero else 1.0


@pytest.mark.parametrize("seed", range(6))
def test_sign_flip_matches_enumeration(seed):
    rng = np.random.default_rng(seed)
    d = rng.integers(-2, 3, size=14).tolist()
    assert sign_flip_exact(d) == pytest.approx(brute_force_sign_flip(d))


@pytest.mark.parametrize("seed", range(6))
def test_sign_flip_equals_mcnemar_on_binary_outcomes(seed):
    rng = np.random.default_rng(100 + seed)
    a = rng.random(120) < 0.6
    b = rng.random(120) < 0.5
    d = b.astype(int) - a.astype(int)
    assert sign_flip_exact(d.tolist()) == pytest.approx(mcnemar_exact(a.tolist(), b.tolist()))


def test_sign_flip_edge_cases():
    assert sign_flip_exact([]) == 1.0
    assert sign_flip_exact([0, 0, 0]) == 1.0
    assert sign_flip_exact([1, -1]) == 1.0
    assert sign_flip_exact([-1] * 10) == pytest.approx(2 / 2**10)
    assert sign_flip_exact([2] * 10) == pytest.approx(2 / 2**10)
    with pytest.raises(ValueError):
        sign_flip_exact([0.5])


def test_contrast_ci_reproduces_the_paired_difference_ci():
    rng = np.random.default_rng(3)
    a = (rng.random(176) < 0.6).astype(float)
    b = (rng.random(176) < 0.5).astype(float)
    ones = np.ones(176)
    expected = paired_bootstrap_diff_ci(a, b, seed=7)
    assert bootstrap_contrast_ci([(1.0, b, ones), (-1.0, a, ones)], seed=7) == expected


def test_contrast_ci_of_a_difference_in_differences_covers_the_estimate():
    rng = np.random.default_rng(5)
    arrays = [(rng.random(176) < p).astype(float) for p in (0.7, 0.6, 0.7, 0.4)]
    ones = np.ones(176)
    terms = [(1.0, arrays[3], ones), (-1.0, arrays[2], ones), (-1.0, arrays[1], ones),
             (1.0, arrays[0], ones)]
    estimate = 100 * ((arrays[3].mean() - arrays[2].mean()) - (arrays[1].mean() - arrays[0].mean()))
    lo, hi = bootstrap_contrast_ci(terms, seed=0)
    assert lo < estimate < hi
    assert hi - lo < 40
    zero = np.zeros(176)
    assert all(np.isnan(v) for v in bootstrap_contrast_ci([(1.0, zero, zero)]))
    with pytest.raises(ValueError):
        bootstrap_contrast_ci([(1.0, ones, ones[:5])])


def test_adjust_pvalues():
    p = [0.01, 0.04, 0.03, 0.2]
    assert adjust_pvalues(p, "none") == p
    assert adjust_pvalues(p, "bonferroni") == pytest.approx([0.04, 0.16, 0.12, 0.8])
    # Holm: sorted 0.01×4, 0.03×3, 0.04×2, 0.2×1 with running maximum
    assert adjust_pvalues(p, "holm") == pytest.approx([0.04, 0.09, 0.09, 0.2])
    assert adjust_pvalues([0.5, 0.6], "holm") == pytest.approx([1.0, 1.0])
    assert adjust_pvalues([], "holm") == []
    with pytest.raises(ValueError):
        adjust_pvalues([0.1], "sidak")


def test_default_yaml_equals_builtin_defaults():
    from_file = load_rules(ROOT / "conf" / "gate" / "default.yaml")
    builtin = dataclasses.replace(GateRules(), source="-")
    assert dataclasses.replace(from_file, source="-") == builtin
    assert dataclasses.replace(load_rules(None), source="-") == \
        dataclasses.replace(GateRules(), source="-")


def test_presets_and_overlay():
    strict = load_rules("strict")
    assert strict.alpha == 0.1 and strict.clean["set_accuracy"] == MetricRule(1.0, True)
    assert strict.per_category.metrics["confusion"].gate is True
    rules = rules_from_mapping({"alpha": 0.01, "probes": {"confusion_shift": None,
                                                         "set_accuracy_shift": {"margin": 5}}})
    assert rules.alpha == 0.01 and rules.correction == "holm"
    assert "confusion_shift" not in rules.probes
    assert rules.probes["set_accuracy_shift"] == MetricRule(5.0, True)  # gate kept from defaults
    assert rules_from_mapping({"per_category": None}).per_category.metrics == {}
    assert rules_from_mapping({"conditions": ["clean", "noise"]}).conditions == ("clean", "noise")


@pytest.mark.parametrize("raw, needle", [
    ({"alpha": 1.5}, "'alpha'"),
    ({"alpha": "low"}, "'alpha'"),
    ({"correction": "sidak"}, "'correction'"),
    ({"resamples": 3}, "'resamples'"),
    ({"clean": {"set_accuracy_shift": {"margin": 1}}}, "'clean.set_accuracy_shift'"),
    ({"probes": {"set_accuracy": {"margin": -1}}}, "'probes.set_accuracy.margin'"),
    ({"probes": {"set_accuracy": {"gate": "yes"}}}, "'probes.set_accuracy.gate'"),
    ({"probes": {"set_accuracy": {"margn": 1}}}, "'probes.set_accuracy.margn'"),
    ({"per_category": {"metrics": {"individual_accuracy": {}}}}, "individual_accuracy"),
    ({"conditions": []}, "'conditions'"),
    ({"thresholds": 1}, "'thresholds'"),
])
def test_bad_rules_name_the_field(raw, needle):
    with pytest.raises(ConfigError) as err:
        rules_from_mapping(raw, source="rules.yaml")
    assert "rules.yaml" in str(err.value) and needle in str(err.value)


def test_bad_yaml_file(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("alpha: [0.05\n")
    with pytest.raises(ConfigError, match="r.yaml: not valid YAML"):
        load_rules(path)
    path.write_text("- 1\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_rules(path)
    with pytest.raises(ConfigError, match="presets: .*default"):
        load_rules("no-such-preset")
