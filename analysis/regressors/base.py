"""What every regressor shares: domains are pinned by name when it is fitted.

Fitted on a DataFrame (runs x domains), a regressor records `feature_names_in_` and later
reorders any DataFrame it is given by those names, refusing a different set of domains. A bare
array (the simulation's fast path) must already be in `feature_names_in_` order.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from regmix.mixture import check_domains


def prediction_threads(requested: int) -> int:
    """Threads for prediction: `requested`, or every core when 0."""
    return requested if requested > 0 else (os.cpu_count() or 1)


def in_fitted_order(X, names):
    """A DataFrame `X` reordered to the fitted domains `names` (refusing unknown or missing
    domains); an array, or a model fitted without names, is returned as it is."""
    if not isinstance(X, pd.DataFrame) or names is None:
        return X
    given = [str(c) for c in X.columns]
    check_domains(given, names, what="prediction input")
    missing = sorted(set(names) - set(given))
    if missing:
        raise ValueError(f"prediction input lacks domain(s) {missing} the regressor was fitted on")
    return X[list(names)]


class DomainRegressor(RegressorMixin, BaseEstimator):
    """Base class: converts inputs to float64 matrices in the fitted domain order."""

    def _fit_matrix(self, X) -> np.ndarray:
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        matrix = np.asarray(X, dtype=np.float64)
        if matrix.ndim != 2 or not np.all(np.isfinite(matrix)):
            raise ValueError("regressor input must be a finite 2-D table of weights (runs x domains)")
        self.n_features_in_ = matrix.shape[1]
        return matrix

    def _predict_matrix(self, X) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        X = in_fitted_order(X, getattr(self, "feature_names_in_", None))
        matrix = np.asarray(X)
        if matrix.dtype not in (np.float32, np.float64):
            matrix = matrix.astype(np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} domain columns, got shape {matrix.shape}")
        return matrix
