"""Ridge regression on the mixture weights (the paper's linear baseline)."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import RidgeCV

from analysis.config import RidgeConfig
from analysis.regressors.base import DomainRegressor

_RIDGE = RidgeConfig()  # defaults defined once, in the config dataclass


class RidgeRegressor(DomainRegressor):
    """Linear model with its L2 strength chosen by efficient leave-one-out CV over log-spaced alphas.

    Cheap enough to predict millions of candidates directly (a matrix-vector product).
    """

    def __init__(
        self,
        alpha_min: float = _RIDGE.alpha_min,
        alpha_max: float = _RIDGE.alpha_max,
        n_alphas: int = _RIDGE.n_alphas,
        random_state: int = 0,
    ):
        self.alpha_min = alpha_min
        self.alpha_max = alpha_max
        self.n_alphas = n_alphas
        self.random_state = random_state  # unused (deterministic); kept for a uniform interface

    def fit(self, X, y):
        matrix = self._fit_matrix(X)
        alphas = np.logspace(np.log10(self.alpha_min), np.log10(self.alpha_max), self.n_alphas)
        model = RidgeCV(alphas=alphas).fit(matrix, np.asarray(y, dtype=np.float64))
        self.alpha_ = float(model.alpha_)
        self.coef_ = model.coef_.astype(np.float64)
        self.intercept_ = float(model.intercept_)
        return self

    def predict(self, X) -> np.ndarray:
        return self._predict_matrix(X) @ self.coef_ + self.intercept_
