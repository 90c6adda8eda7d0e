"""The predictive distribution of a new run's target loss, calibrated out of fold (conformal).

The comparison already fits the driving regressor K times, once without each fold, and keeps
those fold models (`analysis.compare`). For run i, held out in fold k(i), the out-of-fold
residual r_i = y_i - mu_{-k(i)}(x_i) measures what a prediction misses on a run it never saw:
the regression's error there *and* the run's own noise (seed, data order). The predictive
distribution of a new run at mixture x is the driving regressor fitted on all runs, mu(x),
plus those residuals (the CV analogue of split-conformal prediction):

    Y(x) ~ { mu(x) + r_i : i = 1..n }      (one draw per trained run)

- intervals: mu(x) -+ the ceil(coverage (n+1))-th smallest |r_i|, the finite-sample conformal
  quantile (coverage >= nominal for exchangeable runs); where that rank exceeds n (a few runs,
  a high coverage) the interval is unbounded: said, never clipped. CV+ proper (each draw
  centred on its own fold model) was measured too and covers more than it says on the paper's
  test runs (docs/decisions.md).
- P(a beats b): a and b are two new runs, each with its own noise: D = Y(a) - Y(b) =
  mu(a) - mu(b) + r_i - r_j with i != j drawn independently. P averages over the n (n - 1)
  residual pairs, so it moves in steps of 1/(n (n - 1)), not 1/members.
- P(x beats trained run j): both mixtures are predicted by the fold model that never saw run j
  (the model fitted on all runs has learned run j's own lucky draw: the best of N noisy runs is
  biased low), and a rerun of j carries fresh noise.
- The residuals measure what a model fitted on (K-1)/K of the runs misses, which overstates
  what the fit on all n runs misses: 5-fold 80% intervals held 82% of the held-out runs on average
  over random re-splits of the paper's runs (`benchmarks/calibration_resplits.py`). Where the
  centre is the full fit they are scaled by `scale` (`learning_curve_scale`: the squared error
  measured at n/2 and at (K-1)n/K, extrapolated to n); where the centre is a fold model (a
  trained run's rerun, the out-of-fold calibration) they are used as measured.

Spread far from the runs is not evidence here either (fold models of a linear regression agree
off the data): the trust region (analysis.choice, analysis.verdict) decides whether a mixture
may be called supported at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: The intervals the calibration reports (central coverages).
COVERAGES = (0.5, 0.8, 0.95)
#: Residual pairs behind P(a beats b), at most (4M float64: 32 MiB); all n (n - 1) up to ~2,000 runs.
MAX_NOISE_PAIRS = 1 << 22


def conformal_rank(n: int, coverage: float) -> int:
    """1-based rank of the upper CV+ bound among n values: ceil(coverage * (n + 1)); > n means
    unbounded (too few runs for this coverage)."""
    return int(math.ceil(coverage * (n + 1) - 1e-9))


def learning_curve_scale(mse_half: float, mse_folds: float, folds: int) -> float:
    """Factor from the fold models' residuals to the fit on all n runs, from the learning curve
    E[r^2](m) = noise + b / m (run noise, plus the regression's error falling with m runs).

    mse_half: mean squared out-of-fold residual of 2-fold fits (m = n/2); mse_folds: that of the
    K-fold fits (m = (K-1) n / K). Then E(n) / E((K-1) n / K) = 1 - (mse_half / mse_folds - 1) /
    (K - 2), returned as its square root (residuals scale like the root of their square), and
    clipped to what the curve allows: >= sqrt((K-1)/K) (no noise at all) and <= 1 (more runs
    never hurt). With K < 3 the two sizes coincide: 1.
    """
    if folds < 3 or not (mse_folds > 0 and np.isfinite(mse_half) and np.isfinite(mse_folds)):
        return 1.0
    ratio = 1.0 - (mse_half / mse_folds - 1.0) / (folds - 2)
    return float(np.sqrt(np.clip(ratio, (folds - 1) / folds, 1.0)))


@dataclass
class Predictive:
    """Predictive distribution of the target loss: the full-data model plus out-of-fold residuals.

    model: the driving regressor fitted on all runs; fold_models[k]: fitted without the runs
    of fold k; fold_of[i]: the fold run i was held out in; residuals[i] = y_i -
    fold_models[fold_of[i]].predict(x_i) (signed, loss units: nats); scale: the factor that
    takes them to the full-data model's errors (`learning_curve_scale`; 1 = as measured).
    """

    model: object
    fold_models: list
    fold_of: np.ndarray
    residuals: np.ndarray
    scale: float = 1.0

    @classmethod
    def from_folds(cls, model, fold_models: list, fold_of: np.ndarray, y: np.ndarray, oof: np.ndarray,
                   *, scale: float = 1.0) -> "Predictive":
        """From a comparison's full model, fold models, fold assignment and out-of-fold predictions."""
        fold_of = np.asarray(fold_of, dtype=np.int64)
        assert len(fold_of) == len(y) == len(oof) and fold_of.max() < len(fold_models)
        residuals = np.asarray(y, dtype=np.float64) - np.asarray(oof, dtype=np.float64)
        return cls(model, list(fold_models), fold_of, residuals, float(scale))

    @property
    def n(self) -> int:
        return len(self.residuals)

    def predict(self, X) -> np.ndarray:
        """The centre mu(x): the full-data model's prediction, shape (m,)."""
        return np.asarray(self.model.predict(np.atleast_2d(np.asarray(X, dtype=np.float64))), dtype=np.float64)

    def predict_members(self, X) -> np.ndarray:
        """Every fold model's prediction, shape (K, m): the members whose spread the risk-aware
        choice objective reads (the regression's own uncertainty, no run noise)."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        return np.stack([np.asarray(m.predict(X), dtype=np.float64) for m in self.fold_models])

    def draws(self, X) -> np.ndarray:
        """The predictive draws mu(x) + scale r_i: shape (n, m), one row per trained run."""
        return self.predict(X)[None, :] + self.scale * self.residuals[:, None]

    def half_width(self, coverage: float) -> float:
        """Half the conformal interval at `coverage` (loss units); inf when the runs are too few."""
        if not 0 < coverage < 1:
            raise ValueError(f"coverage={coverage} must be between 0 and 1")
        rank = conformal_rank(self.n, coverage)
        return self.scale * float(np.sort(np.abs(self.residuals))[rank - 1]) if rank <= self.n else float("inf")

    def interval(self, X, coverage: float, *, center: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Conformal interval at `coverage` per mixture: (low, high), each shape (m,); -+inf when
        the runs are too few for that coverage."""
        mu = self.predict(X) if center is None else np.asarray(center, dtype=np.float64)
        half = self.half_width(coverage)
        return mu - half, mu + half

    def _noise(self) -> np.ndarray:
        """The sorted differences r_i - r_j over pairs of distinct runs i != j, as measured: the
        noise of Y(a) - Y(b) for two new runs as fold models predict them (times `scale` for the
        full fit). They never share one draw: the diagonal would put a step of 1/n at 0. Beyond
        MAX_NOISE_PAIRS pairs (about 2,000 runs) a fixed random subset of them."""
        cached = getattr(self, "_noise_sorted", None)
        if cached is None:
            n = self.n
            if n * (n - 1) <= MAX_NOISE_PAIRS:
                i, j = np.nonzero(~np.eye(n, dtype=bool))
            else:
                rng = np.random.default_rng(0)
                i, j = rng.integers(0, n, MAX_NOISE_PAIRS), rng.integers(0, n - 1, MAX_NOISE_PAIRS)
                j = j + (j >= i)  # distinct from i, uniform over the others
            cached = self._noise_sorted = np.sort(self.residuals[i] - self.residuals[j])
        return cached

    def _beats(self, shift: np.ndarray, scale: float | None = None) -> np.ndarray:
        """P(shift + s (r_i - r_j) < 0) over pairs of distinct runs, ties half; shift (m,) -> (m,).
        s: `scale` (the full fit's predictions) unless given (1.0: a fold model's)."""
        noise = self._noise() * (self.scale if scale is None else scale)
        below = np.searchsorted(noise, -np.asarray(shift, dtype=np.float64), side="left")
        upto = np.searchsorted(noise, -np.asarray(shift, dtype=np.float64), side="right")
        return (below + 0.5 * (upto - below)) / len(noise)

    def _spread(self, shift: float, coverage: float, scale: float | None = None) -> tuple[float, float, float]:
        tail = (1.0 - coverage) / 2.0
        noise = self._noise() * (self.scale if scale is None else scale)
        low, mid, high = shift + np.quantile(noise, [tail, 0.5, 1.0 - tail])
        return float(low), float(mid), float(high)

    def probability_from_shift(self, shift) -> np.ndarray:
        """P(Y(a) < Y(b)) given the predicted difference mu(a) - mu(b) per pair (nats): for many
        pairs of few mixtures, predict each mixture once and pass the differences."""
        return self._beats(np.atleast_1d(np.asarray(shift, dtype=np.float64)))

    def probability_beats(self, a, b, *, offset=0.0) -> np.ndarray:
        """P(a new run at a has a lower loss than a new run at b), per row pair: shape (m,).
        `offset` (nats) is added to a's side (a penalty difference when judging a penalised loss)."""
        return self._beats(self.predict(a) - self.predict(b) + offset)

    def difference(self, a, b, coverage: float, *, offset: float = 0.0) -> tuple[float, float, float]:
        """Loss difference Y(a) - Y(b) of new runs at two mixtures: (low, median, high) at `coverage`."""
        return self._spread(float(self.predict(a)[0] - self.predict(b)[0]) + offset, coverage)

    # --- comparisons with a trained run: only the fold model that did not see it, and the -----
    # --- residuals as measured (they are that fold model's own errors) -------------------------

    def _unseen_shift(self, x, run: int, X_runs) -> float:
        model = self.fold_models[int(self.fold_of[run])]
        pair = np.stack([np.asarray(x, dtype=np.float64), np.asarray(X_runs, dtype=np.float64)[run]])
        pa, pb = np.asarray(model.predict(pair), dtype=np.float64)
        return float(pa - pb)

    def probability_beats_run(self, x, run: int, X_runs, *, offset: float = 0.0) -> float:
        """P(a new run at mixture x beats a rerun of trained run `run`): both predicted by the
        fold model that never saw that run, each with its own noise."""
        return float(self._beats(np.array([self._unseen_shift(x, run, X_runs) + offset]), scale=1.0)[0])

    def predict_run(self, run: int, X_runs) -> float:
        """Trained run `run`'s loss as the fold model that never saw it predicts it."""
        model = self.fold_models[int(self.fold_of[run])]
        return float(np.asarray(model.predict(np.asarray(X_runs, dtype=np.float64)[run][None, :]))[0])

    def difference_to_run(self, x, run: int, X_runs, coverage: float, *, offset: float = 0.0) -> tuple[float, float, float]:
        """(low, median, high) of Y(x) - Y(rerun of `run`), by the fold model that never saw it."""
        return self._spread(self._unseen_shift(x, run, X_runs) + offset, coverage, scale=1.0)
