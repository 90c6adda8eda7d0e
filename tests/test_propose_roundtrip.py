"""Two rounds on the synthetic corpus through the real commands: sample, train, propose, train, fit both."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
#: A tiny budget (8 steps of 8 x 64 tokens): the round trip checks the plumbing, not the losses.
BUDGET = ["model=tiny", "train.tokens=4096", "train.batch_size=8", "train.seq_len=64", "eval.tokens_per_domain=1024"]


def cli(cwd: Path, name: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(BIN / name), *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{name} {args}: {proc.stderr[-2000:]}"
    return proc


@pytest.mark.slow
def test_round_trip_r0_then_proposed_r1(tmp_path):
    data = ["data.dir=data/syn"]
    cli(tmp_path, "regmix-prepare", *data, "data.synthetic.train_scale=0.05", "data.synthetic.val_tokens=4096")
    fixed = "fixed=[" + ",".join(f'"{item}"' for item in BUDGET) + "]"
    cli(tmp_path, "regmix-sample", "sweep=r0", "n_mixtures=16", *data, fixed)
    cli(tmp_path, "regmix-train", "-m", "sweep=r0", "mixture.index=range(0,16)", *data, *BUDGET, "tracker=disabled")

    proposed = cli(tmp_path, "regmix-propose", "sweep=r0", "out=r1", "k=8", "acquisition.n_bags=4", "n_candidates=5000")
    assert "local: 16 runs read, 16 used" in proposed.stdout
    record = json.loads((tmp_path / "sweeps" / "r1.sampler.json").read_text())
    assert record["parents"]["sweeps"] == ["r0"] and len(record["parents"]["runs"]) == 16
    assert record["target"] == "web_blend" and record["n_mixtures"] == 8
    # The new sweep inherits r0's fixed items: its local command trains with the same budget.
    local = next(line for line in proposed.stdout.splitlines() if line.startswith("local sweep:"))
    assert all(item in local for item in [*data, *BUDGET])

    cli(tmp_path, "regmix-train", "-m", "sweep=r1", "mixture.index=range(0,8)", *data, *BUDGET, "tracker=disabled")
    assert len(list((tmp_path / "runs" / "r1").glob("*/result.json"))) == 8

    fit = cli(tmp_path, "regmix-fit", "sweep=[r0,r1]", "target=web_blend", "regressor=linear",
              "simulation.n_candidates=5000", "simulation.top_k=20", "plots=false", "mixture_dir=mix")
    assert "local: 24 runs read, 24 used" in fit.stdout and "by round: r0 16, r1 8" in fit.stdout
    assert (tmp_path / "mix" / "r0-r1_web_blend.yaml").is_file()
    dry = cli(tmp_path, "regmix-sweep", "sweep=r1", "dry_run=true")
    assert "r1" in dry.stdout
