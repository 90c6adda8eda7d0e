"""One W&B run per proxy run: a run preempted (SIGTERM) or killed (SIGKILL) after a checkpoint and
run again continues the same W&B run, its history going on from the checkpoint's step; tags are
unique and the record keeps the entity the run used. Against the loopback W&B fake (online mode).

Each attempt is a subprocess (a fresh wandb per process, as a rerun or a re-queued job has)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from regmix.config import EvalConfig, MixtureConfig, ModelConfig, TrackerConfig, TrainAppConfig, TrainConfig
from regmix.corpus.config import DataConfig
from regmix.metrics import val_loss_key
from regmix.run_record import FINISHED, PREEMPTED, read_record
from regmix.tracking import WANDB_RUN_FILE
from regmix.train import train_run
from tests.fakes import FakeWandb
from tests.support.byte_corpus import random_byte_corpus

ATTEMPT = """
import os, signal, sys
from regmix.config import EvalConfig, MixtureConfig, ModelConfig, TrackerConfig, TrainAppConfig, TrainConfig
from regmix.corpus.config import DataConfig
from regmix.train import train_run

corpus, out, stop = sys.argv[1], sys.argv[2], sys.argv[3]
cfg = TrainAppConfig(
    model=ModelConfig(n_layers=1, d_model=32, n_heads=2, d_mlp=64, max_seq_len=32),
    data=DataConfig(dir=corpus),
    train=TrainConfig(tokens=20 * 4 * 32, batch_size=4, seq_len=32, lr=3e-3, warmup_steps=2, checkpoint_every=5,
                      log_every=1),
    eval=EvalConfig(tokens_per_domain=1024, batch_size=8),
    mixture=MixtureConfig(weights={"a": 0.5, "b": 0.5}),
    tracker=TrackerConfig(mode="online", project="resume", tags=["proxy", "tiny", "proxy"]),
    out_dir=out, run_name="run", sweep="s",
)

def log(line):
    print(line, flush=True)
    if stop == "sigterm" and "checkpoint at step 5" in line:
        signal.raise_signal(signal.SIGTERM)  # the run's handler: preempted, exit 143
    if stop == "sigkill" and "checkpoint at step 10" in line:
        os.kill(os.getpid(), signal.SIGKILL)  # no handler, no W&B finish

train_run(cfg, log=log)
"""


def attempt(fake: FakeWandb, corpus: Path, out: Path, stop: str) -> subprocess.CompletedProcess:
    home = out / "wandb-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(WANDB_BASE_URL=fake.url, WANDB_API_KEY=fake._api_key, WANDB_MODE="online", WANDB_SILENT="true",
               WANDB_ENTITY=fake.entity,  # as a sweep agent's environment names it
               WANDB_DIR=str(home), WANDB_CONFIG_DIR=str(home / "config"), WANDB_CACHE_DIR=str(home / "cache"),
               WANDB_DATA_DIR=str(home / "data"), WANDB_DISABLE_GIT="true", WANDB_CONSOLE="off")
    return subprocess.run([sys.executable, "-c", ATTEMPT, str(corpus), str(out), stop], env=env,
                          capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return random_byte_corpus(tmp_path_factory.mktemp("corpus"), name="c", domains=("a", "b"),
                              train_tokens=20_000, val_tokens=2_000)


@pytest.mark.slow  # three attempts, each a fresh process with torch and wandb: ~15 s idle, ~45 s on a busy box
def test_a_run_preempted_and_killed_then_rerun_is_one_wandb_run(corpus, tmp_path):
    run_dir = tmp_path / "runs" / "run"
    with FakeWandb() as fake:
        first = attempt(fake, corpus, tmp_path / "runs", "sigterm")
        assert first.returncode == 128 + signal.SIGTERM, first.stdout + first.stderr
        assert read_record(run_dir).status == PREEMPTED
        (run_id,) = [run.name for run in fake.runs.values()]
        killed = attempt(fake, corpus, tmp_path / "runs", "sigkill")
        assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
        assert "resuming from the checkpoint at step 5" in killed.stdout
        last = attempt(fake, corpus, tmp_path / "runs", "none")
        assert last.returncode == 0, last.stdout + last.stderr
        assert "resuming from the checkpoint at step 10" in last.stdout
        runs = list(fake.runs.values())
        assert fake.unknown_operations == [] and fake.missing_fields == []

    assert [run.name for run in runs] == [run_id]  # one W&B run across three attempts
    (run,) = runs
    steps = [row["_step"] for row in run.history if "_step" in row]
    assert steps == sorted(set(steps)) and steps[-1] == 20  # increasing, never restarted at 1
    assert {1, 5, 11, 20} <= set(steps)  # the first attempt's history and the last attempt's
    record = read_record(run_dir)
    assert record.status == FINISHED and record.resumed_from_step == 10 and record.wandb["id"] == run_id
    assert json.loads((run_dir / WANDB_RUN_FILE).read_text())["id"] == run_id  # what a rerun continues
    assert run.state == "finished" and run.exitcode == 0
    assert {d: run.summary[val_loss_key(d)] for d in record.val_loss} == record.val_loss  # the summary is final
    assert run.tags == ["proxy", "tiny"]  # each tag once
    assert record.wandb["entity"] == fake.entity  # the entity the run used


def test_an_offline_record_keeps_the_entity_of_the_agents_environment(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_ENTITY", "team-x")  # what `wandb agent` exports; tracker.entity is unset
    cfg = TrainAppConfig(
        model=ModelConfig(n_layers=1, d_model=32, n_heads=2, d_mlp=64, max_seq_len=32),
        data=DataConfig(dir=str(corpus)),
        train=TrainConfig(tokens=2 * 4 * 32, batch_size=4, seq_len=32, warmup_steps=1),
        eval=EvalConfig(tokens_per_domain=1024, batch_size=8),
        mixture=MixtureConfig(weights={"a": 0.5, "b": 0.5}),
        tracker=TrackerConfig(mode="offline", tags=["proxy", "proxy"]),
        out_dir=str(tmp_path), run_name="run",
    )
    record = train_run(cfg, log=lambda *_: None)
    assert record.wandb["entity"] == "team-x" and record.wandb["mode"] == "offline"
