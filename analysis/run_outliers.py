"""Runs the fit cannot explain: a trained run whose target lands far from what its mixture predicts.

A proxy that diverged, stopped early, read the wrong data or logged the wrong checkpoint still
reports a loss; one such run among hundreds barely moves the fit, so nothing else shows it. Its
out-of-fold residual does (the driver fitted without it, at its mixture): measured in robust
standard deviations of all runs' residuals (1.4826 x the median absolute deviation, which a few
such runs cannot inflate), a run beyond `Z_LIMIT` is named in the fit's warnings, the report and
the provenance. It stays in the fit: the other reading is a loss that changes faster there than
the regressor follows. In the demo's 48 runs the two named runs give no weight to any of the
target's three domains; the run nearest one of them (0.035 away in L1, with 1% `words`) is 2.8
nats lower. Whether a run is broken is for its logs to say, not the fit.

On the paper's 512 training runs (target pile_cc) this names run 383 (+6.8: it sits above the
fit on every one of the 13 domains, `benchmarks/run_noise.py`) and run 378 (+5.3: off on pile_cc
alone). The spread is one for all runs, and the paper's high-loss runs scatter more than its
low-loss ones: measured against the 100 runs nearest in predicted loss, 383 sits at +4.7 and 378
within +4. Gaussian run noise would pass 5 robust s.d. about once in two million runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

#: Robust standard deviations of out-of-fold residual beyond which a run is named.
Z_LIMIT = 5.0
#: Fewest runs for a spread worth measuring (below this the median absolute deviation is noise;
#: the fit then says the runs were not checked).
MIN_RUNS = 20
#: Most runs a warning names (the largest |z| first; the report lists them all).
MAX_NAMED = 10
#: What such a run means: one of two things, and the fit cannot tell which.
READINGS = ("either the proxy went wrong (diverged, stopped early, read the wrong data: check its logs) or the loss "
            "changes faster there than the regressor follows (often where a domain is at or near 0)")


@dataclass(frozen=True)
class RunOutlier:
    """One run the fit cannot explain. `run_outliers` gives target values in the fit's units (a
    loss; a maximised metric negated, as the fit minimises it); `in_units` turns them into the
    user's, keeping z's sign (> 0: worse either way)."""

    run: str
    observed: float
    predicted: float
    """The out-of-fold prediction at its mixture (the driver fitted without it)."""
    z: float
    """(residual - median residual) / robust s.d.; > 0: worse than its mixture predicts."""

    def as_dict(self) -> dict:
        return asdict(self)

    def in_units(self, convert) -> "RunOutlier":
        """The same run with `convert` (e.g. `Target.user`) applied to observed and predicted."""
        return replace(self, observed=float(convert(self.observed)), predicted=float(convert(self.predicted)))


def run_outliers(runs, y, oof, *, z_limit: float = Z_LIMIT) -> list[RunOutlier] | None:
    """The runs whose out-of-fold residual y - oof lies beyond `z_limit` robust standard
    deviations, largest |z| first; None when it cannot tell (fewer than MIN_RUNS runs, a
    residual that is not finite, or no spread at all): not checked is not "none"."""
    y, oof = np.asarray(y, dtype=np.float64), np.asarray(oof, dtype=np.float64)
    runs = [str(r) for r in runs]
    assert len(runs) == len(y) == len(oof)
    residual = y - oof
    if len(residual) < MIN_RUNS or not np.all(np.isfinite(residual)):
        return None
    centre = float(np.median(residual))
    spread = 1.4826 * float(np.median(np.abs(residual - centre)))
    if spread <= 0:
        return None
    z = (residual - centre) / spread
    named = [i for i in np.argsort(-np.abs(z), kind="stable") if abs(z[i]) > z_limit]
    return [RunOutlier(runs[i], float(y[i]), float(oof[i]), float(z[i])) for i in named]


def outlier_warning(outliers: list[RunOutlier], n_runs: int) -> str | None:
    """The fit's warning naming them (None when there are none)."""
    if not outliers:
        return None
    named = ", ".join(f"{o.run} ({o.z:+.1f})" for o in outliers[:MAX_NAMED])
    if len(outliers) > MAX_NAMED:
        named += f" and {len(outliers) - MAX_NAMED} more (the report lists them)"
    return (f"{len(outliers)} of {n_runs} runs lie more than {Z_LIMIT:g} robust s.d. from what their mixtures "
            f"predict out of fold: {named}; {READINGS} (they stay in the fit)")
