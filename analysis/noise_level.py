"""How a run's noise grows (or shrinks) with its predicted loss: the spread model of the
predictive distribution (analysis.predictive).

Runs of a swarm are not equally noisy. On the paper's 512 runs the out-of-fold residuals'
root mean square doubles from the lowest quarter of predicted pile_cc losses (0.039 nats) to the
highest (0.083); one pooled spread then makes the intervals too wide where the losses are low
(80% intervals held 88-97% of those runs over random re-splits) and too narrow where they are
high, and P(a beats b) too timid among the low-loss mixtures the choice compares (ECE 0.03-0.08
on those pairs). The low end is where the chosen mixture lives.

The spread of a run at predicted level l is modelled as s(l) = exp(b (clip(l) - l_bar)): one
slope b, fitted by maximum likelihood with Laplace errors (|r| rather than r^2, so a run several
standard deviations off weighs less than in a Gaussian fit, though it still weighs), l_bar the
mean level of the runs. The level is clipped to the runs' own range: below the lowest run the
noise is not extrapolated. The slope is kept only when the runs show it: a likelihood ratio
test at SIGNIFICANCE, its statistic divided by the dispersion of |r| / fitted scale (1 for
Laplace errors; above 1 for heavier tails, where a plain test called flat swarms of t(2.5)
noise a trend 14-18% of the time, and below 1 for Gaussian ones, where it almost never
called one: about 5% for both with the division), and the trend must survive leaving out the
run that pulls it most (with that check, 1.5-3% on flat swarms).
Otherwise b = 0 and every run has the same spread, as before. The constant factor is left to
the conformal step (it calibrates |r| / s on the runs), so s is relative.

For the chosen mixture, usually predicted below every run, the spread is the lowest runs'
(clipped): the run noise there. What the regressor gets wrong by optimising over a million
candidates (the best prediction is biased low) is not run noise, and neither this nor one
pooled spread measures it; the trust region and the comparison with the best run's rerun do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.stats import chi2

#: Fewest runs before a slope is fitted at all: a handful of residuals cannot tell a trend from luck.
MIN_RUNS = 20
#: The likelihood ratio test's level: the slope is kept when p < this.
SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class NoiseLevel:
    """Relative spread of a run's noise as a function of its predicted level (target units).

    slope: b, per unit of level (0: every run as noisy); center: l_bar; low/high: the levels of
    the runs the slope was fitted on (beyond them the spread stays at its edge value);
    p_value: the likelihood ratio test of b != 0 (1.0 when not fitted).
    """

    slope: float = 0.0
    center: float = 0.0
    low: float = -np.inf
    high: float = np.inf
    p_value: float = 1.0

    def __post_init__(self):
        if self.slope != 0.0 and not all(np.isfinite([self.slope, self.center, self.low, self.high, self.p_value])):
            raise ValueError(f"a trend needs finite slope, centre, levels and p-value: {self}")

    @property
    def flat(self) -> bool:
        return self.slope == 0.0

    def spread(self, level) -> np.ndarray:
        """s(level) (>0, 1 at the runs' mean level), same shape as `level`."""
        level = np.asarray(level, dtype=np.float64)
        if self.flat:
            return np.ones_like(level)
        return np.exp(self.slope * (np.clip(level, self.low, self.high) - self.center))

    def as_dict(self) -> dict:
        """For the provenance and the W&B summary (finite numbers only)."""
        if self.flat:
            return {"trend": False, "p_value": self.p_value}
        return {"trend": True, "p_value": self.p_value, "slope": self.slope, "ratio": self.ratio,
                "levels": [self.low, self.high]}

    @property
    def ratio(self) -> float:
        """Spread at the noisiest edge of the runs' levels over that at the quietest (>= 1)."""
        edges = self.spread(np.array([self.low, self.high])) if not self.flat else np.ones(2)
        return float(edges.max() / edges.min())


def _laplace_nll(slope: float, deviation: np.ndarray, magnitude: np.ndarray) -> float:
    """Profile negative log-likelihood (per run, up to a constant) of r_i ~ Laplace with scale
    theta exp(slope d_i), with theta at its maximum: log mean(|r| exp(-slope d)) (sum d = 0)."""
    return float(np.log(np.mean(magnitude * np.exp(-slope * deviation))))


def _trend(deviation: np.ndarray, magnitude: np.ndarray, bound: float) -> tuple[float, float]:
    """(slope, p-value) of the quasi-likelihood ratio test of slope != 0."""
    best = minimize_scalar(_laplace_nll, bounds=(-bound, bound), args=(deviation, magnitude), method="bounded")
    # Likelihood ratio 2 n (NLL(0) - NLL(b)) over the dispersion of u = |r| / fitted scale
    # (exponential, variance 1, for Laplace errors): chi-squared with 1 df whatever the tails.
    u = magnitude * np.exp(-best.x * deviation)
    dispersion = float(np.sum((u / u.mean() - 1.0) ** 2) / max(len(u) - 2, 1))  # Pearson's, 2 parameters fitted
    statistic = 2.0 * len(magnitude) * (_laplace_nll(0.0, deviation, magnitude) - best.fun) / max(dispersion, 1e-12)
    p_value = float(chi2.sf(statistic, df=1)) if np.isfinite(statistic) else 1.0
    return float(best.x), p_value


def fit_noise_level(levels, residuals, *, min_runs: int = MIN_RUNS, significance: float = SIGNIFICANCE) -> NoiseLevel:
    """The spread model of `residuals` (out of fold, target units) against the `levels` the fold
    models predicted for those runs; flat with fewer than `min_runs` runs, no spread in level or
    residual, or a slope the likelihood ratio test does not support."""
    levels = np.asarray(levels, dtype=np.float64)
    magnitude = np.abs(np.asarray(residuals, dtype=np.float64))
    finite = np.isfinite(levels) & np.isfinite(magnitude)
    levels, magnitude = levels[finite], magnitude[finite]
    n = len(levels)
    if n < min_runs or np.ptp(levels) <= 0 or not np.any(magnitude > 0):
        return NoiseLevel()
    center = float(levels.mean())
    deviation = levels - center
    # Bound the slope so the spread changes at most 100-fold across the runs' levels.
    bound = np.log(100.0) / np.ptp(levels)
    slope, p_value = _trend(deviation, magnitude, bound)
    if not p_value < significance:
        return NoiseLevel(p_value=p_value)
    # One run must not make the trend: it has to hold without the run that pulls the slope most,
    # the largest term of the score sum d_i (u_i - 1) on the slope's side (u = |r| / fitted scale).
    u = magnitude * np.exp(-slope * deviation)
    pull = np.argmax(np.sign(slope) * deviation * (u / u.mean() - 1.0))
    keep = np.arange(n) != pull
    _, p_without = _trend(levels[keep] - levels[keep].mean(), magnitude[keep], bound)
    if not p_without < significance:
        return NoiseLevel(p_value=max(p_value, p_without))
    return NoiseLevel(slope=slope, center=center, low=float(levels.min()), high=float(levels.max()),
                      p_value=max(p_value, p_without))
