"""Checkpoints and resume: a preempted run continues where its last checkpoint stood and ends
exactly like an uninterrupted one; a SIGKILL during a write never spoils the previous checkpoint."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from regmix.checkpoint import CHECKPOINT, load_checkpoint
from regmix.config import EvalConfig, MixtureConfig, ModelConfig, TrackerConfig, TrainAppConfig, TrainConfig
from regmix.corpus.config import DataConfig
from regmix.run_record import FINISHED, PREEMPTED, read_record
from regmix.train import train_run
from tests.support.byte_corpus import random_byte_corpus

BIN = Path(sys.executable).parent
WEIGHTS = {"a": 0.5, "b": 0.3, "c": 0.2}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return random_byte_corpus(tmp_path_factory.mktemp("corpus"), name="ckpt", domains=WEIGHTS,
                              train_tokens=100_000, val_tokens=10_000)


def cfg(corpus: Path, out: Path, **train) -> TrainAppConfig:
    return TrainAppConfig(
        model=ModelConfig(d_model=32, n_heads=2, d_mlp=64, max_seq_len=64),
        data=DataConfig(dir=str(corpus)),
        train=TrainConfig(**{"tokens": 30 * 8 * 64, "batch_size": 8, "seq_len": 64, "lr": 3e-3, "warmup_steps": 3,
                             "checkpoint_every": 10, **train}),
        eval=EvalConfig(tokens_per_domain=2048, batch_size=8),
        mixture=MixtureConfig(weights=WEIGHTS),
        tracker=TrackerConfig(mode="disabled"),
        out_dir=str(out),
        run_name="run",
    )


def test_sigterm_after_a_checkpoint_then_rerun_ends_with_the_uninterrupted_losses(corpus, tmp_path):
    whole = train_run(cfg(corpus, tmp_path / "whole", keep_checkpoint=True), log=lambda *_: None)
    assert (tmp_path / "whole" / "run" / CHECKPOINT).is_file()  # kept when asked
    assert load_checkpoint(tmp_path / "whole" / "run")["step"] == 30  # the final weights, not step 20's

    def preempt_at_first_checkpoint(line: str) -> None:
        if "checkpoint at step 10" in line:
            signal.raise_signal(signal.SIGTERM)  # handled by the run's own preemption handler

    with pytest.raises(SystemExit) as exited:
        train_run(cfg(corpus, tmp_path / "cut"), log=preempt_at_first_checkpoint)
    assert exited.value.code == 128 + signal.SIGTERM
    run_dir = tmp_path / "cut" / "run"
    assert read_record(run_dir).status == PREEMPTED and load_checkpoint(run_dir)["step"] == 10
    lines: list[str] = []
    resumed = train_run(cfg(corpus, tmp_path / "cut"), log=lines.append)
    assert resumed.status == FINISHED and resumed.resumed_from_step == 10
    assert any("resuming from the checkpoint at step 10" in line for line in lines)
    assert resumed.val_loss == whole.val_loss  # bit for bit
    assert not (run_dir / CHECKPOINT).exists()  # finished runs delete their checkpoint


def test_sigterm_between_checkpoints_keeps_every_finished_step(corpus, tmp_path, monkeypatch):
    """A signal in the middle of step 14 (checkpoints every 10) ends that step, checkpoints step 14
    rather than losing 4 steps to the one at 10, and the rerun still ends bit for bit like a run
    never interrupted."""
    from regmix.prefetch import Prefetcher

    whole = train_run(cfg(corpus, tmp_path / "whole"), log=lambda *_: None)
    calls = {"n": 0}
    # The step's side of the stream (batches are cut ahead in a thread): the 14th batch a step takes.
    original = Prefetcher.next_batch

    def signal_in_step_14(self):
        calls["n"] += 1
        if calls["n"] == 14:  # one batch per step here: inside step 14, before its update
            signal.raise_signal(signal.SIGTERM)
        return original(self)

    monkeypatch.setattr(Prefetcher, "next_batch", signal_in_step_14)
    with pytest.raises(SystemExit) as exited:
        train_run(cfg(corpus, tmp_path / "cut"), log=lambda *_: None)
    monkeypatch.setattr(Prefetcher, "next_batch", original)
    assert exited.value.code == 128 + signal.SIGTERM
    run_dir = tmp_path / "cut" / "run"
    record = read_record(run_dir)
    assert record.status == PREEMPTED and record.error.startswith("preempted after step 14 of 30")
    assert load_checkpoint(run_dir)["step"] == 14
    resumed = train_run(cfg(corpus, tmp_path / "cut"), log=lambda *_: None)
    assert resumed.resumed_from_step == 14 and resumed.val_loss == whole.val_loss


def test_keep_checkpoint_keeps_the_final_weights_without_periodic_checkpoints(corpus, tmp_path):
    record = train_run(cfg(corpus, tmp_path, keep_checkpoint=True, checkpoint_every=0), log=lambda *_: None)
    kept = load_checkpoint(tmp_path / "run")
    assert record.status == FINISHED and kept["step"] == 30 and "model" in kept


def test_checkpoint_of_other_settings_is_not_resumed(corpus, tmp_path):
    train_run(cfg(corpus, tmp_path, keep_checkpoint=True), log=lambda *_: None)
    (tmp_path / "run" / "result.json").unlink()  # as if that run had been preempted
    lines: list[str] = []
    record = train_run(cfg(corpus, tmp_path, lr=1e-3), log=lines.append)
    assert record.resumed_from_step is None and any("other settings" in line for line in lines)


@pytest.mark.slow  # two CLI starts (Hydra, torch): ~15 s idle, a minute on a loaded box
def test_sigterm_at_any_step_of_the_cli_then_rerun_resumes(corpus, tmp_path):
    args = [str(BIN / "regmix-train"), f"data.dir={corpus}", f"out_dir={tmp_path}", "run_name=run", "tracker=disabled",
            "model.d_model=32", "model.n_heads=2", "model.d_mlp=64", "model.max_seq_len=64", "train.batch_size=8",
            "train.seq_len=64", "train.lr=3e-3", "train.warmup_steps=3", f"train.tokens={120 * 8 * 64}",
            "train.checkpoint_every=10", "eval.tokens_per_domain=2048", "eval.batch_size=8",
            "mixture.weights={a: 0.5, b: 0.3, c: 0.2}"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if "checkpoint at step 20" in line:
            break
    time.sleep(0.05)  # somewhere after it
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    step = load_checkpoint(tmp_path / "run")["step"]
    assert 20 <= step < 120
    again = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resuming from the checkpoint at step {step}" in again.stdout
    whole = train_run(cfg(corpus, tmp_path / "whole", tokens=120 * 8 * 64, checkpoint_every=0), log=lambda *_: None)
    assert read_record(tmp_path / "run").val_loss == whole.val_loss


_WRITER = """
import sys, torch
from regmix.checkpoint import save_checkpoint
big = torch.empty(16 * 1024 * 1024)  # 64 MiB: a write takes long enough to be caught in the middle
for i in range(1, 10_000):
    big.fill_(float(i))
    save_checkpoint(sys.argv[1], {"step": i, "big": big})
"""


def test_sigkill_during_a_checkpoint_write_leaves_the_previous_one_usable(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait for a write in progress with a complete checkpoint beside it
        if (tmp_path / CHECKPOINT).exists() and list(tmp_path.glob(f".{CHECKPOINT}.*.tmp")):
            break
        time.sleep(0.001)
    proc.kill()
    proc.wait(timeout=30)
    assert list(tmp_path.glob(f".{CHECKPOINT}.*.tmp")), "the kill did not land during a write"
    state = load_checkpoint(tmp_path)
    assert state["step"] >= 1 and torch.all(state["big"] == float(state["step"]))
