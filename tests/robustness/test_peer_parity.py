"""Our statistics against the peer implementations users trust: statsmodels and scipy.

Random inputs, many seeds: exact McNemar, Holm and Bonferroni, the Wilson interval of the
pointing game, and the sign-flip tests (integer and real-valued differences)."""

from __future__ import annotations

import numpy as np
import pytest

from explain.sanity import wilson_interval
from robustness.stats import adjust_pvalues, mcnemar_exact, sign_flip_exact, sign_flip_mean

statsmodels = pytest.importorskip("statsmodels")
scipy_stats = pytest.importorskip("scipy.stats")


@pytest.mark.parametrize("seed", range(8))
def test_exact_mcnemar_equals_statsmodels(seed):
    from statsmodels.stats.contingency_tables import mcnemar

    rng = np.random.default_rng(seed)
    a = rng.random(60) < 0.6
    b = np.where(rng.random(60) < 0.3, ~a, a)
    table = [[int(np.sum(a & b)), int(np.sum(a & ~b))], [int(np.sum(~a & b)), int(np.sum(~a & ~b))]]
    assert mcnemar_exact(a.tolist(), b.tolist()) == pytest.approx(
        mcnemar(table, exact=True).pvalue)


@pytest.mark.parametrize("method,theirs", [("holm", "holm"), ("bonferroni", "bonferroni")])
def test_multiplicity_equals_statsmodels(method, theirs):
    from statsmodels.stats.multitest import multipletests

    for seed in range(5):
        p = np.random.default_rng(seed).random(9) ** 2
        assert adjust_pvalues(p.tolist(), method) == pytest.approx(
            multipletests(p, method=theirs)[1].tolist())


@pytest.mark.parametrize("hits,n", [(0, 10), (7, 10), (15, 20), (28, 28), (41, 84)])
def test_wilson_interval_equals_statsmodels(hits, n):
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(hits, n, alpha=0.05, method="wilson")
    assert wilson_interval(hits, n) == pytest.approx((100 * lo, 100 * hi), abs=0.006)


@pytest.mark.parametrize("seed", range(4))
def test_sign_flip_tests_equal_scipys_exact_permutation_test(seed):
    rng = np.random.default_rng(seed)
    real = rng.normal(0.4, 1.0, 12)
    integer = rng.integers(-2, 3, 12)

    def scipy_p(d):
        return scipy_stats.permutation_test((d,), np.mean, permutation_type="samples",
                                            n_resamples=np.inf, alternative="two-sided").pvalue

    assert sign_flip_mean(real.tolist()) == pytest.approx(scipy_p(real))
    nonzero = integer[integer != 0]
    if nonzero.size:
        assert sign_flip_exact(integer.tolist()) == pytest.approx(scipy_p(nonzero))
