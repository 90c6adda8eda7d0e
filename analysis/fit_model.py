"""The fit's model stage: compare the regressors out of fold (and on held-out test runs), pick
the driving one, and turn its fold models and out-of-fold residuals into the predictive
distribution (analysis.predictive) whose calibration is measured on runs it never saw: the
test runs when given, else the training runs fold by fold. Beyond the comparison's folds, the
driver is fitted on halves of the runs, twice per random halving (the learning curve that scales
its residuals to the fit on all runs; choice.learning_curve, choice.learning_curve_repeats)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from analysis.calibration import CalibrationScores, score_calibration, score_out_of_fold
from analysis.compare import Comparison, choose_drive, compare_regressors, residual_scale
from analysis.config import FitAppConfig
from analysis.fit_load import LoadedRuns
from analysis.noise_level import NoiseLevel, fit_noise_level
from analysis.predictive import COVERAGES, Predictive
from analysis.regressors import build_regressor
from analysis.regressors.base import prediction_threads
from analysis.run_outliers import RunOutlier, outlier_warning, run_outliers


@dataclass
class Models:
    """What the model stage hands on."""

    comparison: Comparison
    drive: str
    """Name of the driving regressor."""
    why: str
    """Why it drives (the rule that picked it)."""
    predictive: Predictive
    """The predictive distribution of a new run's target loss (fold models + residuals)."""
    calibration: CalibrationScores | None
    """Its calibration on runs it never saw (test, else out of fold); None when off."""
    outliers: list[RunOutlier] | None
    """Runs far from what their mixtures predict out of fold (analysis.run_outliers), in the
    target's own units; None: too few runs (or no spread) to tell."""
    noise_trend: NoiseLevel
    """How the runs' noise changes with their predicted loss, measured whether or not the
    predictive distribution uses it (choice.noise_by_level)."""

    @property
    def model(self):
        """The driving regressor fitted on all runs."""
        return self.comparison.models[self.drive]

    @property
    def drive_oof(self) -> float:
        """The driving regressor's out-of-fold Spearman (NaN for a constant prediction)."""
        return float(self.comparison.table.loc[self.drive, "oof_spearman"])


def model_stage(cfg: FitAppConfig, runs: LoadedRuns, timings: dict[str, float], warnings: list[str]) -> Models:
    """Compare, pick the driver, build its predictive distribution and score its calibration;
    times `compare_s` and `calibrate_s`."""
    clock = time.perf_counter()
    comparison = _compare(cfg, runs)
    timings["compare_s"] = time.perf_counter() - clock
    drive, why = choose_drive(
        comparison, drive=cfg.regressor.drive, n_runs=len(runs.table), min_runs_for_trees=cfg.regressor.min_runs_for_trees
    )
    clock = time.perf_counter()
    predictive = Predictive.from_folds(comparison.models[drive], comparison.fold_models[drive], comparison.fold_of,
                                       runs.y, comparison.oof[drive], scale=_residual_scale(cfg, runs, comparison, drive),
                                       by_level=cfg.choice.noise_by_level)
    calibration = _calibration(cfg, runs, predictive)
    timings["calibrate_s"] = time.perf_counter() - clock
    _warn_if_another_ranks_better(comparison, drive, warnings)
    found = run_outliers(runs.table.weights.index, runs.y, comparison.oof[drive])
    outliers = None if found is None else [o.in_units(runs.target.user) for o in found]
    warnings.extend(w for w in (outlier_warning(outliers or [], len(runs.y)),) if w)
    # Measured either way (one slope, microseconds): the report says when the runs show a trend
    # that the intervals do not use.
    trend = predictive.noise if predictive.by_level else fit_noise_level(predictive.levels, predictive.residuals)
    return Models(comparison, drive, why, predictive, calibration, outliers, trend)


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


def _residual_scale(cfg: FitAppConfig, runs: LoadedRuns, comparison: Comparison, drive: str) -> float:
    """The driver's learning-curve scale (analysis.compare.residual_scale); 1 when turned off or
    with fewer than 3 folds (2-fold and K-fold are then the same size)."""
    if not cfg.choice.learning_curve or comparison.folds < 3:
        return 1.0
    return residual_scale(comparison, drive, runs.X, runs.y, seed=cfg.regressor.seed,
                          repeats=cfg.choice.learning_curve_repeats, n_jobs=prediction_threads(cfg.regressor.n_jobs))


def _calibration(cfg: FitAppConfig, runs: LoadedRuns, predictive: Predictive) -> CalibrationScores | None:
    """Coverage of the 50/80/95% (and `choice.coverage`) intervals and the calibration of P(a
    beats b), on the test runs when given, else on the training runs fold by fold (no fit)."""
    c = cfg.choice
    if not c.calibrate:
        return None
    levels = tuple(sorted({*COVERAGES, c.coverage}))
    if runs.X_test is not None:
        return score_calibration(predictive, runs.X_test.to_numpy(), runs.y_test, coverages=levels, nominal=c.coverage)
    return score_out_of_fold(predictive, runs.X.to_numpy(), runs.y, coverages=levels, nominal=c.coverage)


def _warn_if_another_ranks_better(comparison: Comparison, drive: str, warnings: list[str]) -> None:
    scores = comparison.table["oof_spearman"]
    best_oof = scores.idxmax() if scores.notna().any() else drive
    if best_oof != drive:
        warnings.append(
            f"{best_oof} has a higher out-of-fold Spearman than the driving {drive} "
            f"({scores[best_oof]:.4f} vs {scores[drive]:.4f}); "
            f"regressor.drive={best_oof} would let it pick the mixture"
        )
