"""Is the fit calibrated on average, or only on one split? Coverage over random re-splits.

`benchmarks/calibration.py` scores one fixed split (the paper's 512 training and 256 test runs);
a calibrated 80% interval holds 80% +- 2.5% (one standard error) of 256 runs, so one split says
little about a bias of a few points. This pools the training and test runs, draws `--resplits`
random splits of the same sizes, and for each fits the driving regressor as regmix-fit does
(K-fold out of fold, plus the 2-fold learning curve) and scores the intervals on the held-out
part, with the residuals as measured and with the learning-curve scale
(`choice.learning_curve`). It prints the mean and spread of coverage@50/80/95 for both, and
where the fixed split falls among them; and the 80% intervals' coverage among the held-out runs
of the lowest and the highest quarter of predicted loss (the choice lives at the low end), with
the spread by level (`choice.noise_by_level=true`, analysis.noise_level) and with one spread for
all (the default).

    python benchmarks/calibration_resplits.py [--resplits 16] [regmix-fit overrides]

The last line is exactly
`resplits: n=<n> coverage@50=<f> coverage@80=<f> coverage@95=<f> scale=<f> measured@80=<f>
by_level_low@80=<f> by_level_high@80=<f> one_spread_low@80=<f> one_spread_high@80=<f>` (means over
the re-splits, as configured, with the scale; measured@80 without it; low/high: the quarters of
lowest and highest predicted loss, with the spread by level and with one spread).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from calibration import compose_fit_config, quarter_coverage

LEVELS = (0.5, 0.8, 0.95)


def pooled_runs(cfg):
    """regmix-fit's own runs, target and driver for `cfg`, its training and held-out runs pooled:
    (fit result, mixtures frame, target losses)."""
    import pandas as pd

    from analysis.fit import run_fit

    cfg.choice.calibrate = False
    result = run_fit(cfg, progress=False)
    domains = result.table.domains
    X = pd.concat([result.table.weights[domains], result.test_table.weights[domains]], ignore_index=True)
    y = np.concatenate([result.target.values(result.table.losses), result.target.values(result.test_table.losses)])
    return result, X, y


def fit_split(cfg, drive: str, X, y, seed: int):
    """The driver fitted on one split's training runs as regmix-fit fits it (K-fold out of fold,
    the 2-fold learning curve): `predictive(scale, by_level)` builds its predictive distribution;
    returns (that builder, the learning-curve scale)."""
    from analysis.compare import compare_regressors, residual_scale
    from analysis.predictive import Predictive
    from analysis.regressors import build_regressor

    estimator = build_regressor(drive, cfg.regressor, seed=seed)
    comp = compare_regressors({drive: estimator}, X, y, folds=cfg.regressor.folds, seed=seed, n_jobs=-1)
    scale = residual_scale(comp, drive, X, y, seed=seed, repeats=cfg.choice.learning_curve_repeats, n_jobs=2)

    def predictive(s: float, by_level: bool) -> Predictive:
        return Predictive.from_folds(comp.models[drive], comp.fold_models[drive], comp.fold_of, y, comp.oof[drive],
                                     scale=s, by_level=by_level)

    return predictive, scale


def _score(cfg, drive: str, X, y, X_held, y_held, seed: int) -> tuple[float, list[float], list[float], list[float]]:
    """(scale, coverages with it, coverages as measured, 80% coverage of the low and high quarters
    with the spread by level and with one spread) of one split."""
    from analysis.calibration import score_calibration

    predictive, scale = fit_split(cfg, drive, X, y, seed)
    held = X_held.to_numpy()
    covered = []
    for s in (scale, 1.0):
        scores = score_calibration(predictive(s, cfg.choice.noise_by_level), held, y_held, coverages=LEVELS)
        covered.append([scores.coverage[c] for c in LEVELS])
    quarters = [*quarter_coverage(predictive(scale, True), held, y_held),
                *quarter_coverage(predictive(scale, False), held, y_held)]
    return scale, covered[0], covered[1], quarters


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resplits", type=int, default=16)
    args, overrides = parser.parse_known_args(argv)
    cfg = compose_fit_config(overrides)
    if cfg is None:
        return 2
    result, X, y = pooled_runs(cfg)
    n_train = len(result.table)
    print(f"{len(y)} runs pooled ({n_train} training, {len(y) - n_train} test); driver {result.drive}, "
          f"{cfg.regressor.folds}-fold; {args.resplits} random re-splits of the same sizes")

    def split_line(name: str, scale: float, scaled: list[float], measured: list[float], quarters: list[float]) -> str:
        cover = " ".join(f"{v:.3f}" for v in scaled)
        return (f"  {name:>9}: scale {scale:.3f}; coverage@50/80/95 {cover} (as measured: {measured[1]:.3f} at 80%); "
                f"80% in the low/high quarter by level {quarters[0]:.3f}/{quarters[1]:.3f}, "
                f"one spread {quarters[2]:.3f}/{quarters[3]:.3f}")

    fixed = _score(cfg, result.drive, X.iloc[:n_train], y[:n_train], X.iloc[n_train:], y[n_train:], cfg.regressor.seed)
    print(split_line("fixed", *fixed))
    rows = []
    for r in range(args.resplits):
        order = np.random.default_rng(r).permutation(len(y))
        train, held = order[:n_train], order[n_train:]
        rows.append(_score(cfg, result.drive, X.iloc[train].reset_index(drop=True), y[train],
                           X.iloc[held], y[held], cfg.regressor.seed + r))
        print(split_line(f"resplit {r}", *rows[-1]), flush=True)
    scales = np.array([r[0] for r in rows])
    scaled, measured = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    quarters = np.array([r[3] for r in rows]).mean(axis=0)
    for i, level in enumerate(LEVELS):
        print(f"{level:.0%} intervals: hold {scaled[:, i].mean():.3f} +- {scaled[:, i].std(ddof=1):.3f} with the scale, "
              f"{measured[:, i].mean():.3f} +- {measured[:, i].std(ddof=1):.3f} as measured "
              f"(mean +- sd over re-splits); the fixed split: {fixed[1][i]:.3f}, above "
              f"{np.mean(scaled[:, i] < fixed[1][i]):.0%} of the re-splits")
    print(f"resplits: n={args.resplits} " + " ".join(f"coverage@{round(100 * c)}={scaled[:, i].mean():.4f}"
                                                      for i, c in enumerate(LEVELS))
          + f" scale={scales.mean():.4f} measured@80={measured[:, 1].mean():.4f}"
          + f" by_level_low@80={quarters[0]:.4f} by_level_high@80={quarters[1]:.4f}"
          + f" one_spread_low@80={quarters[2]:.4f} one_spread_high@80={quarters[3]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
