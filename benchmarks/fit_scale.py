"""regmix-fit at scale: a synthetic runs table of 10,000 runs x 100 domains, fitted and simulated.

The table (losses from a known dense quadratic of the weights, plus noise) is written as two
CSV files and run through `run_fit` exactly as `regmix-fit source=csv` would: validation,
ridge/LightGBM/XGBoost compared 5-fold out of fold, 1,000,000 candidates simulated in chunks,
mixture emitted, report written. Prints the time of each stage and the peak memory (RSS),
and how close the chosen mixture's true loss is to the known optimum's. The simulation's
Dirichlet strengths are scaled with the number of domains (see tests.support.synthetic_runs.scaled_sampler).

    python benchmarks/fit_scale.py [--runs 10000] [--domains 100] [--candidates 1000000]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

# Known-answer runs are test support (tests/support/), not part of the package: run from a checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--domains", type=int, default=100)
    parser.add_argument("--candidates", type=int, default=1_000_000)
    parser.add_argument("--regressor", default="default", help="conf/regressor entry (default, quick, linear)")
    args = parser.parse_args()

    import matplotlib.pyplot  # noqa: F401  (imports are not timed)
    import numpy as np
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from analysis.config import register_fit_configs
    from analysis.fit import run_fit
    from tests.support.synthetic_runs import TARGET, interaction_loss, scaled_sampler, synthetic_runs
    from regmix.hydra_conf import CONF_PACKAGE

    register_fit_configs()
    baseline = peak_rss_mib()
    out = Path(tempfile.mkdtemp(prefix="fit-scale-"))
    start = time.perf_counter()
    loss = interaction_loss(args.domains, seed=0)
    raw = synthetic_runs(loss, args.runs, seed=0, noise=0.01)
    raw.weights.rename_axis("index").to_csv(out / "mixtures.csv", float_format="%.6g")
    raw.losses.rename_axis("index").to_csv(out / "losses.csv", float_format="%.6g")
    made_s = time.perf_counter() - start
    del raw

    sampler = scaled_sampler(args.domains, min_strength=0.1, max_strength=5.0)
    overrides = [
        "source=csv", f"source.mixtures={out / 'mixtures.csv'}", f"source.losses={out / 'losses.csv'}",
        f"target={TARGET}", f"regressor={args.regressor}", "name=scale", f"mixture_dir={out}",
        f"report_dir={out / 'report'}", f"simulation.n_candidates={args.candidates}",
        f"simulation.sampler.min_strength={sampler.min_strength}", f"simulation.sampler.max_strength={sampler.max_strength}",
        "simulation.prior={" + ", ".join(f"{d}: 1" for d in loss.domains) + "}",
    ]
    with initialize_config_module(config_module=CONF_PACKAGE, version_base="1.3"):
        cfg = OmegaConf.to_object(compose(config_name="fit", overrides=overrides))
    start = time.perf_counter()
    result = run_fit(cfg, progress=False)
    total = time.perf_counter() - start

    chosen = result.mixture.vector(loss.domains)
    true_chosen = float(loss(chosen[None, :])[0])
    true_best_run = float(loss(result.table.weights[loss.domains].to_numpy()).min())
    sim = result.simulation
    print(f"cores: {os.cpu_count()}; runs: {args.runs:,} x {args.domains} domains; candidates: {args.candidates:,} "
          f"(strengths {sampler.min_strength:.2f}-{sampler.max_strength:.1f}, {100 * sim['acceptance']:.0f}% within caps)")
    print(f"synthetic table written in {made_s:.1f} s")
    print(f"run_fit: {total:.1f} s  (" + ", ".join(f"{k[:-2]} {v:.1f}s" for k, v in result.timings.items()) + ")")
    print("regressors (OOF Spearman): " + ", ".join(f"{n} {v:.3f}" for n, v in result.comparison['oof_spearman'].items())
          + f"; driving: {result.drive}")
    print(f"true loss: chosen {true_chosen:.4f}, best run {true_best_run:.4f}, optimum {loss.base:.4f}; "
          f"L1 to optimum {np.abs(chosen - loss.optimum()).sum():.3f}")
    print(f"peak memory (RSS): {peak_rss_mib():.0f} MiB (after imports: {baseline:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
