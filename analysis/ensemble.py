"""A bagged ensemble of one regressor: its members' spread is how sure the regression is.

Every member is the same estimator fitted on a bootstrap resample of the runs (and its own
`random_state`), so where the runs say little (far from any trained mixture, or where a few runs
decide the fit) the members disagree. Acquisitions (lower confidence bound, Thompson draws) and
the probability that one mixture beats another are computed from `predict_members`.

Member spread is epistemic only (it does not include the runs' own noise). regmix-propose uses
it to pick where to train next; regmix-fit's intervals and P(beats) come from a predictive
distribution with the runs' noise in it (analysis.predictive).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, parallel_config
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

from analysis.regressors.base import in_fitted_order


class BaggedRegressor(RegressorMixin, BaseEstimator):
    """`n_bags` copies of `estimator`, each fitted on a bootstrap resample of the runs.

    - `fit(X, y)`: X a DataFrame (runs x domains; the domain order is pinned by name in
      `feature_names_in_`) or an array; members are fitted in one batch of `n_jobs` threads
      (the boosters release the GIL; threads start in microseconds where processes take a second).
    - `predict(X)`: the members' mean, shape (n,).
    - `predict_members(X)`: every member's prediction, shape (n_bags, n).
    - `predict_interval(X, coverage)`: the members' central `coverage` quantile range.

    `bootstrap=False` fits every member on all runs (they then differ only by `random_state`,
    which gives no spread for a deterministic estimator such as ridge).
    """

    def __init__(self, estimator, n_bags: int = 8, bootstrap: bool = True, random_state: int = 0, n_jobs: int = 1):
        self.estimator = estimator
        self.n_bags = n_bags
        self.bootstrap = bootstrap
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _resamples(self, n: int) -> list[np.ndarray]:
        """Row indices per bag. Each bootstrap resample keeps at least 2 distinct runs (a fit on
        one repeated run is a constant); at n >= 3 that almost never needs a redraw."""
        rng = np.random.default_rng(self.random_state)
        rows = []
        for _ in range(int(self.n_bags)):
            if not self.bootstrap or n < 3:
                rows.append(np.arange(n))
                continue
            draw = rng.integers(0, n, size=n)
            while len(np.unique(draw)) < 2:
                draw = rng.integers(0, n, size=n)
            rows.append(np.sort(draw))
        return rows

    def _member(self, bag: int):
        model = clone(self.estimator)
        if "random_state" in model.get_params(deep=False):
            # Distinct seeds so that subsampling trees differ even without the bootstrap.
            model.set_params(random_state=int(self.random_state) * 1000 + bag)
        return model

    def fit(self, X, y):
        if int(self.n_bags) < 1:
            raise ValueError(f"n_bags={self.n_bags} must be at least 1")
        y = np.asarray(y, dtype=np.float64)
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} runs but y has {len(y)} values")
        self.n_features_in_ = np.shape(X)[1]
        self.bags_ = self._resamples(len(y))

        def fit_one(bag: int, rows: np.ndarray):
            part = X.iloc[rows] if isinstance(X, pd.DataFrame) else np.asarray(X)[rows]
            return self._member(bag).fit(part, y[rows])

        with parallel_config(backend="threading"):
            self.estimators_ = Parallel(n_jobs=self.n_jobs)(
                delayed(fit_one)(bag, rows) for bag, rows in enumerate(self.bags_)
            )
        return self

    def _aligned(self, X):
        """X in the fitted domain order: a DataFrame is reordered by name; an array is taken as is."""
        check_is_fitted(self, "estimators_")
        names = getattr(self, "feature_names_in_", None)
        if isinstance(X, pd.DataFrame) and names is not None:
            return in_fitted_order(X, names)
        matrix = np.asarray(X)
        if matrix.ndim == 1:
            matrix = matrix[None, :]
        if matrix.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} domain columns, got shape {matrix.shape}")
        return matrix

    def predict_members(self, X) -> np.ndarray:
        """Every member's prediction: shape (n_bags, n)."""
        X = self._aligned(X)
        return np.stack([np.asarray(m.predict(X), dtype=np.float64) for m in self.estimators_])

    def predict(self, X) -> np.ndarray:
        """The members' mean prediction: shape (n,)."""
        return self.predict_members(X).mean(axis=0)

    def predict_interval(self, X, coverage: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
        """The members' central `coverage` range per row: (low, high), each shape (n,)."""
        if not 0 < coverage < 1:
            raise ValueError(f"coverage={coverage} must be between 0 and 1 (e.g. 0.8)")
        members = self.predict_members(X)
        tail = (1.0 - coverage) / 2.0
        low, high = np.quantile(members, [tail, 1.0 - tail], axis=0)
        return low, high


def probability_below(members_a: np.ndarray, members_b: np.ndarray) -> float:
    """P(a's loss < b's loss) over ensemble members (paired: member i predicts both), ties half.

    `members_a`, `members_b`: shape (n_bags,) predictions of two mixtures by the same members.
    """
    a, b = np.asarray(members_a, dtype=np.float64), np.asarray(members_b, dtype=np.float64)
    return float(np.mean(a < b) + 0.5 * np.mean(a == b))
