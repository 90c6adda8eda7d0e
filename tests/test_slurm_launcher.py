"""The SLURM path without a cluster: a multirun through submitit's local executor.

`hydra/launcher=submitit_local` runs the same hydra-submitit-launcher code as
`hydra/launcher=slurm` (pickled job, submitit's job folder, one process per job, results read
back), on this machine. Two tiny proxies of a few steps keep it to seconds of training.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from regmix.run_record import FINISHED, read_record

BIN = Path(sys.executable).parent
#: Small enough to train in seconds on one core: 4 steps of 8 x 64 tokens, a small eval slice.
FAST = ["train.tokens=2048", "train.batch_size=8", "train.seq_len=64", "eval.tokens_per_domain=2048"]


def cli(name: str, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / name), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_submitit_multirun_trains_two_tiny_proxies_to_finished_records(tmp_path):
    corpus = tmp_path / "shared" / "synthetic"  # on a cluster: a folder every node mounts
    assert cli("regmix-prepare", f"data.dir={corpus}", cwd=tmp_path).returncode == 0
    sampled = cli("regmix-sample", "sweep=s", "n_mixtures=2", f"data.dir={corpus}", cwd=tmp_path)
    assert sampled.returncode == 0, sampled.stderr
    done = cli(
        "regmix-train", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
        "sweep=s", "mixture.index=range(0,2)", "model=tiny", f"data.dir={corpus}", *FAST,
        cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "runs" / "s"
    records = {p.parent.name: read_record(p) for p in sorted(out.glob("*/result.json"))}
    assert sorted(records) == ["mix0000", "mix0001"]
    for name, record in records.items():
        assert record.status == FINISHED and record.mixture_index == int(name[3:])
        assert record.val_loss and record.tokens == 2048
    assert (out / ".submitit").is_dir(), "the jobs went through submitit (its job folder is in the sweep dir)"
    assert len({r.wandb["id"] for r in records.values()}) == 2  # each job its own W&B run
