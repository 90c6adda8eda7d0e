"""How well the predictive distribution's intervals and probabilities hold on runs it never saw.

Two ways to get runs it never saw:

- `score_calibration(predictive, X_test, y_test)`: held-out test runs (a test source), scored
  with the predictive distribution fitted on the training runs;
- `score_out_of_fold(predictive, X, y)`: the training runs themselves, fold by fold, with no
  extra fit: the runs of fold k are predicted by fold model k (which never saw them) plus the
  residuals of the *other* folds only (split conformal per fold), so neither the location nor
  the spread has seen the run being scored.

Both report the share of runs inside the 50/80/95% intervals and, for pairs of runs, the Brier
score and the expected calibration error (ECE: 10 equal-width bins of P, the bins' |mean P -
observed frequency| weighted by their share of pairs) of P(a beats b) against the truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analysis.noise_level import NoiseLevel, fit_noise_level
from analysis.predictive import COVERAGES, Predictive

#: Bins of the reliability diagram and the ECE (equal width over [0, 1]).
BINS = 10
#: Pairs scored at most (pairs drawn at random beyond it; 256 test runs give 32,640).
MAX_PAIRS = 200_000


@dataclass
class CalibrationScores:
    """Coverage of the intervals and calibration of P(a beats b) on runs the fit never saw."""

    on: str
    """'test' (held-out test runs) or 'out of fold' (training runs, fold by fold)."""
    runs: int
    coverage: dict[float, float]
    """Nominal coverage -> share of runs inside."""
    width: dict[float, float]
    """Nominal coverage -> mean interval width (loss units)."""
    brier: float
    ece: float
    pairs: int
    bins: list[dict] = field(default_factory=list)
    """Per bin of P: low, high, pairs, mean predicted P, observed frequency (the reliability plot)."""
    nominal: float = 0.8
    """The coverage of the intervals kept per run in `low`/`high` (the fit's `choice.coverage`)."""
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    y: np.ndarray | None = None
    """Per scored run: its interval at `nominal` and its observed target loss (the intervals plot)."""

    def as_dict(self) -> dict:
        """Flat figures for the provenance and the W&B summary (calibration/<name>)."""
        out: dict = {"on": self.on, "runs": self.runs}
        out.update({f"coverage@{round(100 * c)}": v for c, v in self.coverage.items()})
        out.update({"ece": self.ece, "brier": self.brier, "pairs": self.pairs})
        return out

    def line(self) -> str:
        cover = ", ".join(f"{round(100 * c)}% intervals hold {v:.0%}" for c, v in self.coverage.items())
        return (f"calibration on {self.runs} {self.on} runs: {cover}; P(a beats b) over {self.pairs:,} pairs: "
                f"ECE {self.ece:.3f}, Brier {self.brier:.3f}")


def calibration_line(scores: CalibrationScores) -> str:
    """The benchmark's last line: `calibration: coverage@50=<f> ... pairs=<n>`."""
    cover = " ".join(f"coverage@{round(100 * c)}={v:.4f}" for c, v in scores.coverage.items())
    return f"calibration: {cover} ece={scores.ece:.4f} brier={scores.brier:.4f} pairs={scores.pairs}"


def reliability(p: np.ndarray, truth: np.ndarray, bins: int = BINS) -> tuple[float, list[dict]]:
    """ECE and the per-bin table of predicted probabilities `p` against 0/1 outcomes `truth`."""
    p, truth = np.asarray(p, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        inside = which == b
        count = int(inside.sum())
        mean_p = float(p[inside].mean()) if count else float("nan")
        freq = float(truth[inside].mean()) if count else float("nan")
        if count:
            ece += count / len(p) * abs(mean_p - freq)
        table.append({"low": b / bins, "high": (b + 1) / bins, "pairs": count, "predicted": mean_p, "observed": freq})
    return float(ece), table


def _pairs(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.triu_indices(n, k=1)
    if len(a) > MAX_PAIRS:
        keep = rng.choice(len(a), MAX_PAIRS, replace=False)
        a, b = a[keep], b[keep]
    return a, b


def _accumulate(predictive: Predictive, X: np.ndarray, y: np.ndarray, rng, coverages) -> tuple[dict, dict, np.ndarray, np.ndarray]:
    """Per coverage: inside (bool per run), width, and the bounds (per run); P and truth per pair."""
    inside, width = {}, {}
    center = predictive.predict(X)
    for c in coverages:
        low, high = predictive.interval(X, c, center=center)
        inside[c] = (y >= low) & (y <= high)
        width[c] = np.stack([low, high])
    a, b = _pairs(len(y), rng)
    p = predictive.probability_between(center[a], center[b]) if len(a) else np.empty(0)  # one prediction per run
    truth = (y[a] < y[b]).astype(np.float64) + 0.5 * (y[a] == y[b])
    return inside, width, p, truth


def _scores(on: str, y: np.ndarray, inside: dict, bounds: dict, p: np.ndarray, truth: np.ndarray,
            nominal: float) -> CalibrationScores:
    ece, bins = reliability(p, truth)
    low, high = bounds[nominal] if nominal in bounds else (None, None)
    return CalibrationScores(
        on=on,
        runs=len(y),
        coverage={c: float(np.mean(v)) for c, v in inside.items()},
        width={c: float(np.mean(b[1] - b[0])) for c, b in bounds.items()},
        brier=float(np.mean((p - truth) ** 2)) if len(p) else float("nan"),
        ece=ece,
        pairs=len(p),
        bins=bins,
        nominal=nominal,
        low=low,
        high=high,
        y=y,
    )


def score_calibration(predictive: Predictive, X_test, y_test, *, coverages=COVERAGES, nominal: float = 0.8,
                      seed: int = 0) -> CalibrationScores:
    """Intervals and pairwise probabilities of `predictive` scored on held-out test runs."""
    X, y = np.asarray(X_test, dtype=np.float64), np.asarray(y_test, dtype=np.float64)
    inside, bounds, p, truth = _accumulate(predictive, X, y, np.random.default_rng(seed), coverages)
    return _scores("test", y, inside, bounds, p, truth, nominal)


def score_out_of_fold(predictive: Predictive, X, y, *, coverages=COVERAGES, nominal: float = 0.8,
                      seed: int = 0) -> CalibrationScores:
    """Intervals and pairwise probabilities scored on the training runs, fold by fold, by fold
    model k and the other folds' residuals (nothing fitted anew)."""
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    rng = np.random.default_rng(seed)
    inside = {c: np.zeros(len(y), dtype=bool) for c in coverages}
    bounds = {c: np.full((2, len(y)), np.nan) for c in coverages}
    ps, truths, scored = [], [], np.zeros(len(y), dtype=bool)
    for k, model in enumerate(predictive.fold_models):
        held, rest = predictive.fold_of == k, predictive.fold_of != k
        if not held.any() or rest.sum() < 2:
            continue
        # The other folds' residuals at their own levels, the spread's trend refitted on them
        # (fold model k never saw the held fold; the trend is fitted without its residuals).
        levels = None if predictive.levels is None else predictive.levels[rest]
        noise = fit_noise_level(levels, predictive.residuals[rest]) if predictive.by_level and levels is not None \
            else NoiseLevel()
        split = Predictive(model, [model], np.zeros(int(rest.sum()), dtype=np.int64), predictive.residuals[rest],
                           levels=levels, noise=noise, by_level=predictive.by_level)
        fold_inside, fold_bounds, p, truth = _accumulate(split, X[held], y[held], rng, coverages)
        for c in coverages:
            inside[c][held], bounds[c][:, held] = fold_inside[c], fold_bounds[c]
        scored |= held
        ps.append(p)
        truths.append(truth)
    inside = {c: v[scored] for c, v in inside.items()}
    bounds = {c: b[:, scored] for c, b in bounds.items()}
    return _scores("out of fold", y[scored], inside, bounds, np.concatenate(ps) if ps else np.empty(0),
                   np.concatenate(truths) if truths else np.empty(0), nominal)
