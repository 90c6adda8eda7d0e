"""Do the fit's claims hold at the mixtures it would pick, not only at runs drawn at random?

The calibration benchmarks score held-out runs drawn like the training runs. The claims that
matter are about the mixture the fit picks for its low prediction, where a spread that is right
on average can be too wide or too narrow. This pools the training and held-out runs, and per
random re-split (training part of `--train` runs, the rest held out) fits the driving regressor
as regmix-fit does (K-fold out of fold, the 2-fold learning curve), takes the `--picks` held-out
mixtures it predicts best as its picks, and scores them, with one spread for all runs and with
the spread by level (`choice.noise_by_level`, analysis.noise_level):

- the share of picks whose observed loss lies inside their 80% interval;
- P(pick beats each other held-out run) against the truth: ECE (10 bins) and the mean P against
  the observed frequency where 0.6 <= P < 0.9 (the claims a user acts on);
- the same interval share for the picks predicted better than every training run (beyond the
  runs' levels, where the spread by level takes the quietest runs' spread).

    python benchmarks/calibration_picks.py [--resplits 16] [--train 512] [--picks 5] [regmix-fit overrides]

The last line is exactly
`picks: n=<n> one_spread@80=<f> by_level@80=<f> one_spread_ece=<f> by_level_ece=<f>`.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from calibration import compose_fit_config
from calibration_resplits import fit_split, pooled_runs

SPREADS = {"one_spread": False, "by_level": True}
COVERAGE = 0.8


def _score_picks(predictive, X_held: np.ndarray, y_held: np.ndarray, picks: int) -> dict:
    """Per pick: inside its interval, predicted beyond the training levels; P and truth of each
    pick against every other held-out run."""
    center = predictive.predict(X_held)
    chosen = np.argsort(center)[:picks]
    low, high = predictive.interval(None, COVERAGE, center=center[chosen])
    others = np.setdiff1d(np.arange(len(y_held)), chosen)
    p = np.concatenate([predictive.probability_between(np.full(len(others), center[k]), center[others]) for k in chosen])
    truth = np.concatenate([(y_held[k] < y_held[others]).astype(np.float64) for k in chosen])
    return {"inside": (y_held[chosen] >= low) & (y_held[chosen] <= high),
            "beyond": center[chosen] < predictive.levels.min(), "p": p, "truth": truth}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resplits", type=int, default=16)
    parser.add_argument("--train", type=int, default=512, help="training runs per re-split (the rest are held out)")
    parser.add_argument("--picks", type=int, default=5, help="held-out mixtures picked per re-split")
    args, overrides = parser.parse_known_args(argv)
    cfg = compose_fit_config(overrides)
    if cfg is None:
        return 2
    from analysis.calibration import reliability

    result, X, y = pooled_runs(cfg)
    n_train = min(args.train, len(y) - args.picks - 1)
    print(f"{len(y)} runs pooled; {args.resplits} re-splits of {n_train} training runs; driver {result.drive}, "
          f"{cfg.regressor.folds}-fold; the {args.picks} held-out mixtures predicted best are the picks")

    scored = {name: [] for name in SPREADS}
    for r in range(args.resplits):
        order = np.random.default_rng(r).permutation(len(y))
        train, held = order[:n_train], order[n_train:]
        predictive, scale = fit_split(cfg, result.drive, X.iloc[train].reset_index(drop=True), y[train],
                                      cfg.regressor.seed + r)
        scale = scale if cfg.choice.learning_curve else 1.0
        for name, by_level in SPREADS.items():
            scored[name].append(_score_picks(predictive(scale, by_level), X.iloc[held].to_numpy(), y[held], args.picks))
        print(f"  resplit {r}: " + ", ".join(f"{name} {np.mean(scored[name][-1]['inside']):.0%} of picks inside"
                                             for name in SPREADS), flush=True)

    figures = {}
    for name in SPREADS:
        inside = np.concatenate([s["inside"] for s in scored[name]])
        beyond = np.concatenate([s["beyond"] for s in scored[name]])
        p, truth = (np.concatenate([s[k] for s in scored[name]]) for k in ("p", "truth"))
        ece, _ = reliability(p, truth)
        acted = (p >= 0.6) & (p < 0.9)
        figures[name] = (inside.mean(), ece)
        print(f"{name:>10}: {COVERAGE:.0%} intervals hold {inside.mean():.1%} of {len(inside)} picks "
              f"({inside[beyond].mean() if beyond.any() else float('nan'):.1%} of the {int(beyond.sum())} predicted "
              f"beyond every training run); P(pick beats another) ECE {ece:.4f}, where 0.6 <= P < 0.9: "
              f"mean P {p[acted].mean() if acted.any() else float('nan'):.3f}, "
              f"came true {truth[acted].mean() if acted.any() else float('nan'):.3f}")
    n = sum(len(s["inside"]) for s in scored["one_spread"])
    print(f"picks: n={n} one_spread@80={figures['one_spread'][0]:.4f} by_level@80={figures['by_level'][0]:.4f} "
          f"one_spread_ece={figures['one_spread'][1]:.4f} by_level_ece={figures['by_level'][1]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
