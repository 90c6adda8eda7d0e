"""The fit's model stage: compare the regressors out of fold (and on held-out test runs), pick
the driving one, and bag it into members whose spread is the choice's uncertainty."""

from __future__ import annotations

import time
from dataclasses import dataclass

from analysis.compare import Comparison, choose_drive, compare_regressors, interval_coverage
from analysis.config import FitAppConfig
from analysis.ensemble import BaggedRegressor
from analysis.fit_load import LoadedRuns
from analysis.regressors import build_regressor
from analysis.regressors.base import prediction_threads


@dataclass
class Models:
    """What the model stage hands on."""

    comparison: Comparison
    drive: str
    """Name of the driving regressor."""
    why: str
    """Why it drives (the rule that picked it)."""
    ensemble: BaggedRegressor
    """Bagged members of the driving regressor."""
    calibration: dict | None
    """Coverage of the members' intervals on held-out runs (test, else out of fold); None when off."""

    @property
    def model(self):
        """The driving regressor fitted on all runs."""
        return self.comparison.models[self.drive]

    @property
    def drive_oof(self) -> float:
        """The driving regressor's out-of-fold Spearman (NaN for a constant prediction)."""
        return float(self.comparison.table.loc[self.drive, "oof_spearman"])


def model_stage(cfg: FitAppConfig, runs: LoadedRuns, timings: dict[str, float], warnings: list[str]) -> Models:
    """Compare, pick the driver, bag it, measure its intervals; times `compare_s` and `ensemble_s`."""
    clock = time.perf_counter()
    comparison = _compare(cfg, runs)
    timings["compare_s"] = time.perf_counter() - clock
    drive, why = choose_drive(
        comparison, drive=cfg.regressor.drive, n_runs=len(runs.table), min_runs_for_trees=cfg.regressor.min_runs_for_trees
    )
    clock = time.perf_counter()
    ensemble = BaggedRegressor(
        build_regressor(drive, cfg.regressor, seed=cfg.regressor.seed, predict_threads=cfg.simulation.predict_threads),
        n_bags=cfg.regressor.bags,
        random_state=cfg.regressor.seed,
        n_jobs=prediction_threads(cfg.regressor.n_jobs),
    ).fit(runs.X, runs.y)
    calibration = _calibration(cfg, runs, ensemble)
    timings["ensemble_s"] = time.perf_counter() - clock
    _warn_if_another_ranks_better(comparison, drive, warnings)
    return Models(comparison, drive, why, ensemble, calibration)


def _compare(cfg: FitAppConfig, runs: LoadedRuns) -> Comparison:
    estimators = {
        n: build_regressor(n, cfg.regressor, seed=cfg.regressor.seed, predict_threads=cfg.simulation.predict_threads)
        for n in dict.fromkeys(cfg.regressor.compare)
    }
    return compare_regressors(
        estimators,
        runs.X,
        runs.y,
        folds=cfg.regressor.folds,
        seed=cfg.regressor.seed,
        X_test=runs.X_test,
        y_test=runs.y_test,
        n_jobs=prediction_threads(cfg.regressor.n_jobs),
    )


def _calibration(cfg: FitAppConfig, runs: LoadedRuns, ensemble: BaggedRegressor) -> dict | None:
    c, r = cfg.choice, cfg.regressor
    if not c.calibrate or r.bags <= 1:
        return None
    if runs.X_test is not None:
        # Held-out test runs measure the intervals directly, at no extra fit.
        y_test = runs.y_test
        low, high = ensemble.predict_interval(runs.X_test, coverage=c.coverage)
        inside = (y_test >= low) & (y_test <= high)
        return {"coverage": float(inside.mean()), "nominal": c.coverage,
                "mean_width": float((high - low).mean()), "on": "test", "low": low, "high": high}
    return interval_coverage(
        ensemble.estimator, runs.X, runs.y, n_bags=min(r.bags, max(2, c.calibration_bags)),
        folds=max(2, min(r.folds, c.calibration_folds)), seed=r.seed,
        coverage=c.coverage, n_jobs=prediction_threads(r.n_jobs),
    ) | {"on": "out of fold"}


def _warn_if_another_ranks_better(comparison: Comparison, drive: str, warnings: list[str]) -> None:
    scores = comparison.table["oof_spearman"]
    best_oof = scores.idxmax() if scores.notna().any() else drive
    if best_oof != drive:
        warnings.append(
            f"{best_oof} has a higher out-of-fold Spearman than the driving {drive} "
            f"({scores[best_oof]:.4f} vs {scores[drive]:.4f}); "
            f"regressor.drive={best_oof} would let it pick the mixture"
        )
