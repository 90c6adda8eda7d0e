"""The training side end to end: regmix-prepare -> regmix-sample -> regmix-train (Hydra multirun, W&B offline)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from regmix.config import EvalConfig, MixtureConfig, ModelConfig, TrackerConfig, TrainAppConfig, TrainConfig
from regmix.corpus.config import DataConfig
from regmix.corpus.store import read_meta, write_corpus
from regmix.run_record import FINISHED, PREEMPTED, RunRecord, read_record
from regmix.train import RunConflict, train_run

BIN = Path(sys.executable).parent


def cli(name: str, *args: str, cwd: Path, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / name), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, **kwargs
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The embedded synthetic corpus, prepared once for this module through the real CLI."""
    root = tmp_path_factory.mktemp("corpus")
    done = cli("regmix-prepare", f"data.dir={root}/synthetic", cwd=root)
    assert done.returncode == 0, done.stderr
    return root / "synthetic"


def tiny_cfg(corpus: Path, out: Path, weights: dict[str, float], **train) -> TrainAppConfig:
    return TrainAppConfig(
        model=ModelConfig(),
        data=DataConfig(dir=str(corpus)),
        train=TrainConfig(**{"tokens": 102_400, "batch_size": 16, "seq_len": 128, "lr": 3e-3, "warmup_steps": 5, **train}),
        eval=EvalConfig(tokens_per_domain=16_384),
        mixture=MixtureConfig(weights=weights),
        tracker=TrackerConfig(mode="disabled"),
        out_dir=str(out),
        run_name=f"w{sorted(weights.items())}",
    )


def test_losses_respond_to_the_mixture(corpus, tmp_path):
    meta = read_meta(corpus)
    a, b = meta.train_domains[:2]
    rest = [d for d in meta.train_domains if d not in (a, b)]
    def mostly(x, y):
        return {x: 0.9, y: 0.05, **{d: 0.05 / len(rest) for d in rest}}
    on_a = train_run(tiny_cfg(corpus, tmp_path, mostly(a, b)), log=lambda *_: None)
    on_b = train_run(tiny_cfg(corpus, tmp_path, mostly(b, a)), log=lambda *_: None)
    assert on_a.status == on_b.status == FINISHED
    assert on_a.val_loss[a] < on_b.val_loss[a]
    assert on_b.val_loss[b] < on_a.val_loss[b]
    assert set(on_a.val_loss) == set(meta.eval_domains)  # every domain, the target blend included


def test_finished_run_is_never_retrained_or_overwritten(corpus, tmp_path):
    meta = read_meta(corpus)
    weights = {d: 1 / len(meta.train_domains) for d in meta.train_domains}
    first = train_run(tiny_cfg(corpus, tmp_path, weights, tokens=20_480), log=lambda *_: None)
    path = tmp_path / first.run_name / "result.json"
    stamp = path.stat().st_mtime_ns
    again = train_run(tiny_cfg(corpus, tmp_path, weights, tokens=20_480), log=lambda *_: None)
    assert again == read_record(path) and path.stat().st_mtime_ns == stamp
    with pytest.raises(RunConflict, match="never overwritten"):
        train_run(tiny_cfg(corpus, tmp_path, weights, tokens=40_960), log=lambda *_: None)
    assert path.stat().st_mtime_ns == stamp


def _sweep(corpus: Path, work: Path, n: int) -> None:
    done = cli("regmix-sample", "sweep=t", f"n_mixtures={n}", f"data.dir={corpus}", cwd=work)
    assert done.returncode == 0, done.stderr
    assert (work / "sweeps" / "t.mixtures.csv").is_file() and (work / "sweeps" / "t.yaml").is_file()


def _records(out: Path) -> dict[str, RunRecord]:
    return {p.parent.name: read_record(p) for p in sorted(out.glob("*/result.json"))}


@pytest.mark.slow
def test_multirun_of_16_tiny_proxies_with_offline_wandb_runs_then_rerun_trains_nothing(corpus, tmp_path):
    _sweep(corpus, tmp_path, 16)
    args = ["-m", "hydra/launcher=cpu", "sweep=t", "mixture.index=range(0,16)", f"data.dir={corpus}", "eval.tokens_per_domain=16384"]
    done = cli("regmix-train", *args, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    records = _records(tmp_path / "runs" / "t")
    assert sorted(records) == [f"mix{i:04d}" for i in range(16)]
    domains = read_meta(corpus).eval_domains
    wandb_ids = set()
    for name, record in records.items():
        assert record.status == FINISHED and record.mixture_index == int(name[3:])
        assert set(record.val_loss) == set(domains)
        offline = list((tmp_path / "runs" / "t" / name / "wandb").glob(f"offline-run-*-{record.wandb['id']}/run-*.wandb"))
        assert len(offline) == 1 and offline[0].stat().st_size > 1000  # a real, flushed W&B log
        wandb_ids.add(record.wandb["id"])
    assert len(wandb_ids) == 16  # each job its own W&B run
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs" / "t").glob("*/result.json")}
    again = cli("regmix-train", *args, cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert (again.stdout + again.stderr).count("already finished, nothing to train") == 16


def test_basic_launcher_gives_each_job_its_own_wandb_run(corpus, tmp_path):
    _sweep(corpus, tmp_path, 4)
    done = cli("regmix-train", "-m", "sweep=t", "mixture.index=0,1,2", f"data.dir={corpus}",
               "eval.tokens_per_domain=4096", "train.tokens=20480", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    records = _records(tmp_path / "runs" / "t")
    assert len({r.wandb["id"] for r in records.values()}) == 3
    for name, record in records.items():
        assert len(list((tmp_path / "runs" / "t" / name / "wandb").glob("offline-run-*"))) == 1


def _start_and_wait(corpus: Path, work: Path, *extra: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [str(BIN / "regmix-train"), "sweep=t", "mixture.index=1", f"data.dir={corpus}", "train.tokens=2048000",
         "eval.tokens_per_domain=4096", *extra],
        cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    for line in proc.stdout:  # wait until the training loop has started
        if "steps x" in line:
            break
    time.sleep(2.0)
    return proc


def test_sigkill_leaves_no_finished_record_and_a_rerun_completes(corpus, tmp_path):
    _sweep(corpus, tmp_path, 4)
    proc = _start_and_wait(corpus, tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    run_dir = tmp_path / "runs" / "t" / "mix0001"
    record = read_record(run_dir)
    assert record is None or record.status != FINISHED
    done = cli("regmix-train", "-m", "sweep=t", "mixture.index=0,1", f"data.dir={corpus}", "train.tokens=20480",
               "eval.tokens_per_domain=4096", cwd=tmp_path)  # the multirun again: it completes the killed run
    assert done.returncode == 0, done.stderr
    assert read_record(run_dir).status == FINISHED
    assert read_record(tmp_path / "runs" / "t" / "mix0000").status == FINISHED


def test_sigterm_records_preempted_and_exits_143(corpus, tmp_path):
    _sweep(corpus, tmp_path, 4)
    proc = _start_and_wait(corpus, tmp_path, "tracker=disabled")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    record = read_record(tmp_path / "runs" / "t" / "mix0001")
    assert record.status == PREEMPTED and "SIGTERM" in record.error


@pytest.fixture(scope="module")
def bad_corpora(tmp_path_factory) -> Path:
    import numpy as np

    root = tmp_path_factory.mktemp("bad")
    tok = {"kind": "bytes", "vocab_size": 256, "eos_id": 0, "id": "bytes"}
    rng = np.random.default_rng(0)
    write_corpus(root / "empty", name="empty", tokenizer=tok,
                 splits={"a": {"train": rng.integers(1, 256, 50_000), "val": rng.integers(1, 256, 9_000)},
                         "b": {"train": np.zeros(0), "val": np.zeros(0)}})
    write_corpus(root / "short", name="short", tokenizer=tok,
                 splits={"a": {"train": rng.integers(1, 256, 50_000), "val": rng.integers(1, 256, 9_000)},
                         "b": {"train": rng.integers(1, 256, 50_000), "val": rng.integers(1, 256, 500)}})
    return root


@pytest.mark.parametrize(
    "args, message",
    [
        (["mixture.weights={{A}: 0.5, {B}: 0.2}"], "sum to 0.7"),
        (["mixture.weights={{A}: 1.2, {B}: -0.2}"], "negative"),
        (["mixture.weights={{A}: 0.5, nope: 0.5}"], "unknown domain"),
        (["mixture.index=99"], "out of range|outside|valid"),
        (["data.dir=does/not/exist"], "regmix-prepare"),
        (["data.dir={bad}/empty", "mixture.weights={a: 0.5, b: 0.5}"], "no train tokens|no .*tokens"),
        (["data.dir={bad}/short", "mixture.weights={a: 0.5, b: 0.5}"], "more than the validation tokens of 1 domain"),
    ],
    ids=["sum", "negative", "unknown-domain", "index", "missing-corpus", "empty-domain", "short-validation"],
)
def test_bad_input_is_one_line_exit_2_and_no_record(corpus, bad_corpora, tmp_path, args, message):
    import re

    _sweep(corpus, tmp_path, 4)
    first, second = read_meta(corpus).train_domains[:2]
    args = [a.replace("{bad}", str(bad_corpora)).replace("{A}", first).replace("{B}", second) for a in args]
    if not any(a.startswith("data.dir") for a in args):
        args.append(f"data.dir={corpus}")
    done = cli("regmix-train", "sweep=t", "eval.tokens_per_domain=4096", "tracker=disabled", *args, cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert re.search(message, lines[0]), lines[0]
    assert not list((tmp_path / "runs").rglob("result.json"))


@pytest.mark.gpu
def test_cuda_bf16_compiled_run_matches_the_cpu_contract(corpus, tmp_path):
    meta = read_meta(corpus)
    weights = {d: 1 / len(meta.train_domains) for d in meta.train_domains}
    cfg = tiny_cfg(corpus, tmp_path, weights, tokens=204_800, device="cuda", precision="auto", compile=True)
    record = train_run(cfg, log=lambda *_: None)
    assert record.status == FINISHED
    assert record.config["train"]["device"] == "cuda"
    assert all(0 < loss < 6 for loss in record.val_loss.values())
