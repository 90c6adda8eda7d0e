"""The bagged ensemble: a scikit-learn estimator whose members' spread says how sure it is."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from analysis.ensemble import BaggedRegressor, probability_below
from analysis.regressors import LightGBMRegressor, RidgeRegressor
from analysis.runs_table import validate_runs
from tests.support.synthetic_runs import TARGET, linear_loss, synthetic_runs


def table_for(loss, n_runs: int, noise: float = 0.01, seed: int = 0):
    table, _ = validate_runs(synthetic_runs(loss, n_runs, seed=seed, noise=noise), required_losses=[TARGET])
    return table.weights, table.losses[TARGET].to_numpy()


def test_members_differ_and_mean_is_the_prediction():
    X, y = table_for(linear_loss(5, seed=2), 40, noise=0.02)
    bag = BaggedRegressor(RidgeRegressor(), n_bags=6, random_state=3).fit(X, y)
    members = bag.predict_members(X)
    assert members.shape == (6, len(X)) and len(bag.estimators_) == 6
    assert np.ptp(members, axis=0).max() > 0  # bootstrap resamples give different fits
    assert np.allclose(bag.predict(X), members.mean(axis=0))
    assert list(bag.feature_names_in_) == list(X.columns)
    # Same seed, same members; a DataFrame with shuffled columns is read by name.
    again = BaggedRegressor(RidgeRegressor(), n_bags=6, random_state=3).fit(X, y)
    shuffled = X[list(reversed(X.columns))]
    assert np.allclose(again.predict_members(shuffled), members)
    assert np.allclose(bag.predict_members(X.to_numpy()), members)


def test_interval_widens_away_from_the_runs_and_is_ordered():
    X, y = table_for(linear_loss(5, seed=2), 40, noise=0.05)
    bag = BaggedRegressor(RidgeRegressor(), n_bags=16).fit(X, y)
    low, high = bag.predict_interval(X, coverage=0.8)
    assert np.all(low <= high)
    near = np.full((1, 5), 0.2)  # the centre, where the runs are dense
    far = np.eye(5)[:1] * 1.0  # a vertex: no run is near
    width_near = np.subtract(*bag.predict_interval(near)[::-1])[0]
    width_far = np.subtract(*bag.predict_interval(far)[::-1])[0]
    assert width_far > width_near
    with pytest.raises(ValueError, match="coverage"):
        bag.predict_interval(X, coverage=1.5)


def test_is_a_scikit_learn_estimator_and_refuses_unknown_domains():
    X, y = table_for(linear_loss(4, seed=0), 30)
    bag = BaggedRegressor(LightGBMRegressor(n_estimators=30, learning_rate=0.2), n_bags=3, n_jobs=2)
    assert clone(bag).get_params()["n_bags"] == 3
    bag.fit(X, y)
    seeds = [m.random_state for m in bag.estimators_]
    assert len(set(seeds)) == 3
    with pytest.raises(ValueError, match="unknown domain"):
        bag.predict_members(X.rename(columns={X.columns[0]: "nope"}))


def test_probability_below_is_paired_over_members():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    assert probability_below(a, a + 0.1) == 1.0
    assert probability_below(a, a) == 0.5
    assert probability_below(a + 1, a) == 0.0
