"""The predictive distribution of a new run's target loss, calibrated out of fold (conformal).

The comparison already fits the driving regressor K times, once without each fold, and keeps
those fold models (`analysis.compare`). For run i, held out in fold k(i), the out-of-fold
residual r_i = y_i - mu_{-k(i)}(x_i) measures what a prediction misses on a run it never saw:
the regression's error there *and* the run's own noise (seed, data order). Runs at a higher
predicted loss are noisier (analysis.noise_level: a spread s(l) of the predicted level l, flat
unless the runs show a trend), so each residual is standardised by the spread at its own run's
level, z_i = r_i / s(l_i), and a new run at mixture x carries them at its own level. The
predictive distribution of a new run at x is the driving regressor fitted on all runs, mu(x),
plus those residuals (the CV analogue of split-conformal prediction, normalised by level):

    Y(x) ~ { mu(x) + s(mu(x)) z_i : i = 1..n }      (one draw per trained run)

- intervals: mu(x) -+ s(mu(x)) times the ceil(coverage (n+1))-th smallest |z_i|, the
  finite-sample conformal quantile (coverage >= nominal for exchangeable runs); where that rank
  exceeds n (a few runs, a high coverage) the interval is unbounded: said, never clipped. CV+
  proper (each draw centred on its own fold model) was measured too and covers more than it
  says on the paper's test runs (docs/decisions.md).
- P(a beats b): a and b are two new runs, each with its own noise: D = Y(a) - Y(b) =
  mu(a) - mu(b) + s_a z_i - s_b z_j with i != j drawn independently, taken as
  mu(a) - mu(b) + s_ab (z_i - z_j) with s_ab = sqrt((s_a^2 + s_b^2) / 2) (the same variance;
  exact when s_a = s_b, and one sorted table of z_i - z_j serves every pair). P averages over
  the n (n - 1) residual pairs, so it moves in steps of 1/(n (n - 1)), not 1/members.
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

from analysis.noise_level import NoiseLevel, fit_noise_level

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
    takes them to the full-data model's errors (`learning_curve_scale`; 1 = as measured);
    levels[i]: that out-of-fold prediction of run i (None: not kept, every run at one level);
    noise: how the spread grows with the predicted level (flat: every run as noisy);
    by_level: whether `noise` was fitted at all (choice.noise_by_level), for refits on subsets.
    """

    model: object
    fold_models: list
    fold_of: np.ndarray
    residuals: np.ndarray
    scale: float = 1.0
    levels: np.ndarray | None = None
    noise: NoiseLevel = NoiseLevel()
    by_level: bool = False

    def __post_init__(self):
        if self.levels is None and not self.noise.flat:
            raise ValueError("a spread by level needs the runs' levels")

    @classmethod
    def from_folds(cls, model, fold_models: list, fold_of: np.ndarray, y: np.ndarray, oof: np.ndarray,
                   *, scale: float = 1.0, by_level: bool = False) -> "Predictive":
        """From a comparison's full model, fold models, fold assignment and out-of-fold predictions;
        `by_level`: fit the spread's trend with the predicted level (analysis.noise_level)."""
        fold_of = np.asarray(fold_of, dtype=np.int64)
        assert len(fold_of) == len(y) == len(oof) and fold_of.max() < len(fold_models)
        levels = np.asarray(oof, dtype=np.float64)
        residuals = np.asarray(y, dtype=np.float64) - levels
        noise = fit_noise_level(levels, residuals) if by_level else NoiseLevel()
        return cls(model, list(fold_models), fold_of, residuals, float(scale), levels, noise, by_level)

    @property
    def standardized(self) -> np.ndarray:
        """z_i = r_i / s(l_i): each residual at the spread of its own run's level (r_i when flat)."""
        if self.levels is None or self.noise.flat:
            return self.residuals
        return self.residuals / self.noise.spread(self.levels)

    def spread(self, level) -> np.ndarray:
        """Relative spread s(level) of a new run predicted at `level` (1 when flat)."""
        return self.noise.spread(level)

    def _pair_spread(self, level_a, level_b) -> np.ndarray:
        """s_ab = sqrt((s_a^2 + s_b^2) / 2): the spread of z_i - z_j for runs at two levels."""
        return np.sqrt(0.5 * (self.spread(level_a) ** 2 + self.spread(level_b) ** 2))

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
        """The predictive draws mu(x) + scale s(mu(x)) z_i: shape (n, m), one row per trained run."""
        mu = self.predict(X)
        return mu[None, :] + self.scale * self.spread(mu)[None, :] * self.standardized[:, None]

    def _quantile(self, coverage: float) -> float:
        """The conformal quantile of |z| at `coverage` (unscaled); inf when the runs are too few."""
        if not 0 < coverage < 1:
            raise ValueError(f"coverage={coverage} must be between 0 and 1")
        rank = conformal_rank(self.n, coverage)
        return float(np.sort(np.abs(self.standardized))[rank - 1]) if rank <= self.n else float("inf")

    def half_width(self, coverage: float) -> float:
        """Half the conformal interval at `coverage` for a run at the runs' mean level (spread 1;
        loss units); inf when the runs are too few."""
        return self.scale * self._quantile(coverage)

    def interval(self, X, coverage: float, *, center: np.ndarray | None = None,
                 scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Conformal interval at `coverage` per mixture: (low, high), each shape (m,), as wide as
        the spread at the mixture's own predicted level; -+inf when the runs are too few.
        scale: `scale` (centres from the full fit) unless given (1.0: a fold model's centre)."""
        mu = self.predict(X) if center is None else np.asarray(center, dtype=np.float64)
        half = (self.scale if scale is None else scale) * self._quantile(coverage) * self.spread(mu)
        return mu - half, mu + half

    def _noise(self) -> np.ndarray:
        """The sorted differences z_i - z_j over pairs of distinct runs i != j, as measured: the
        noise of Y(a) - Y(b) for two new runs as fold models predict them (times `scale` for the
        full fit, and the pair's spread). They never share one draw: the diagonal would put a
        step of 1/n at 0. Beyond MAX_NOISE_PAIRS pairs (about 2,000 runs) a fixed random subset."""
        cached = getattr(self, "_noise_sorted", None)
        if cached is None:
            n = self.n
            if n * (n - 1) <= MAX_NOISE_PAIRS:
                i, j = np.nonzero(~np.eye(n, dtype=bool))
            else:
                rng = np.random.default_rng(0)
                i, j = rng.integers(0, n, MAX_NOISE_PAIRS), rng.integers(0, n - 1, MAX_NOISE_PAIRS)
                j = j + (j >= i)  # distinct from i, uniform over the others
            z = self.standardized
            cached = self._noise_sorted = np.sort(z[i] - z[j])
        return cached

    def _beats(self, shift: np.ndarray, spread: np.ndarray, scale: float | None = None) -> np.ndarray:
        """P(shift + s spread (z_i - z_j) < 0) over pairs of distinct runs, ties half; shift and
        spread (the pairs' s_ab) (m,) -> (m,). s: `scale` (the full fit's predictions) unless given
        (1.0: a fold model's)."""
        width = (self.scale if scale is None else scale) * np.asarray(spread, dtype=np.float64)
        threshold = -np.asarray(shift, dtype=np.float64) / width
        noise = self._noise()
        below = np.searchsorted(noise, threshold, side="left")
        upto = np.searchsorted(noise, threshold, side="right")
        return (below + 0.5 * (upto - below)) / len(noise)

    def _spread(self, shift: float, spread: float, coverage: float,
                scale: float | None = None) -> tuple[float, float, float]:
        tail = (1.0 - coverage) / 2.0
        width = (self.scale if scale is None else scale) * float(spread)
        low, mid, high = shift + width * np.quantile(self._noise(), [tail, 0.5, 1.0 - tail])
        return float(low), float(mid), float(high)

    def probability_between(self, center_a, center_b) -> np.ndarray:
        """P(Y(a) < Y(b)) given the predicted losses mu(a) and mu(b) per pair (nats): for many
        pairs of few mixtures, predict each mixture once and pass the predictions."""
        center_a = np.atleast_1d(np.asarray(center_a, dtype=np.float64))
        center_b = np.atleast_1d(np.asarray(center_b, dtype=np.float64))
        return self._beats(center_a - center_b, self._pair_spread(center_a, center_b))

    def probability_beats(self, a, b, *, offset=0.0) -> np.ndarray:
        """P(a new run at a has a lower loss than a new run at b), per row pair: shape (m,).
        `offset` (nats) is added to a's side (a penalty difference when judging a penalised loss)."""
        mu_a, mu_b = self.predict(a), self.predict(b)
        return self._beats(mu_a - mu_b + offset, self._pair_spread(mu_a, mu_b))

    def difference(self, a, b, coverage: float, *, offset: float = 0.0) -> tuple[float, float, float]:
        """Loss difference Y(a) - Y(b) of new runs at two mixtures: (low, median, high) at `coverage`."""
        mu_a, mu_b = float(self.predict(a)[0]), float(self.predict(b)[0])
        return self._spread(mu_a - mu_b + offset, float(self._pair_spread(mu_a, mu_b)), coverage)

    # --- comparisons with a trained run: only the fold model that did not see it, and the -----
    # --- residuals as measured (they are that fold model's own errors) -------------------------

    def _unseen(self, x, run: int, X_runs) -> tuple[float, float]:
        """(shift, pair spread) of x against trained run `run`, by the fold model that never saw it."""
        model = self.fold_models[int(self.fold_of[run])]
        pair = np.stack([np.asarray(x, dtype=np.float64), np.asarray(X_runs, dtype=np.float64)[run]])
        pa, pb = np.asarray(model.predict(pair), dtype=np.float64)
        return float(pa - pb), float(self._pair_spread(pa, pb))

    def probability_beats_run(self, x, run: int, X_runs, *, offset: float = 0.0) -> float:
        """P(a new run at mixture x beats a rerun of trained run `run`): both predicted by the
        fold model that never saw that run, each with its own noise."""
        shift, spread = self._unseen(x, run, X_runs)
        return float(self._beats(np.array([shift + offset]), np.array([spread]), scale=1.0)[0])

    def predict_run(self, run: int, X_runs) -> float:
        """Trained run `run`'s loss as the fold model that never saw it predicts it."""
        model = self.fold_models[int(self.fold_of[run])]
        return float(np.asarray(model.predict(np.asarray(X_runs, dtype=np.float64)[run][None, :]))[0])

    def difference_to_run(self, x, run: int, X_runs, coverage: float, *, offset: float = 0.0) -> tuple[float, float, float]:
        """(low, median, high) of Y(x) - Y(rerun of `run`), by the fold model that never saw it."""
        shift, spread = self._unseen(x, run, X_runs)
        return self._spread(shift + offset, spread, coverage, scale=1.0)
