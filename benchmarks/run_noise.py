"""Are the held-out runs as noisy as the training runs? Calibration assumes they are.

Conformal intervals (analysis.predictive) hold their coverage for a new run that is exchangeable
with the training runs: as noisy, drawn the same way. `benchmarks/calibration.py` scores them on
one fixed set of held-out runs; where those runs are quieter than the training runs, every
calibrated interval holds more of them than it says. This checks that assumption on any swarm
with held-out runs (default `source=paper`), on every domain loss the runs logged, not only
the target:

- pool the training and held-out runs and predict each run's loss on each domain out of fold
  (the driving regressor's kind, `--folds`-fold), so both origins are judged by the same models;
- per domain: the mean squared residual of held-out-origin runs against training-origin runs
  (a ratio below 1: the held-out runs are easier to predict), and the mean residual of each;
- per run, its shared residual: the mean over domains of its standardised residuals (a run that
  trained worse than its mixture predicts sits above the fit on every domain), its spread by
  origin with Levene's test, and by blocks of training runs in the order the source lists them.

    python benchmarks/run_noise.py [--folds 10] [--block 32] [regmix-fit overrides]

The last line is exactly
`run_noise: domains=<n> easier_held_out=<n> shared_sd_train=<f> shared_sd_held_out=<f> levene_p=<f>`.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from calibration import compose_fit_config


def out_of_fold_residuals(cfg, drive: str, X: np.ndarray, losses, folds: int):
    """Residual y - out-of-fold prediction per run and domain (runs x domains), every domain
    fitted with the same folds (`regressor.seed`)."""
    import pandas as pd

    from analysis.compare import kfold_residuals
    from analysis.regressors import build_regressor
    from analysis.regressors.base import prediction_threads

    estimator = build_regressor(drive, cfg.regressor, seed=cfg.regressor.seed)
    threads = prediction_threads(cfg.regressor.n_jobs)
    return pd.DataFrame({domain: kfold_residuals(estimator, X, losses[domain].to_numpy(dtype=np.float64), folds=folds,
                                                 seed=cfg.regressor.seed, n_jobs=threads)[0]
                         for domain in losses.columns}, index=losses.index)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--block", type=int, default=32, help="training runs per block of the listing")
    args, overrides = parser.parse_known_args(argv)
    cfg = compose_fit_config(overrides)
    if cfg is None:
        return 2
    import pandas as pd
    from scipy.stats import levene

    from analysis.fit_load import load_stage
    from analysis.fit_model import model_stage

    runs = load_stage(cfg, warnings=[])
    train, held = runs.table, runs.test_table
    domains = [d for d in train.loss_domains if d in held.loss_domains]
    cfg.choice.calibrate = False
    drive = model_stage(cfg, runs, timings={}, warnings=[]).drive  # the driver regmix-fit picks
    weights = pd.concat([train.weights[train.domains], held.weights[train.domains]], ignore_index=True)
    losses = pd.concat([train.losses[domains], held.losses[domains]], ignore_index=True)
    complete = losses.notna().all(axis=1).to_numpy()
    held_out = np.r_[np.zeros(len(train), bool), np.ones(len(held), bool)][complete]
    print(f"{complete.sum()} runs pooled ({(~held_out).sum()} training, {held_out.sum()} held out) with a loss on "
          f"all {len(domains)} domains; {drive}, {args.folds}-fold out of fold")
    residuals = out_of_fold_residuals(cfg, drive, weights.to_numpy()[complete], losses[complete], args.folds)

    easier = 0
    print(f"{'domain':>20}  mse held-out / training  mean residual training, held-out (nats)")
    for domain in domains:
        r = residuals[domain].to_numpy()
        ratio = np.mean(r[held_out] ** 2) / np.mean(r[~held_out] ** 2)
        easier += int(ratio < 1)
        print(f"{domain:>20}  {ratio:.2f}  {r[~held_out].mean():+.4f}, {r[held_out].mean():+.4f}")

    z = (residuals - residuals.mean()) / residuals.std()
    shared = z.mean(axis=1).to_numpy()
    sd_train, sd_held = shared[~held_out].std(ddof=1), shared[held_out].std(ddof=1)
    p = float(levene(shared[~held_out], shared[held_out]).pvalue)
    print(f"shared residual (mean standardised residual over domains, per run): sd {sd_train:.2f} training, "
          f"{sd_held:.2f} held out (Levene p={p:.2g})")
    order = shared[~held_out]
    blocks = [(b, order[b:b + args.block]) for b in range(0, len(order), args.block)]
    cells = [f"{b + 1}-{b + len(block)}: {block.mean():+.2f} sd {block.std():.2f}" for b, block in blocks]
    print("training runs by block of the listing (mean, sd of the shared residual):\n  " + "\n  ".join(cells))
    worst = np.argsort(-np.abs(order))[:5]
    ids = train.weights.index[complete[: len(train)]]
    print("largest shared residuals (training run: z): " + ", ".join(f"{ids[i]}: {order[i]:+.2f}" for i in worst))
    print(f"run_noise: domains={len(domains)} easier_held_out={easier} shared_sd_train={sd_train:.4f} "
          f"shared_sd_held_out={sd_held:.4f} levene_p={p:.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
