"""Regressors as scikit-learn estimators, built by name from `RegressorsConfig`.

Each one is fitted on a DataFrame of runs x domains and pins the domain order by name
(`feature_names_in_`), so a table with its columns in another order is predicted correctly
and a table with other domains is refused.
"""

from __future__ import annotations

from dataclasses import asdict

from analysis.errors import AnalysisError
from analysis.regressors.base import DomainRegressor
from analysis.regressors.boosted import LightGBMRegressor, XGBoostRegressor, scaled_min_child_samples
from analysis.regressors.linear import RidgeRegressor

#: name -> (estimator class, whether it is linear: cheap to predict, extrapolates to the simplex's edge)
REGRESSORS = {
    "ridge": (RidgeRegressor, True),
    "lightgbm": (LightGBMRegressor, False),
    "xgboost": (XGBoostRegressor, False),
}


def is_linear(name: str) -> bool:
    return REGRESSORS[name][1]


def build_regressor(name: str, cfg, *, seed: int = 0, predict_threads: int = 0) -> DomainRegressor:
    """A fresh estimator `name` with its hyperparameters from `cfg` (a `RegressorsConfig`)."""
    if name not in REGRESSORS:
        raise AnalysisError(f"regressor {name!r} is unknown; use some of {sorted(REGRESSORS)}")
    cls, linear = REGRESSORS[name]
    params = asdict(getattr(cfg, name))
    if not linear:
        params["predict_threads"] = predict_threads
    return cls(**params, random_state=seed)


def build_screen(cfg, *, seed: int = 0, predict_threads: int = 0) -> LightGBMRegressor:
    """The cheap LightGBM that screens simulation candidates (`cfg.screen`)."""
    return LightGBMRegressor(**asdict(cfg.screen), predict_threads=predict_threads, random_state=seed)


__all__ = [
    "REGRESSORS",
    "DomainRegressor",
    "LightGBMRegressor",
    "RidgeRegressor",
    "XGBoostRegressor",
    "build_regressor",
    "build_screen",
    "is_linear",
    "scaled_min_child_samples",
]
