"""How a run's noise grows (or shrinks) with its predicted loss: the spread model of the
predictive distribution (analysis.predictive).

Runs of a swarm are not equally noisy. On the paper's 512 runs the out-of-fold residuals'
root mean square doubles from the lowest quarter of predicted pile_cc losses (0.039 nats) to the
highest (0.083); one pooled spread then makes the intervals too wide where the losses are low
(80% intervals held 88-97% of those runs over random re-splits) and too narrow where they are
high, and P(a beats b) too timid among the low-loss mixtures the choice compares (ECE 0.03-0.08
on those pairs). The low end is where the chosen mixture lives.

The spread of a run at predicted level l is modelled as s(l) = exp(b (clip(l) - l_bar)): one
slope b, fitted by maximum likelihood with Laplace errors (|r| rather than r^2: a run 6 robust
standard deviations off, which the paper's swarm has, cannot steer it), l_bar the mean level of
the runs. The level is clipped to the runs' own range: below the lowest run the noise is not
extrapolated. The slope is kept only when the runs show it (likelihood ratio test at
SIGNIFICANCE); otherwise b = 0 and every run has the same spread, as before. The constant
factor is left to the conformal step (it calibrates |r| / s on the runs), so s is relative.
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
    """Profile negative log-likelihood (per run, up to a constant) of |r_i| ~ Laplace scale
    theta exp(slope d_i), with theta at its maximum: log mean(|r| exp(-slope d)) (sum d = 0)."""
    return float(np.log(np.mean(magnitude * np.exp(-slope * deviation))))


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
    best = minimize_scalar(_laplace_nll, bounds=(-bound, bound), args=(deviation, magnitude), method="bounded")
    # Likelihood ratio: 2 n (NLL(0) - NLL(b)) per the profile likelihood, chi-squared with 1 df.
    statistic = 2.0 * n * (_laplace_nll(0.0, deviation, magnitude) - best.fun)
    p_value = float(chi2.sf(max(statistic, 0.0), df=1))
    if p_value >= significance:
        return NoiseLevel(p_value=p_value)
    return NoiseLevel(slope=float(best.x), center=center, low=float(levels.min()), high=float(levels.max()),
                      p_value=p_value)
