"""The calibration benchmarks run on any swarm with held-out runs, as their docstrings say: a CSV
swarm and a CSV test swarm of the same known function, through the scripts as a user types them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = ["a", "b", "c", "d"]
LINE = re.compile(r"^calibration: coverage@50=(\S+) coverage@80=(\S+) coverage@95=(\S+) ece=(\S+) brier=(\S+) pairs=(\d+)$")
RUN_NOISE = re.compile(r"^run_noise: domains=(\d+) easier_held_out=(\d+) shared_sd_train=(\S+) shared_sd_held_out=(\S+) levene_p=(\S+)$")
RESPLITS = re.compile(r"^resplits: n=2 coverage@50=(\S+) coverage@80=(\S+) coverage@95=(\S+) scale=(\S+) measured@80=(\S+)"
                      r" by_level_low@80=(\S+) by_level_high@80=(\S+) one_spread_low@80=(\S+) one_spread_high@80=(\S+)$")
PICKS = re.compile(r"^picks: n=(\d+) one_spread@80=(\S+) by_level@80=(\S+) one_spread_ece=(\S+) by_level_ece=(\S+)$")


def swarm(root: Path, name: str, n: int, seed: int, bad_runs: slice = slice(0)) -> list[str]:
    """n runs: Dirichlet mixtures, per-domain losses with a curved response and run noise;
    `bad_runs` also trained worse by a run-level amount that every domain's loss shares."""
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(len(DOMAINS)), n)
    index = pd.Index(np.arange(n), name="index")
    pd.DataFrame(weights, columns=DOMAINS, index=index).to_csv(root / f"{name}_mixtures.csv")
    worse = np.zeros(n)
    worse[bad_runs] = np.abs(rng.normal(0, 0.08, len(worse[bad_runs])))
    losses = {f"loss_{d}": 3.0 - 0.8 * w + 0.6 * w**2 + worse + rng.normal(0, 0.02, n) for d, w in zip(DOMAINS, weights.T)}
    pd.DataFrame(losses, index=index).to_csv(root / f"{name}_losses.csv")
    return [f"mixtures={root / f'{name}_mixtures.csv'}", f"losses={root / f'{name}_losses.csv'}", "loss_prefix=loss_"]


def overrides(root: Path) -> list[str]:
    return [
        "source=csv", *[f"source.{o}" for o in swarm(root, "train", 60, 0)],
        "test.kind=csv", *[f"test.{o}" for o in swarm(root, "test", 40, 1)],
        "target=a", "regressor.compare=[ridge]", "simulation.n_candidates=5000", "simulation.top_k=20", "plots=false",
    ]


def run(script: str, *args: str) -> list[str]:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()


def test_calibration_benchmark_scores_a_csv_swarm_and_ends_with_its_line(tmp_path):
    lines = run("calibration.py", *overrides(tmp_path))
    match = LINE.match(lines[-1])
    assert match, lines[-1]
    shares = [float(v) for v in match.groups()[:5]]
    assert all(0.0 <= v <= 1.0 for v in shares) and int(match.group(6)) == 40 * 39 // 2
    assert any(line.strip().startswith("residual scale") for line in lines)
    ratio = [float(re.search(r"squared error: (\S+)x", line).group(1)) for line in lines if "squared error:" in line]
    assert len(ratio) == 1 and 0.3 < ratio[0] < 3  # the same function and noise on both sides: near 1
    assert shares[0] <= shares[1] <= shares[2]  # wider intervals hold at least as many runs


def test_resplit_benchmark_reports_the_mean_over_resplits(tmp_path):
    lines = run("calibration_resplits.py", "--resplits", "2", *overrides(tmp_path))
    match = RESPLITS.match(lines[-1])
    assert match, lines[-1]
    c50, c80, c95, scale, measured, *quarters = (float(v) for v in match.groups())
    assert all(0.0 <= q <= 1.0 for q in quarters)
    assert 0.0 <= c50 <= c80 <= c95 <= 1.0
    assert np.sqrt(0.8) - 1e-9 <= scale <= 1.0  # 5 folds: the learning curve's own bounds
    assert c80 <= measured  # scaled intervals are never wider than the measured ones
    assert sum(line.strip().startswith("resplit ") for line in lines) == 2


def test_picks_benchmark_scores_the_mixtures_the_fit_would_pick(tmp_path):
    """2 re-splits of 60 training runs, 3 picks each among the other 40."""
    lines = run("calibration_picks.py", "--resplits", "2", "--train", "60", "--picks", "3", *overrides(tmp_path))
    match = PICKS.match(lines[-1])
    assert match, lines[-1]
    assert int(match.group(1)) == 6 and all(0.0 <= float(v) <= 1.0 for v in match.groups()[1:])
    assert sum(line.strip().startswith("resplit ") for line in lines) == 2


def test_calibration_benchmark_without_held_out_runs_says_what_it_needs(tmp_path):
    args = [o for o in overrides(tmp_path) if not o.startswith("test.")]
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "calibration.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "needs held-out runs" in done.stdout



def test_run_noise_finds_a_noisier_block_of_training_runs_and_quiet_held_out_runs(tmp_path):
    """Training runs 40-59 trained worse by a shared amount (the paper's released runs have such a
    block); the held-out runs did not: every domain finds them easier, the shared residual is wider
    among training runs, and the listing's last block is the noisy one."""
    args = [
        "source=csv", *[f"source.{o}" for o in swarm(tmp_path, "train", 60, 0, bad_runs=slice(40, 60))],
        "test.kind=csv", *[f"test.{o}" for o in swarm(tmp_path, "test", 40, 1)],
        "target=a", "regressor.compare=[ridge]",
    ]
    lines = run("run_noise.py", "--folds", "5", "--block", "20", *args)
    match = RUN_NOISE.match(lines[-1])
    assert match, lines[-1]
    domains, easier, sd_train, sd_held, p = (float(v) for v in match.groups())
    assert domains == len(DOMAINS) and easier == len(DOMAINS)
    assert sd_train > 1.5 * sd_held and p < 0.05
    blocks = [float(re.search(r"sd (\S+)$", line).group(1)) for line in lines if re.match(r"^  \d+-\d+: ", line)]
    assert len(blocks) == 3 and blocks[2] > max(blocks[:2])
    # and the calibration benchmark says the quieter test runs are what its coverage reads
    lines = run("calibration.py", *args, "simulation.n_candidates=5000", "simulation.top_k=20", "plots=false")
    ratio = [float(re.search(r"squared error: (\S+)x", line).group(1)) for line in lines if "squared error:" in line]
    assert len(ratio) == 1 and ratio[0] < 0.7, ratio
