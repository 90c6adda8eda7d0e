"""The spread model (analysis.noise_level) and what it does to the predictive distribution: runs
whose noise grows with their loss get intervals and P(a beats b) that hold where the loss is
low (where the choice is made), not only on average."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from analysis.calibration import reliability
from analysis.compare import compare_regressors
from analysis.noise_level import MIN_RUNS, NoiseLevel, fit_noise_level
from analysis.predictive import Predictive

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")

GAIN = np.array([0.0, -0.4, 0.3, -0.1])  # loss per unit of weight (nats): a linear truth
SLOPE = 8.0  # noise sd = BASE exp(SLOPE (loss - mean loss)): ~6x across the swarm's losses
BASE = 0.02


def _swarm(rng, n: int, *, slope: float = SLOPE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = rng.dirichlet(np.ones(len(GAIN)), size=n)
    truth = X @ GAIN
    noise = BASE * np.exp(slope * (truth - (np.full(len(GAIN), 0.25) @ GAIN)))
    return X, truth + rng.normal(0, 1, n) * noise, truth


def _predictive(X, y, *, by_level: bool) -> Predictive:
    frame = pd.DataFrame(X, columns=[f"d{i}" for i in range(X.shape[1])])
    comp = compare_regressors({"linear": LinearRegression()}, frame, y, folds=5, seed=0)
    return Predictive.from_folds(comp.models["linear"], comp.fold_models["linear"], comp.fold_of, y,
                                 comp.oof["linear"], by_level=by_level)


def test_the_slope_is_found_where_noise_grows_and_not_where_it_does_not():
    """300 runs with noise growing ~6x: a positive slope, tiny p. Equal noise: flat in at least
    9 of 10 swarms (the test's level is 5%)."""
    rng = np.random.default_rng(0)
    X, y, truth = _swarm(rng, 300)
    noise = fit_noise_level(truth, y - truth)
    assert noise.slope == pytest.approx(SLOPE, rel=0.3) and noise.p_value < 1e-6 and noise.ratio > 3
    flat = [fit_noise_level(truth, np.random.default_rng(s).normal(0, BASE, 300)).flat for s in range(10)]
    assert sum(flat) >= 9, flat


def test_few_runs_or_no_spread_stay_flat_and_one_wild_run_cannot_make_a_trend():
    rng = np.random.default_rng(1)
    assert fit_noise_level(np.arange(MIN_RUNS - 1.0), rng.normal(0, 1, MIN_RUNS - 1)).flat
    assert fit_noise_level(np.ones(100), rng.normal(0, 1, 100)).flat
    levels, residuals = np.linspace(5, 6, 200), rng.normal(0, 0.03, 200)
    residuals[-1] = 0.03 * 8  # one run 8 sd off, at the highest level
    assert fit_noise_level(levels, residuals).flat


def test_the_spread_is_not_extrapolated_beyond_the_runs_levels():
    noise = NoiseLevel(slope=2.0, center=5.5, low=5.0, high=6.0, p_value=1e-9)
    s = noise.spread(np.array([4.0, 5.0, 5.5, 6.0, 7.0]))
    assert s[0] == s[1] and s[3] == s[4] and s[2] == 1.0 and s[3] / s[1] == pytest.approx(np.exp(2.0))
    assert noise.ratio == pytest.approx(np.exp(2.0))
    assert NoiseLevel().flat and np.all(NoiseLevel().spread([1.0, 9.0]) == 1.0)


def test_intervals_and_probabilities_hold_at_the_low_losses_where_the_choice_is():
    """Over 4 swarms of 300 runs, 300 new runs each: with the spread by level, 80% intervals hold
    about 80% of the lowest-loss quarter of new runs and of the highest (one pooled spread: far
    more at the low end, far fewer at the high end), and P(a beats b) among the low-loss quarter
    has a small ECE (pooled: too timid there)."""
    held = {True: {"low": [], "high": [], "ece": []}, False: {"low": [], "high": [], "ece": []}}
    for seed in range(4):
        rng = np.random.default_rng(10 + seed)
        X, y, _ = _swarm(rng, 300)
        X_new, y_new, _ = _swarm(rng, 300)
        for by_level in (True, False):
            predictive = _predictive(X, y, by_level=by_level)
            assert predictive.noise.flat is (not by_level)
            mu = predictive.predict(X_new)
            low, high = predictive.interval(X_new, 0.8, center=mu)
            inside = (y_new >= low) & (y_new <= high)
            bottom, top = mu <= np.quantile(mu, 0.25), mu >= np.quantile(mu, 0.75)
            a, b = np.triu_indices(len(y_new), 1)
            pairs = bottom[a] & bottom[b]
            p = predictive.probability_between(mu[a][pairs], mu[b][pairs])
            ece, _ = reliability(p, (y_new[a][pairs] < y_new[b][pairs]).astype(float))
            held[by_level]["low"].append(inside[bottom].mean())
            held[by_level]["high"].append(inside[top].mean())
            held[by_level]["ece"].append(ece)
    by, pooled = ({k: np.mean(v) for k, v in held[f].items()} for f in (True, False))
    assert abs(by["low"] - 0.8) <= 0.07 and abs(by["high"] - 0.8) <= 0.07, held[True]
    assert pooled["low"] >= 0.9 and pooled["high"] <= 0.7, held[False]
    assert by["ece"] <= 0.04 and by["ece"] < pooled["ece"] - 0.02, (held[True]["ece"], held[False]["ece"])


def test_a_flat_spread_leaves_the_predictive_distribution_as_it_was():
    """With no trend (or by_level off) z = r and every interval has one width, as before."""
    rng = np.random.default_rng(5)
    X = rng.dirichlet(np.ones(len(GAIN)), size=60)
    y = X @ GAIN + rng.normal(0, 0.05, 60)
    predictive = _predictive(X, y, by_level=False)
    assert np.array_equal(predictive.standardized, predictive.residuals)
    low, high = predictive.interval(X[:5], 0.8)
    assert np.allclose(high - low, 2 * predictive.half_width(0.8))
