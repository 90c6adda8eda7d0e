"""Comparison of regressors: K-fold out-of-fold scores (and held-out test scores), and the
choice of the regressor that drives the simulation.

Scores on the data a model was fitted on say little (a 1000-tree model ranks its own training
runs almost perfectly); every figure here is out of fold or on runs never fitted.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, parallel_config
from scipy.stats import pearsonr, spearmanr
from sklearn.base import clone
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import KFold

from analysis.errors import AnalysisError
from analysis.predictive import learning_curve_scale
from analysis.regressors import REGRESSORS, is_linear

METRICS = ("spearman", "pearson", "mse", "r2")
#: The regressor 'auto' prefers once there are enough runs: the paper's (Table 2: LightGBM
#: 98.45 vs linear 90.08 Spearman on unseen mixtures).
PREFERRED_TREES = "lightgbm"
PREFERRED_LINEAR = "ridge"


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Spearman and Pearson correlation, MSE and R2; correlations are NaN for a constant prediction."""
    y_true, y_pred = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    constant = np.ptp(y_pred) == 0 or np.ptp(y_true) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spearman = np.nan if constant else float(spearmanr(y_true, y_pred)[0])
        pearson = np.nan if constant else float(pearsonr(y_true, y_pred)[0])
    return {
        "spearman": spearman,
        "pearson": pearson,
        "mse": float(mean_squared_error(y_true, y_pred)),
        "r2": float(r2_score(y_true, y_pred)) if len(y_true) > 1 else np.nan,
    }


@dataclass
class Comparison:
    """Scores per regressor, their out-of-fold/test predictions and the models fitted on all runs."""

    table: pd.DataFrame
    """Index: regressor; columns oof_<metric>, test_<metric> (when a test source is given), fit_s."""
    oof: dict[str, np.ndarray] = field(default_factory=dict)
    test: dict[str, np.ndarray] = field(default_factory=dict)
    models: dict = field(default_factory=dict)
    folds: int = 0
    fold_models: dict = field(default_factory=dict)
    """Per regressor, its K fold models: model k was fitted without the runs of fold k (kept for
    the CV+ predictive distribution, analysis.predictive, at no extra fit)."""
    fold_of: np.ndarray | None = None
    """The fold each run was held out in, shape (n,)."""


def compare_regressors(
    estimators: dict,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    folds: int = 5,
    seed: int = 0,
    X_test: pd.DataFrame | None = None,
    y_test: np.ndarray | None = None,
    n_jobs: int = 1,
) -> Comparison:
    """Score every estimator out of fold (K-fold, shuffled by `seed`), fit it on all runs, and
    score that fit on the test runs when given. All fits run on `n_jobs` threads (the
    boosters release the GIL; threads start in microseconds where processes take a second)."""
    if not estimators:
        raise AnalysisError("no regressor to compare; set regressor.compare=[ridge,lightgbm,xgboost]")
    k = min(int(folds), len(y))
    if k < 2:
        raise AnalysisError(f"regressor.folds={folds} is too few: use at least 2")
    cv = KFold(n_splits=k, shuffle=True, random_state=seed)
    splits = list(cv.split(X))
    # Every fold of every estimator, and each final fit on all runs, in one flat batch: a
    # per-estimator cross_val_predict leaves a thread idle at the end of each estimator.
    tasks = [(name, fold) for name in estimators for fold in [*range(k), None]]

    def fit_one(name: str, fold: int | None):
        start = time.perf_counter()
        rows_ = slice(None) if fold is None else splits[fold][0]
        model = clone(estimators[name]).fit(X.iloc[rows_], y[rows_])
        predicted = None if fold is None else model.predict(X.iloc[splits[fold][1]])
        return name, fold, model, predicted, time.perf_counter() - start

    with parallel_config(backend="threading"):
        done = Parallel(n_jobs=n_jobs)(delayed(fit_one)(name, fold) for name, fold in tasks)
    rows, result = {}, Comparison(table=pd.DataFrame(), folds=k)
    result.fold_of = np.empty(len(y), dtype=np.int64)
    for fold, (_, held) in enumerate(splits):
        result.fold_of[held] = fold
    for name in estimators:
        oof, seconds = np.empty(len(y), dtype=np.float64), 0.0
        result.fold_models[name] = [None] * k
        for task_name, fold, model, predicted, elapsed in done:
            if task_name != name:
                continue
            seconds += elapsed
            if fold is None:
                result.models[name] = model
            else:
                oof[splits[fold][1]] = predicted
                result.fold_models[name][fold] = model
        row = {f"oof_{m}": v for m, v in scores(y, oof).items()}
        result.oof[name] = oof
        if X_test is not None and y_test is not None:
            predicted = result.models[name].predict(X_test)
            result.test[name] = predicted
            row.update({f"test_{m}": v for m, v in scores(y_test, predicted).items()})
        row["fit_s"] = seconds  # CPU-side seconds of this regressor's fits (they overlap in wall time)
        rows[name] = row
    result.table = pd.DataFrame.from_dict(rows, orient="index")
    result.table.index.name = "regressor"
    return result


def choose_drive(comparison: Comparison, *, drive: str, n_runs: int, min_runs_for_trees: int) -> tuple[str, str]:
    """The regressor whose predictions pick the mixture, and why (one line for the report).

    - a regressor's name: that one;
    - 'auto' or 'best_oof': the highest out-of-fold Spearman on the runs at hand (ties: the
      first compared). The evidence decides, not a run-count rule: on a synthetic corpus ridge
      emitted the better mixture at 48 runs, on real text XGBoost did at 32 (facts 6 and 7);
      a regressor that ranks held-out runs badly is the one not to follow.
    - 'rule': the earlier rule, LightGBM from `min_runs_for_trees` runs, ridge below.
    """
    table = comparison.table
    compared = list(table.index)
    spearman = table["oof_spearman"].fillna(-np.inf)
    if drive in REGRESSORS:
        if drive not in compared:
            raise AnalysisError(f"regressor.drive={drive!r} was not compared; add it to regressor.compare={compared}")
        return drive, f"set in config (regressor.drive={drive})"
    if drive in ("auto", "best_oof"):
        best = str(spearman.idxmax())
        others = ", ".join(f"{n} {table.loc[n, 'oof_spearman']:.3f}" for n in compared if n != best)
        return best, (
            f"{drive}: highest out-of-fold Spearman on these {n_runs} runs ({table.loc[best, 'oof_spearman']:.3f}"
            + (f"; {others}" if others else "") + ")"
        )
    if drive != "rule":
        raise AnalysisError(f"regressor.drive={drive!r} is unknown; use auto, best_oof, rule or one of {compared}")
    enough = n_runs >= min_runs_for_trees
    preferred = PREFERRED_TREES if enough else PREFERRED_LINEAR
    if preferred in compared:
        why = (
            f"rule: {n_runs} runs >= {min_runs_for_trees}, the paper's LightGBM"
            if enough
            else f"rule: {n_runs} runs < {min_runs_for_trees} (regressor.min_runs_for_trees), a linear model"
        )
        return preferred, why
    eligible = [n for n in compared if enough or is_linear(n)] or compared
    best = str(spearman[eligible].idxmax())
    return best, f"rule: {preferred} not compared; best out-of-fold Spearman among {eligible}"


def kfold_residuals(estimator, X, y: np.ndarray, *, folds: int, seed: int, repeats: int = 1,
                    n_jobs: int = 1) -> np.ndarray:
    """Out-of-fold residuals y - prediction of `estimator` fitted K-fold, for `repeats` shufflings
    (KFold seeds seed, seed + 1, ...): shape (repeats, n). All repeats x K fits run in one batch
    on `n_jobs` threads (repeat by repeat would leave a thread idle at the end of each)."""
    if repeats < 1:
        raise AnalysisError(f"{repeats} repeats of {folds}-fold; use at least 1")
    y = np.asarray(y, dtype=np.float64)
    rows = X.iloc if isinstance(X, pd.DataFrame) else np.asarray(X)
    splits = [split for r in range(repeats) for split in KFold(n_splits=folds, shuffle=True, random_state=seed + r).split(X)]

    def fit_fold(train: np.ndarray, held: np.ndarray) -> np.ndarray:
        return np.asarray(clone(estimator).fit(rows[train], y[train]).predict(rows[held]), dtype=np.float64)

    with parallel_config(backend="threading"):
        done = Parallel(n_jobs=max(1, n_jobs))(delayed(fit_fold)(train, held) for train, held in splits)
    predicted = np.empty((repeats, len(y)), dtype=np.float64)
    for i, ((_, held), values) in enumerate(zip(splits, done)):
        predicted[i // folds, held] = values
    return y[None, :] - predicted


def half_split_residuals(estimator, X: pd.DataFrame, y: np.ndarray, *, seed: int, repeats: int = 1,
                         n_jobs: int = 1) -> np.ndarray:
    """Out-of-fold residuals of `estimator` fitted 2-fold (on half the runs each), for `repeats`
    random halvings: shape (repeats, n). The small end of the learning curve that takes K-fold
    residuals to the fit on all runs (analysis.predictive.learning_curve_scale)."""
    if repeats < 1:
        raise AnalysisError(f"choice.learning_curve_repeats={repeats}; use at least 1 halving")
    return kfold_residuals(estimator, X, y, folds=2, seed=seed, repeats=repeats, n_jobs=n_jobs)


#: Fewest runs for the learning curve: each half must hold a few runs to fit anything.
MIN_RUNS_FOR_CURVE = 8


def residual_scale(comparison: Comparison, name: str, X: pd.DataFrame, y: np.ndarray, *, seed: int,
                   repeats: int = 1, n_jobs: int = 1) -> float:
    """How much less regressor `name` fitted on all runs misses than its fold models did (<= 1):
    its 2-fold residuals (mean square over `repeats` halvings) against the comparison's K-fold
    ones, extrapolated to all runs (analysis.predictive.learning_curve_scale); 1 with fewer than
    MIN_RUNS_FOR_CURVE runs. One halving's mean square is a noisy draw: on random re-splits of
    the paper's runs the scale's s.d. over splits is 0.024 from one halving, 0.014 from three."""
    if len(y) < MIN_RUNS_FOR_CURVE:
        return 1.0
    half = half_split_residuals(comparison.models[name], X, y, seed=seed, repeats=repeats, n_jobs=n_jobs)
    folds = np.asarray(y, dtype=np.float64) - comparison.oof[name]
    return learning_curve_scale(float(np.mean(half**2)), float(np.mean(folds**2)), comparison.folds)
