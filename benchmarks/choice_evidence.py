"""Which regressor should drive the choice? Regret of the emitted mixture on known-answer losses.

For linear and interaction (quadratic bowl) losses of 6 domains, a few seeds and small sweeps,
the three regressors are compared out of fold; then each way of picking the driver simulates
candidates and aggregates its top k, and the chosen mixture's TRUE loss minus the true optimum
(regret, nats) is printed:

- rule:      ridge below 128 runs, LightGBM from 128 (the earlier default);
- best_oof:  the highest out-of-fold Spearman (the default now);
- weighted:  an average of the regressors weighted by max(0, OOF Spearman)^4.

    python benchmarks/choice_evidence.py [--seeds 3] [--runs 32 64]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


class Blend:
    """An average of fitted regressors (the 'weighted' alternative)."""

    def __init__(self, models: dict, weights: dict[str, float]):
        total = sum(weights.values()) or 1.0
        self.models, self.weights = models, {k: v / total for k, v in weights.items()}

    def predict(self, X) -> np.ndarray:
        return sum(w * self.models[k].predict(X) for k, w in self.weights.items() if w > 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--runs", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--noise", type=float, default=0.02)
    args = parser.parse_args()

    from analysis.candidates import candidate_space
    from analysis.compare import choose_drive, compare_regressors
    from analysis.config import LightGBMConfig, RegressorsConfig, XGBoostConfig
    from analysis.regressors import build_regressor
    from analysis.runs_table import validate_runs
    from analysis.simulate import simulate
    from tests.support.synthetic_runs import TARGET, interaction_loss, linear_loss, scaled_sampler, synthetic_runs

    cfg = RegressorsConfig(
        lightgbm=LightGBMConfig(n_estimators=300, learning_rate=0.05),
        xgboost=XGBoostConfig(n_estimators=200, learning_rate=0.1),
    )
    start = time.perf_counter()
    regret: dict[tuple[str, str, int], list[float]] = {}
    for kind, make in (("linear", linear_loss), ("bowl", interaction_loss)):
        for n_runs in args.runs:
            for seed in range(args.seeds):
                loss = make(6, seed=seed)
                table, _ = validate_runs(synthetic_runs(loss, n_runs, seed=seed, noise=args.noise), required_losses=[TARGET])
                X, y = table.weights, table.losses[TARGET].to_numpy()
                estimators = {n: build_regressor(n, cfg) for n in ("ridge", "lightgbm", "xgboost")}
                comparison = compare_regressors(estimators, X, y, folds=5, seed=seed, n_jobs=2)
                space = candidate_space(loss.domains, {d: 1.0 for d in loss.domains}, scaled_sampler(6))
                best = float(loss(loss.optimum(space.upper)[None])[0])
                spearman = comparison.table["oof_spearman"].fillna(0).clip(lower=0)
                drivers = {
                    "rule": comparison.models[choose_drive(comparison, drive="rule", n_runs=n_runs, min_runs_for_trees=128)[0]],
                    "best_oof": comparison.models[choose_drive(comparison, drive="best_oof", n_runs=n_runs, min_runs_for_trees=128)[0]],
                    "weighted": Blend(comparison.models, {k: float(v) ** 4 for k, v in spearman.items()}),
                }
                for name, model in drivers.items():
                    chosen = simulate(model, space, n_candidates=20_000, top_k=20, seed=seed, progress=False).weights
                    regret.setdefault((kind, name, n_runs), []).append(float(loss(chosen[None])[0]) - best)
    print(f"regret of the chosen mixture (true loss - true optimum, nats), mean over {args.seeds} seeds, noise {args.noise}")
    print(f"{'loss':8} {'runs':>5} {'rule':>9} {'best_oof':>9} {'weighted':>9}")
    for kind in ("linear", "bowl"):
        for n_runs in args.runs:
            cells = [np.mean(regret[(kind, name, n_runs)]) for name in ("rule", "best_oof", "weighted")]
            print(f"{kind:8} {n_runs:>5} " + " ".join(f"{c:9.4f}" for c in cells))
    totals = {name: np.mean([np.mean(v) for (k, n, r), v in regret.items() if n == name]) for name in ("rule", "best_oof", "weighted")}
    print("mean over all: " + ", ".join(f"{k} {v:.4f}" for k, v in totals.items()))
    print(f"wall {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
