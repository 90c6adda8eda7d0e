"""A run's identity (regmix.run_identity): every setting that changes a run's losses, used by the
resume check, the finished-run check and the fit's setup check; checkpoints that cannot wedge a run."""

from __future__ import annotations

import dataclasses
import os
import signal
import stat
from pathlib import Path

import pytest
import torch

from analysis.errors import AnalysisError
from analysis.runs_table import validate_runs
from analysis.sources.local import load_local_runs
from regmix.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from regmix.config import EvalConfig, MixtureConfig, ModelConfig, TrackerConfig, TrainAppConfig, TrainConfig
from regmix.corpus.config import DataConfig
from regmix.run_identity import IDENTITY_PATHS, NEUTRAL, RESOLVED, run_identity, setup_line
from regmix.run_record import FINISHED, PREEMPTED, RunRecord, read_record, write_record
from regmix.train import RunConflict, train_run
from tests.support.byte_corpus import random_byte_corpus

WEIGHTS = {"a": 0.5, "b": 0.3, "c": 0.2}
QUIET = {"log": lambda *_: None}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return random_byte_corpus(tmp_path_factory.mktemp("corpus"), name="ident", domains=WEIGHTS,
                              train_tokens=40_000, val_tokens=4_000)


def cfg(corpus: Path, out: Path, **train) -> TrainAppConfig:
    """A run of 20 steps of 4 x 32 tokens on a 1-layer model: well under a second."""
    return TrainAppConfig(
        model=ModelConfig(n_layers=1, d_model=32, n_heads=2, d_mlp=64, max_seq_len=32),
        data=DataConfig(dir=str(corpus)),
        train=TrainConfig(**{"tokens": 20 * 4 * 32, "batch_size": 4, "seq_len": 32, "lr": 3e-3, "warmup_steps": 2,
                             "checkpoint_every": 5, **train}),
        eval=EvalConfig(tokens_per_domain=1024, batch_size=8),
        mixture=MixtureConfig(weights=WEIGHTS),
        tracker=TrackerConfig(mode="disabled"),
        out_dir=str(out),
        run_name="run",
    )


def preempted_at_step_5(corpus: Path, out: Path) -> Path:
    def sigterm_at_checkpoint(line: str) -> None:
        if "checkpoint at step 5" in line:
            signal.raise_signal(signal.SIGTERM)  # the run's own handler: record preempted, exit 143

    with pytest.raises(SystemExit):
        train_run(cfg(corpus, out), log=sigterm_at_checkpoint)
    run_dir = out / "run"
    assert read_record(run_dir).status == PREEMPTED and load_checkpoint(run_dir)["step"] == 5
    return run_dir


@pytest.mark.parametrize(
    "changed",
    [{"warmup_steps": 10}, {"weight_decay": 0.5}, {"grad_clip": 0.1}, {"beta2": 0.99}, {"min_lr": 1e-3},
     {"precision": "bf16"}, {"warmup_steps": 10, "weight_decay": 0.5, "grad_clip": 0.1}],
    ids=["warmup", "weight_decay", "grad_clip", "beta2", "min_lr", "precision", "all-three"],
)
def test_resume_under_other_optimiser_settings_trains_from_step_0(corpus, tmp_path, changed):
    run_dir = preempted_at_step_5(corpus, tmp_path)
    lines: list[str] = []
    record = train_run(cfg(corpus, tmp_path, **changed), log=lines.append)
    assert record.status == FINISHED and record.resumed_from_step is None
    (aside,) = [line for line in lines if "set aside" in line]
    assert all(f"train.{key}" in aside for key in changed) and "from step 0" in aside
    assert (run_dir / "checkpoint.pt.rejected-1").is_file() and not (run_dir / CHECKPOINT).exists()


def test_resume_under_neutral_settings_still_resumes(corpus, tmp_path):
    preempted_at_step_5(corpus, tmp_path)
    record = train_run(cfg(corpus, tmp_path, log_every=3, checkpoint_every=7, threads=0), **QUIET)
    assert record.resumed_from_step == 5


def test_finished_run_rerun_with_other_weight_decay_is_refused_naming_it(corpus, tmp_path):
    first = train_run(cfg(corpus, tmp_path), **QUIET)
    path = tmp_path / "run" / "result.json"
    stamp = path.stat().st_mtime_ns
    for changed, named in (({"weight_decay": 0.5}, "train.weight_decay 0.1 -> 0.5"), ({"min_lr": 1e-3}, "train.min_lr"),
                           ({"beta2": 0.99}, "train.beta2"), ({"precision": "bf16"}, "train.precision fp32 -> bf16")):
        with pytest.raises(RunConflict, match="never overwritten") as refused:
            train_run(cfg(corpus, tmp_path, **changed), **QUIET)
        assert named in str(refused.value)
    assert train_run(cfg(corpus, tmp_path, precision="fp32", log_every=1), **QUIET) == first  # the same run
    assert path.stat().st_mtime_ns == stamp


def test_precision_auto_is_recorded_as_what_it_resolved_to(corpus, tmp_path):
    record = train_run(cfg(corpus, tmp_path), **QUIET)
    assert record.config["train"]["precision"] == "fp32"  # a CPU run
    assert read_record(tmp_path / "run").config["train"]["precision"] == "fp32"


def test_truncated_checkpoint_is_set_aside_and_the_run_starts_from_step_0(corpus, tmp_path):
    run_dir = preempted_at_step_5(corpus, tmp_path)
    data = (run_dir / CHECKPOINT).read_bytes()
    (run_dir / CHECKPOINT).write_bytes(data[: len(data) // 2])
    lines: list[str] = []
    record = train_run(cfg(corpus, tmp_path), log=lines.append)
    assert record.status == FINISHED and record.resumed_from_step is None
    assert sum("cannot be read" in line and "set aside as checkpoint.pt.rejected-1" in line for line in lines) == 1
    assert (run_dir / "checkpoint.pt.rejected-1").stat().st_size == len(data) // 2


def test_checkpoint_without_identity_is_set_aside(corpus, tmp_path):
    run_dir = tmp_path / "run"
    save_checkpoint(run_dir, {"step": 5, "model": {}})  # e.g. written by another tool or an older regmix
    (run_dir / "checkpoint.pt.rejected-1").write_bytes(b"an earlier one")
    lines: list[str] = []
    record = train_run(cfg(corpus, tmp_path), log=lines.append)
    assert record.resumed_from_step is None and any("no run identity" in line for line in lines)
    assert (run_dir / "checkpoint.pt.rejected-2").is_file()  # the earlier one is kept


def test_checkpoint_of_another_model_shape_is_set_aside(corpus, tmp_path):
    run_dir = preempted_at_step_5(corpus, tmp_path)
    state = torch.load(run_dir / CHECKPOINT, weights_only=True)
    state["model"] = {k: torch.zeros(1) for k in state["model"]}  # same identity, foreign weights
    save_checkpoint(run_dir, state)
    lines: list[str] = []
    assert train_run(cfg(corpus, tmp_path), log=lines.append).resumed_from_step is None
    assert any("another model's weights" in line for line in lines)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_checkpoint_mode_is_the_other_run_files_mode(corpus, tmp_path, umask):
    old = os.umask(umask)
    try:
        run_dir = preempted_at_step_5(corpus, tmp_path)
    finally:
        os.umask(old)
    mode = stat.S_IMODE((run_dir / CHECKPOINT).stat().st_mode)
    assert mode == stat.S_IMODE((run_dir / "result.json").stat().st_mode) == 0o666 & ~umask


def test_rerun_of_a_finished_run_removes_its_leftovers(corpus, tmp_path):
    train_run(cfg(corpus, tmp_path), **QUIET)
    run_dir = tmp_path / "run"
    save_checkpoint(run_dir, {"step": 5})  # as if the process died between the record and the clean-up
    (run_dir / f".{CHECKPOINT}.x.tmp").write_bytes(b"half")
    (run_dir / ".result.json.y.tmp").write_bytes(b"{")  # a record write killed in an earlier attempt
    assert train_run(cfg(corpus, tmp_path), **QUIET).status == FINISHED
    assert not (run_dir / CHECKPOINT).exists() and not list(run_dir.glob(".*.tmp"))
    save_checkpoint(run_dir, {"step": 5})
    train_run(cfg(corpus, tmp_path, keep_checkpoint=True), **QUIET)  # kept on purpose: stays
    assert (run_dir / CHECKPOINT).exists()


def test_every_setting_of_the_train_app_is_identity_or_declared_neutral():
    def leaves(cls, prefix=""):
        for f in dataclasses.fields(cls):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            yield from leaves(type(default), f"{prefix}{f.name}.") if dataclasses.is_dataclass(default) else [f"{prefix}{f.name}"]

    for path in leaves(TrainAppConfig):
        declared = [key for key in (*NEUTRAL, *RESOLVED) if path == key or path.startswith(f"{key}.")]
        assert (path in IDENTITY_PATHS) != bool(declared), path
    for path in ("train.warmup_steps", "train.min_lr", "train.weight_decay", "train.beta1", "train.beta2",
                 "train.grad_clip", "train.precision", "train.batch_size", "seed", "eval.tokens_per_domain"):
        assert path in IDENTITY_PATHS


def test_identity_resolves_data_and_mixture():
    config = dataclasses.asdict(TrainAppConfig())
    a = RunRecord(config=config, corpus={"content_hash": "h1"}, mixture={"a": 0.5, "b": 0.5, "c": 0.0})
    moved = dataclasses.asdict(TrainAppConfig(data=DataConfig(dir="elsewhere", name="copy"), sweep="other"))
    b = RunRecord(config=moved, corpus={"content_hash": "h1"}, mixture={"b": 0.5, "a": 0.5})
    assert run_identity(a) == run_identity(b)  # the same data elsewhere, the same weights, zeros dropped
    assert run_identity(a) != run_identity(RunRecord(config=config, corpus={"content_hash": "h2"}, mixture=a.mixture))


def _fit_record(i: int, **train) -> RunRecord:
    config = dataclasses.asdict(TrainAppConfig(train=TrainConfig(precision="fp32", **train)))
    x = 0.1 + 0.01 * i
    return RunRecord(status=FINISHED, run_name=f"mix{i:04d}", sweep="s", mixture_index=i,
                     mixture={"a": x, "b": 0.6 - x, "c": 0.4}, val_loss={"a": 3.0, "t": 4.0 - 0.01 * i},
                     tokens=1000, model="tiny", corpus={"content_hash": "c1"}, config=config, seed=i % 2)


@pytest.mark.parametrize("changed", [{"weight_decay": 0.5}, {"batch_size": 256}, {"grad_clip": 0.5}])
def test_fit_refuses_runs_of_other_optimiser_settings_unless_allowed(tmp_path, changed):
    for i in range(6):
        write_record(tmp_path / f"mix{i:04d}", _fit_record(i, **(changed if i % 2 else {})))
    raw = load_local_runs(str(tmp_path))
    with pytest.raises(AnalysisError, match="mix training setups") as refused:
        validate_runs(raw, required_losses=["t"])
    (key,) = changed
    assert f"train.{key}" in str(refused.value) and "allow_mixed=true" in str(refused.value)
    assert "train.lr" not in str(refused.value)  # only what differs is named
    assert len(validate_runs(raw, required_losses=["t"], allow_mixed=True)[0]) == 6


def test_fit_takes_runs_that_differ_only_in_seed_and_neutral_settings(tmp_path):
    for i in range(6):
        write_record(tmp_path / f"mix{i:04d}", _fit_record(i, **({"log_every": 1, "device": "cpu"} if i % 2 else {})))
    table, _ = validate_runs(load_local_runs(str(tmp_path)), required_losses=["t"])
    assert len(table) == 6


def test_old_records_without_a_setting_compare_as_different():
    old = dataclasses.asdict(TrainAppConfig())
    del old["train"]["grad_clip"]
    assert "train.grad_clip=<not recorded>" in setup_line(old)
    assert setup_line(old) != setup_line(dataclasses.asdict(TrainAppConfig()))


def test_kept_final_checkpoint_of_a_lost_record_is_evaluated_not_set_aside(corpus, tmp_path):
    whole = train_run(cfg(corpus, tmp_path, keep_checkpoint=True), **QUIET)
    (tmp_path / "run" / "result.json").unlink()  # the record lost, the final weights kept
    again = train_run(cfg(corpus, tmp_path, keep_checkpoint=True), **QUIET)
    assert again.resumed_from_step == 20 and again.val_loss == whole.val_loss
    assert not list((tmp_path / "run").glob("checkpoint.pt.rejected-*"))


def test_a_checkpoint_identity_of_an_older_regmix_is_named_as_such():
    from regmix.run_identity import identity_differences

    older = {"mixture": WEIGHTS, "model": {}, "train": {}, "corpus": "h", "seed": 0}  # before run_identity.py
    assert identity_differences(older, run_identity(RunRecord(mixture=WEIGHTS))) == [
        "its identity was written by another version of regmix"
    ]
