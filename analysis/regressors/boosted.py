"""Gradient-boosted trees: LightGBM (the paper's regressor) and XGBoost.

Fitting uses few threads (a few hundred runs: thread start-up costs more than it saves);
prediction of simulation candidates uses every core (`predict_threads`).
"""

from __future__ import annotations

import numpy as np

from analysis.config import LightGBMConfig, XGBoostConfig
from analysis.regressors.base import DomainRegressor, prediction_threads

# Defaults are defined once, in the config dataclasses; the estimators' __init__ (which the
# scikit-learn contract wants explicit) take them from there.
_LIGHTGBM, _XGBOOST = LightGBMConfig(), XGBoostConfig()


def scaled_min_child_samples(n_runs: int) -> int:
    """Fewest runs per leaf: n // 20 within [2, 20].

    LightGBM's default (20) is right for 400+ runs but leaves a sweep of a few dozen runs
    (about 10 per fold) with no legal split: the model degenerates to a constant.
    """
    return int(min(20, max(2, n_runs // 20)))


class LightGBMRegressor(DomainRegressor):
    """LightGBM regression; `min_child_samples=None` scales the leaf size with the number of runs."""

    def __init__(
        self,
        n_estimators: int = _LIGHTGBM.n_estimators,
        learning_rate: float = _LIGHTGBM.learning_rate,
        num_leaves: int = _LIGHTGBM.num_leaves,
        min_child_samples: int | None = _LIGHTGBM.min_child_samples,
        subsample: float = _LIGHTGBM.subsample,
        colsample_bytree: float = _LIGHTGBM.colsample_bytree,
        reg_lambda: float = _LIGHTGBM.reg_lambda,
        n_jobs: int = _LIGHTGBM.n_jobs,
        predict_threads: int = 0,
        random_state: int = 0,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.n_jobs = n_jobs
        self.predict_threads = predict_threads
        self.random_state = random_state

    def fit(self, X, y):
        import lightgbm as lgb

        matrix = self._fit_matrix(X)
        self.min_child_samples_ = self.min_child_samples or scaled_min_child_samples(len(matrix))
        # LightGBM's own names for what lgb.LGBMRegressor would pass; a test
        # (tests/test_analysis_regressors.py) pins the predictions bit-identical to it. lgb.train
        # keeping its booster, not the wrapper: the wrapper ends every fit by writing the trees to
        # a string and parsing them back to free the training data, ~60 ms of CPU in a ~250 ms
        # 1000-tree fit on 400 runs, paid by every fold, halving and final fit.
        params = {
            "objective": "regression",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples_,
            "bagging_fraction": self.subsample,
            "bagging_freq": 1 if self.subsample < 1 else 0,
            "feature_fraction": self.colsample_bytree,
            "lambda_l2": self.reg_lambda,
            "num_threads": self.n_jobs,  # 0 or below: OpenMP's default, every core
            "seed": self.random_state,
            "verbose": -1,
        }
        data = lgb.Dataset(matrix, label=np.asarray(y, dtype=np.float64))
        self.booster_ = lgb.train(params, data, num_boost_round=self.n_estimators, keep_training_booster=True)
        return self

    def predict(self, X) -> np.ndarray:
        matrix = self._predict_matrix(X)
        return self.booster_.predict(matrix, num_threads=prediction_threads(self.predict_threads))


class XGBoostRegressor(DomainRegressor):
    """XGBoost regression (histogram trees)."""

    def __init__(
        self,
        n_estimators: int = _XGBOOST.n_estimators,
        learning_rate: float = _XGBOOST.learning_rate,
        max_depth: int = _XGBOOST.max_depth,
        min_child_weight: float = _XGBOOST.min_child_weight,
        subsample: float = _XGBOOST.subsample,
        colsample_bytree: float = _XGBOOST.colsample_bytree,
        reg_lambda: float = _XGBOOST.reg_lambda,
        n_jobs: int = _XGBOOST.n_jobs,
        predict_threads: int = 0,
        random_state: int = 0,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.n_jobs = n_jobs
        self.predict_threads = predict_threads
        self.random_state = random_state

    def fit(self, X, y):
        import xgboost as xgb

        matrix = self._fit_matrix(X)
        self.model_ = xgb.XGBRegressor(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            min_child_weight=self.min_child_weight,
            subsample=self.subsample,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            tree_method="hist",
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        ).fit(matrix, np.asarray(y, dtype=np.float64))
        return self

    def predict(self, X) -> np.ndarray:
        matrix = self._predict_matrix(X)
        booster = self.model_.get_booster()
        booster.set_param({"nthread": prediction_threads(self.predict_threads)})
        try:
            return booster.inplace_predict(matrix).astype(np.float64)
        finally:
            booster.set_param({"nthread": self.n_jobs})
