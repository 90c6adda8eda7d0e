"""Regressors as scikit-learn estimators, the out-of-fold comparison, and known-answer rankings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from analysis.compare import choose_drive, compare_regressors, scores
from analysis.config import LightGBMConfig, RegressorsConfig, XGBoostConfig
from analysis.errors import AnalysisError
from analysis.regressors import LightGBMRegressor, RidgeRegressor, XGBoostRegressor, build_regressor, scaled_min_child_samples
from analysis.runs_table import validate_runs
from tests.support.synthetic_runs import TARGET, interaction_loss, linear_loss, synthetic_runs

#: Fewer trees than the defaults: same behaviour, a fraction of the time.
QUICK = RegressorsConfig(
    lightgbm=LightGBMConfig(n_estimators=300, learning_rate=0.05),
    xgboost=XGBoostConfig(n_estimators=200, learning_rate=0.1),
)


def table_for(loss, n_runs: int, noise: float = 0.01, seed: int = 0):
    table, _ = validate_runs(synthetic_runs(loss, n_runs, seed=seed, noise=noise), required_losses=[TARGET])
    return table.weights, table.losses[TARGET].to_numpy()


def compare(names, X, y, cfg=QUICK):
    estimators = {n: build_regressor(n, cfg) for n in names}
    return compare_regressors(estimators, X, y, folds=5, seed=0, n_jobs=2)


def test_linear_known_answer_every_regressor_recovers_the_ranking():
    X, y = table_for(linear_loss(6, seed=1), 120)
    result = compare(["ridge", "lightgbm", "xgboost"], X, y)
    oof = result.table["oof_spearman"]
    assert oof["ridge"] > 0.99  # the right model family: near perfect
    assert oof["lightgbm"] > 0.9 and oof["xgboost"] > 0.9
    assert set(result.table.columns) >= {"oof_spearman", "oof_pearson", "oof_mse", "oof_r2", "fit_s"}


def test_nonlinear_known_answer_trees_recover_the_ranking_linear_cannot():
    X, y = table_for(interaction_loss(6, seed=1), 300)
    X_test, y_test = table_for(interaction_loss(6, seed=1), 100, seed=7)
    result = compare(["ridge", "lightgbm", "xgboost"], X, y)
    result_test = compare_regressors(
        {"lightgbm": build_regressor("lightgbm", QUICK)}, X, y, folds=5, X_test=X_test, y_test=y_test
    )
    oof = result.table["oof_spearman"]
    assert oof["lightgbm"] > 0.93 and oof["xgboost"] > 0.93
    assert oof["ridge"] < 0.6  # a quadratic bowl is not linear in the weights
    assert result_test.table.loc["lightgbm", "test_spearman"] > 0.93


def test_small_sweep_trees_do_not_degenerate_to_a_constant():
    X, y = table_for(linear_loss(5, seed=2), 24)
    assert scaled_min_child_samples(24) == 2 and scaled_min_child_samples(512) == 20
    scaled = LightGBMRegressor(n_estimators=100, learning_rate=0.1).fit(X, y)
    default = LightGBMRegressor(n_estimators=100, learning_rate=0.1, min_child_samples=20).fit(X, y)
    assert np.ptp(default.predict(X)) == 0  # LightGBM's default leaf size: one leaf, a constant
    assert scores(y, scaled.predict(X))["spearman"] > 0.8


@pytest.mark.parametrize("subsample,min_child_samples", [(1.0, None), (0.7, 5)])
def test_lightgbm_predicts_exactly_what_the_scikit_learn_wrapper_would(subsample, min_child_samples):
    """The regressor calls lgb.train itself (no string round trip at the end of each fit); its
    parameters must be the ones lgb.LGBMRegressor would pass, so the trees are the same trees."""
    import lightgbm as lgb

    X, y = table_for(interaction_loss(6, seed=4), 150)
    ours = LightGBMRegressor(n_estimators=120, learning_rate=0.05, num_leaves=15, subsample=subsample,
                             min_child_samples=min_child_samples, colsample_bytree=0.8, reg_lambda=0.5,
                             random_state=3).fit(X, y)
    wrapper = lgb.LGBMRegressor(
        n_estimators=120, learning_rate=0.05, num_leaves=15, subsample=subsample,
        subsample_freq=1 if subsample < 1 else 0, min_child_samples=ours.min_child_samples_,
        colsample_bytree=0.8, reg_lambda=0.5, n_jobs=1, random_state=3, verbose=-1,
    ).fit(X.to_numpy(), y)
    candidates = np.random.default_rng(5).dirichlet(np.ones(X.shape[1]), 2000)
    assert np.ptp(ours.predict(candidates)) > 0
    np.testing.assert_array_equal(ours.predict(candidates), wrapper.predict(candidates))


@pytest.mark.parametrize("cls", [RidgeRegressor, LightGBMRegressor, XGBoostRegressor])
def test_domains_are_pinned_by_name(cls):
    X, y = table_for(linear_loss(4, seed=3), 60)
    model = cls(n_estimators=50) if cls is not RidgeRegressor else cls()
    model.fit(X, y)
    assert list(model.feature_names_in_) == list(X.columns)
    shuffled = X[X.columns[::-1]]
    np.testing.assert_allclose(model.predict(shuffled), model.predict(X))  # reordered by name, not position
    np.testing.assert_allclose(model.predict(X.to_numpy(np.float32)), model.predict(X), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"unknown domain\(s\) \['zz'\]"):
        model.predict(X.rename(columns={X.columns[0]: "zz"}))
    cloned = clone(model)
    assert cloned.get_params() == model.get_params() and not hasattr(cloned, "n_features_in_")


def test_choice_of_the_driving_regressor():
    X, y = table_for(linear_loss(5, seed=4), 60)
    result = compare(["ridge", "lightgbm"], X, y)
    assert choose_drive(result, drive="rule", n_runs=60, min_runs_for_trees=128)[0] == "ridge"
    assert choose_drive(result, drive="rule", n_runs=512, min_runs_for_trees=128)[0] == "lightgbm"
    best = result.table["oof_spearman"].idxmax()
    assert choose_drive(result, drive="best_oof", n_runs=60, min_runs_for_trees=128)[0] == best
    assert choose_drive(result, drive="auto", n_runs=60, min_runs_for_trees=128)[0] == best  # evidence, not a rule
    assert choose_drive(result, drive="lightgbm", n_runs=10, min_runs_for_trees=128)[0] == "lightgbm"
    with pytest.raises(AnalysisError, match=r"regressor.drive='xgboost' was not compared"):
        choose_drive(result, drive="xgboost", n_runs=60, min_runs_for_trees=128)
    with pytest.raises(AnalysisError, match="use auto, best_oof, rule or one of"):
        choose_drive(result, drive="nope", n_runs=60, min_runs_for_trees=128)


def test_scores_of_a_constant_prediction_are_not_a_correlation():
    s = scores(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0]))
    assert np.isnan(s["spearman"]) and np.isnan(s["pearson"]) and s["mse"] == pytest.approx(2 / 3)
    assert scores(np.array([1.0, 2.0, 3.0]), np.array([3.0, 5.0, 9.0]))["spearman"] == pytest.approx(1.0)


def test_unknown_regressor_is_refused():
    with pytest.raises(AnalysisError, match=r"regressor 'svm' is unknown"):
        build_regressor("svm", QUICK)
    with pytest.raises(AnalysisError, match="no regressor to compare"):
        compare_regressors({}, pd.DataFrame({"a": [1.0]}), np.array([1.0]))
