"""What `regmix-fit` produced (`FitResult`) and the tables the report, plots and W&B log share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.runs_table import DropReport, RunsTable
from analysis.status import Status
from analysis.target import Target
from regmix.mixture import Mixture


@dataclass
class FitResult:
    """Everything `regmix-fit` produced; the report and the emitted file are on disk too."""

    comparison: pd.DataFrame
    """Scores per regressor (oof_* and test_* spearman/pearson/mse/r2, fit_s)."""
    drive: str
    drive_reason: str
    mixture: Mixture
    """The emitted mixture (rounded weights over every train domain)."""
    predicted: dict[str, float]
    """Target loss the driving regressor predicts for: chosen, best_candidate, prior, uniform, best_run."""
    best_run: dict
    """The run with the lowest observed target loss: id, loss, predicted, weights."""
    emitted: Path
    report_dir: Path
    target: Target
    table: RunsTable
    drops: DropReport
    test_table: RunsTable | None = None
    test_drops: DropReport | None = None
    simulation: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    cross_check: dict[str, dict[str, float]] = field(default_factory=dict)
    """Target loss each compared regressor predicts for the chosen mixture, the best run and the prior."""
    details: dict = field(default_factory=dict)
    """Arrays the report draws from: oof/test predictions, top candidates, prior, bounds."""
    tracked: Any = None
    """The W&B run the results were logged to (`analysis.tracking.TrackedRun`), if tracker.mode is on."""
    evidence: dict = field(default_factory=dict)
    """P(emitted beats prior / uniform / best run) and intervals of the loss differences."""
    intervals: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    """Members' (low, mean, high) predicted loss per mixture (chosen, prior, uniform, best_run)."""
    status: Status = Status.SUPPORTED
    """How strongly the evidence backs the emitted mixture (`analysis.status.Status`)."""
    status_line: str = ""
    constraints: dict = field(default_factory=dict)
    mixture_written: bool = False
    """Whether `emitted` holds this fit's mixture yet (the report is written before it)."""
    emit_error: str | None = None
    """Why the mixture could not be written, when it could not."""
    outliers: list | None = field(default_factory=list)
    """Runs far from what their mixtures predict out of fold (`analysis.run_outliers.RunOutlier`,
    in the target's own units); None: too few runs (or no spread) to tell."""
    predictive: Any = None
    """The predictive distribution of a new run's target loss (`analysis.predictive.Predictive`):
    what the intervals and probabilities came from, for benchmarks/calibration.py and callers."""



def mixture_frame(result: FitResult) -> pd.DataFrame:
    """Per domain: the chosen weight, the prior, uniform, the best run, the simulation bounds."""
    domains = result.table.domains
    d = result.details
    frame = pd.DataFrame(
        {
            "chosen": [result.mixture[x] for x in domains],
            "prior": d["prior"],
            "uniform": 1.0 / len(domains),
            "best_run": [result.best_run["weights"][x] for x in domains],
            "lower": d["lower"],
            "upper": d["upper"],
        },
        index=pd.Index(domains, name="domain"),
    )
    return frame


def domain_correlations(result: FitResult) -> pd.Series:
    """Spearman correlation of each domain's weight with the target loss across runs; NaN where
    either is constant (all losses equal, a domain at one weight): no rank order to correlate."""
    y = pd.Series(result.details["y"], index=result.table.weights.index)

    def spearman(col: pd.Series) -> float:
        if col.nunique(dropna=True) < 2 or y.nunique(dropna=True) < 2:
            return float("nan")  # scipy would warn (ConstantInputWarning) and return NaN
        return col.corr(y, method="spearman")

    with np.errstate(all="ignore"):
        return result.table.weights.apply(spearman).rename("spearman")
