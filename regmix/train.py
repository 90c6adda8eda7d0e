"""One proxy (or target) run: mixture -> trained model -> per-domain validation losses.

`train_run` is the plain function behind `regmix-train`; tests and the demo call it directly.
It never trains a mixture twice: a finished record in the run folder is returned as it is,
and the record is written (atomically) only when the run ends: finished, failed or preempted.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import torch

from regmix.allocator import keep_freed_memory
from regmix.checkpoint import (
    CheckpointError,
    load_checkpoint,
    remove_checkpoints,
    restore_rng_state,
    rng_state,
    save_checkpoint,
    set_aside,
)
from regmix.chunked_loss import CPU_LOGITS_BUDGET, CUDA_LOGITS_BUDGET, chunk_tokens_for
from regmix.config import MixtureConfig, TrainAppConfig, TrainConfig
from regmix.corpus.store import CorpusMeta, check_eval_slice, read_meta
from regmix.corpus.integrity import verify_corpus
from regmix.data import MixtureBatches, validation_windows
from regmix.mixture import Mixture
from regmix.model import ProxyLM, count_parameters
from regmix.prefetch import Prefetcher
from regmix.run_identity import identity_differences, run_identity
from regmix.run_lock import run_lock
from regmix.metrics import MEAN_VAL_LOSS_KEY, TOKENS_KEY, val_loss_key
from regmix.run_record import DRY_RUN, FAILED, FINISHED, PREEMPTED, RECORD_NAME, RunRecord, load_record, write_record
from regmix.tracking import make_tracker
from regmix.errors import RegmixError, SettingsError

#: Signals that mean "stop now, you will be re-queued": SLURM sends SIGTERM (then SIGKILL
#: after its grace period), and submitit/`--signal` setups use SIGUSR1 before the time limit.
PREEMPT_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preempted(BaseException):
    """Raised in the training loop when a preemption signal arrives."""

    def __init__(self, signum: int):
        super().__init__(f"received {signal.Signals(signum).name}")
        self.signum = signum


class RunConflict(RegmixError):
    """The run folder already holds a finished run that is not this one."""


def resolve_mixture(cfg: MixtureConfig, meta: CorpusMeta) -> Mixture:
    """The mixture a run trains on: explicit weights, else row `index` of the sweep's table."""
    domains = meta.train_domains
    if cfg.weights:
        return Mixture(dict(cfg.weights), domains=domains)
    if cfg.index is not None:
        from regmix.sweep.table import mixture_at

        if not cfg.table:
            raise SettingsError("mixture.index is set but mixture.table is empty; set mixture.table=<mixtures csv>")
        return mixture_at(cfg.table, int(cfg.index), domains)
    raise SettingsError(
        "no mixture chosen: pass mixture.index=<row of sweeps/<sweep>.mixtures.csv>, "
        "mixture=<name of conf/mixture/<name>.yaml>, or mixture.weights={domain: weight,...}"
    )


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SettingsError(f"train.device={name!r} but no CUDA GPU is visible; use train.device=cpu or auto")
    return device


def resolve_precision(precision: str, device: torch.device) -> str:
    """What `train.precision` means on `device`: 'auto' is bf16 on CUDA (paper: bf16), fp32 elsewhere.
    Runs record the resolved value: it is part of their identity (regmix.run_identity)."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"train.precision={precision!r} is not one of auto|fp32|bf16")
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def autocast_for(device: torch.device, precision: str):
    """bf16 autocast on CUDA (paper: bf16), plain fp32 elsewhere."""
    if precision not in ("auto", "fp32", "bf16"):
        raise SettingsError(f"train.precision={precision!r} is not one of auto|fp32|bf16")
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()


def lr_at(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """Linear warmup to cfg.lr, then constant (paper's proxies) or cosine down to cfg.min_lr."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "cosine":
        progress = (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps)
        return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(progress, 1.0)))
    raise SettingsError(f"train.schedule={cfg.schedule!r} is not one of constant|cosine")


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, fused: bool) -> torch.optim.AdamW:
    # Weight decay on matrices only; norms' gains are not decayed (common LLaMA practice).
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=fused or None)


class PreemptionSignals:
    """SIGTERM/SIGUSR1 as `Preempted`: at once, or, inside `at_step_boundaries()`, once the step
    in progress has finished (`pending` is then set and the loop checks it), so the run can save a
    checkpoint of exactly the steps it trained before it exits."""

    def __init__(self) -> None:
        self.pending: int | None = None
        self._defer = False

    def handler(self, signum, _frame) -> None:
        if self._defer:
            self.pending = signum
        else:
            raise Preempted(signum)

    @contextmanager
    def at_step_boundaries(self):
        self._defer = True
        try:
            yield self
        finally:
            self._defer = False
        if self.pending is not None:  # arrived during the last step: stop before evaluating
            raise Preempted(self.pending)


@contextmanager
def preemption_signals():
    """Turn SIGTERM/SIGUSR1 into `Preempted` inside the block (main thread only); yields the
    `PreemptionSignals` whose `at_step_boundaries()` defers them to the end of a step."""
    signals = PreemptionSignals()
    previous = {}
    try:
        for sig in PREEMPT_SIGNALS:
            previous[sig] = signal.signal(sig, signals.handler)
    except ValueError:  # not the main thread (e.g. a joblib thread): leave signals alone
        previous = {}
    try:
        yield signals
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@torch.no_grad()
def evaluate(
    model: ProxyLM, windows: dict[str, torch.Tensor], *, batch_size: int, device, precision, chunk_tokens: int | None = None
) -> dict[str, float]:
    """Mean next-token cross-entropy (nats/token) on each domain's fixed validation slice."""
    model.eval()
    losses = {}
    for domain, rows in windows.items():
        total, count = 0.0, 0
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size].to(device, non_blocking=True)
            with autocast_for(device, precision):
                loss = model(chunk[:, :-1], chunk[:, 1:], chunk_tokens=chunk_tokens)
            n = chunk[:, 1:].numel()
            total += loss.item() * n
            count += n
        losses[domain] = total / count
    model.train()
    return losses


#: What a checkpoint of `_train_and_record` holds.
CHECKPOINT_KEYS = ("identity", "step", "model", "optimizer", "data", "rng")


def _unusable(ckpt: Any, record: RunRecord, steps: int, model: torch.nn.Module) -> str | None:
    """Why this run cannot resume from `ckpt` (None: it can)."""
    if not isinstance(ckpt, dict) or any(key not in ckpt for key in CHECKPOINT_KEYS):
        return "is not one of this regmix's checkpoints (no run identity)"
    differences = identity_differences(ckpt["identity"], run_identity(record))
    if differences:
        return f"is from other settings ({'; '.join(differences[:4])})"
    # step == steps: the final weights `keep_checkpoint` saved (the record was lost): evaluate them.
    if not (isinstance(ckpt["step"], int) and 0 < ckpt["step"] <= steps):
        return f"is at step {ckpt['step']}, outside this run's {steps} steps"
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    weights = ckpt["model"] if isinstance(ckpt["model"], dict) else {}
    if {k: tuple(getattr(v, "shape", ())) for k, v in weights.items()} != expected:
        return "holds another model's weights"
    return None


def _resume(run_dir: Path, record: RunRecord, steps: int, model, optimizer, batches, device, log) -> int:
    """Load the run's checkpoint into model, optimizer, data stream and RNG; returns the step to start at.

    A checkpoint this run cannot use (unreadable, truncated, without or of another identity, or
    past the run's end) is set aside (`checkpoint.pt.rejected-N`) with one line and the run starts at step 0:
    a bad file must never wedge a run (docs/decisions.md)."""
    try:
        ckpt = load_checkpoint(run_dir)
        problem = None if ckpt is None else _unusable(ckpt, record, steps, model)
    except CheckpointError as exc:
        ckpt, problem = None, str(exc)
    if problem:
        moved = set_aside(run_dir)
        log(f"[regmix] {run_dir}: its checkpoint {problem}; set aside as {moved.name}, training from step 0")
        return 0
    if ckpt is None:
        return 0
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    batches.load_state_dict(ckpt["data"])
    restore_rng_state(ckpt["rng"], device)
    record.resumed_from_step = ckpt["step"]
    log(f"[regmix] {run_dir}: resuming from the checkpoint at step {ckpt['step']}")
    return ckpt["step"]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _skip_finished(run_dir: Path, previous: RunRecord, record: RunRecord, keep_checkpoint: bool, log) -> RunRecord:
    """A finished record is returned as it is when it is this run, refused when it is another
    (naming the settings that differ). Leftovers of its training (a checkpoint a crash kept, a
    temp file) are removed on the way, unless checkpoints are kept on purpose."""
    differences = identity_differences(run_identity(previous), run_identity(record))
    if differences:
        shown = "; ".join(differences[:6]) + (f"; {len(differences) - 6} more" if len(differences) > 6 else "")
        raise RunConflict(
            f"{run_dir} already holds a finished run with other settings (finished -> this run: {shown}); "
            "finished work is never overwritten: choose another sweep=... or out_dir=..., "
            "or delete that folder yourself"
        )
    try:
        remove_checkpoints(run_dir, keep_last=keep_checkpoint)
        for stale in run_dir.glob(f".{RECORD_NAME}.*.tmp"):  # a record write killed in an earlier attempt
            stale.unlink(missing_ok=True)
    except OSError:  # a read-only finished run: its result stands, the leftovers stay
        pass
    log(f"[regmix] {run_dir}: already finished, nothing to train")
    return previous


def _train_and_record(cfg, meta, mixture, record, resolved, windows, batches, steps, micro, log) -> RunRecord:
    """Train, evaluate and write the record (finished, failed or preempted); the caller holds the lock."""
    run_dir = Path(cfg.out_dir) / cfg.run_name
    tcfg, ecfg = cfg.train, cfg.eval
    device = pick_device(tcfg.device)
    if device.type == "cpu" and tcfg.threads > 0:
        torch.set_num_threads(tcfg.threads)
    keep_freed_memory()  # no per-step page faults on the host (see regmix.allocator)
    torch.manual_seed(cfg.seed)  # same init for every proxy (paper: shared seed)
    model = ProxyLM(cfg.model, meta.vocab_size).to(device)
    n_params = count_parameters(model)
    record.n_params = n_params
    optimizer = make_optimizer(model, tcfg, fused=device.type == "cuda")
    step_fn = torch.compile(model) if (tcfg.compile and device.type == "cuda") else model
    budget = tcfg.logits_budget if tcfg.logits_budget is not None else (
        CUDA_LOGITS_BUDGET if device.type == "cuda" else CPU_LOGITS_BUDGET
    )
    chunk_tokens = chunk_tokens_for(model.vocab_size, budget) if budget else 0
    # The next batch is cut (and pinned, on CUDA) in a background thread while the step runs.
    batches = Prefetcher(batches, depth=tcfg.prefetch, pin_memory=device.type == "cuda")
    start_step = _resume(run_dir, record, steps, model, optimizer, batches, device, log)

    tracker = make_tracker(cfg.tracker)
    started = time.time()
    record.started_at = _now()
    tokens_per_step = tcfg.batch_size * tcfg.seq_len
    accum = tcfg.batch_size // micro
    trained, status, exit_code = start_step, FAILED, 1  # trained: optimizer steps done so far
    try:
        with preemption_signals() as preempt:
            record.wandb = tracker.start(
                name=f"{cfg.sweep}/{cfg.run_name}",
                config={**resolved, "corpus": record.corpus, "n_params": n_params, "run_name": cfg.run_name},
                run_dir=run_dir,
                resume=start_step > 0,  # continue the W&B run of the checkpoint's attempt
            )
            log(f"[regmix] {run_dir}: {steps} steps x {tokens_per_step} tokens, {n_params['total']:,} params, {device}")
            loop_start = window_start = time.perf_counter()
            window_tokens = 0
            with preempt.at_step_boundaries():
                for step in range(start_step, steps):
                    lr = lr_at(step, steps, tcfg)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    for _ in range(accum):
                        inputs, targets = batches.next_batch()
                        inputs, targets = inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)
                        with autocast_for(device, tcfg.precision):
                            loss = step_fn(inputs, targets, chunk_tokens=chunk_tokens) / accum
                        loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    window_tokens += tokens_per_step
                    if (step + 1) % tcfg.log_every == 0 or step + 1 == steps:
                        elapsed = time.perf_counter() - window_start
                        tracker.log(
                            {
                                "train/loss": loss.item() * accum,
                                "train/lr": lr,
                                "train/tokens": (step + 1) * tokens_per_step,
                                "train/tokens_per_s": window_tokens / max(elapsed, 1e-9),
                            },
                            step=step + 1,
                        )
                        window_start, window_tokens = time.perf_counter(), 0
                    due = bool(tcfg.checkpoint_every) and (step + 1) % tcfg.checkpoint_every == 0
                    # A preemption signal during this step: keep every finished step, not only the
                    # last multiple of checkpoint_every (SLURM's grace after SIGTERM is ~30 s).
                    resumable = bool(tcfg.checkpoint_every) and step + 1 < steps and (due or preempt.pending is not None)
                    # keep_checkpoint asks for the trained weights: the last step is saved too.
                    if resumable or (tcfg.keep_checkpoint and step + 1 == steps):
                        save_checkpoint(run_dir, {
                            "identity": run_identity(record), "step": step + 1, "model": model.state_dict(),
                            "optimizer": optimizer.state_dict(), "data": batches.state_dict(), "rng": rng_state(device),
                        })
                        log(f"[regmix] {run_dir}: checkpoint at step {step + 1}")
                    trained = step + 1
                    if preempt.pending is not None:
                        raise Preempted(preempt.pending)
            # Training throughput (tokens/s of the step loop, data loading included), for benchmarks.
            record.train_s = round(time.perf_counter() - loop_start, 4)
            record.data_wait_s = round(batches.wait_s, 4)
            val = evaluate(model, windows, batch_size=ecfg.batch_size, device=device, precision=tcfg.precision,
                           chunk_tokens=chunk_tokens)
            final = {val_loss_key(d): v for d, v in val.items()}
            final[TOKENS_KEY] = steps * tokens_per_step
            final[MEAN_VAL_LOSS_KEY] = sum(val.values()) / len(val)
            tracker.log_final(final, step=steps)
            record.val_loss, record.tokens = val, steps * tokens_per_step
            status, exit_code = FINISHED, 0
    except Preempted as exc:
        status, exit_code = PREEMPTED, 128 + exc.signum
        record.error = f"preempted after step {trained} of {steps} ({exc})"
        tracker.mark_preempting()
    except Exception as exc:  # recorded, then re-raised: the multirun marks this job failed
        record.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise
    finally:
        batches.close()
        record.status, record.steps, record.ended_at = status, steps, _now()
        record.wall_s = round(time.time() - started, 3)
        try:
            tracker.finish(exit_code=exit_code)
        finally:
            write_record(run_dir, record)
    if status == FINISHED and not tcfg.keep_checkpoint:
        remove_checkpoints(run_dir)
    if status == PREEMPTED:
        log(f"[regmix] {run_dir}: {record.error}; exiting {exit_code} so the scheduler re-queues it")
        sys.exit(exit_code)
    losses = ", ".join(f"{d}={v:.3f}" for d, v in record.val_loss.items())
    log(f"[regmix] {run_dir}: finished in {record.wall_s:.1f} s; val loss {losses}")
    return record


def train_run(
    cfg: TrainAppConfig,
    *,
    resolved: dict[str, Any] | None = None,
    log=print,
    on_claimed: Callable[[Path], None] | None = None,
) -> RunRecord:
    """Train (or skip, if already finished) the run `cfg` describes; returns its record.

    Nothing is written into the run folder before the checks pass: the settings, the finished
    record (same identity, or refused) and the run's lock. `on_claimed(run_dir)` runs then, under
    the lock, before training (the CLI writes Hydra's record of the config there)."""
    resolved = resolved if resolved is not None else asdict(cfg)
    meta = read_meta(cfg.data.dir)
    mixture = resolve_mixture(cfg.mixture, meta)
    run_dir = Path(cfg.out_dir) / cfg.run_name
    tcfg, ecfg = cfg.train, cfg.eval
    eval_seq_len = ecfg.seq_len or tcfg.seq_len
    if tcfg.seq_len > cfg.model.max_seq_len or eval_seq_len > cfg.model.max_seq_len:
        raise SettingsError(
            f"train.seq_len={tcfg.seq_len} / eval.seq_len={eval_seq_len} exceed model.max_seq_len="
            f"{cfg.model.max_seq_len}; lower the sequence length or pick a model with a longer context"
        )
    steps = tcfg.tokens // (tcfg.batch_size * tcfg.seq_len)
    if steps < 1:
        raise SettingsError(
            f"train.tokens={tcfg.tokens} is less than one batch ({tcfg.batch_size} x {tcfg.seq_len} tokens); "
            "raise train.tokens or lower train.batch_size"
        )
    micro = tcfg.micro_batch_size or tcfg.batch_size
    if tcfg.batch_size % micro:
        raise SettingsError(f"train.batch_size={tcfg.batch_size} is not a multiple of train.micro_batch_size={micro}")
    if tcfg.checkpoint_every < 0 or (tcfg.logits_budget is not None and tcfg.logits_budget < 0):
        raise SettingsError(
            f"train.checkpoint_every={tcfg.checkpoint_every} / train.logits_budget={tcfg.logits_budget} must not be "
            "negative; use 0 for no checkpoints / the full-logits loss, or a positive number"
        )

    # The run describes itself: the weights it trained on sit in its logged config as a nested
    # domain -> weight mapping, whether they came from the table, a name or the command line;
    # precision=auto as what it means on this device (both are part of the run's identity).
    precision = resolve_precision(tcfg.precision, pick_device(tcfg.device))
    cfg = replace(cfg, train=replace(tcfg, precision=precision))
    tcfg = cfg.train
    resolved = {
        **resolved,
        "mixture": {**(resolved.get("mixture") or {}), "weights": mixture.to_dict()},
        "train": {**(resolved.get("train") or {}), "precision": precision},
    }
    record = RunRecord(
        run_name=cfg.run_name,
        sweep=cfg.sweep,
        mixture_index=cfg.mixture.index,
        mixture_name=cfg.mixture.name,
        mixture=mixture.to_dict(),
        model=cfg.model.name,
        corpus=meta.identity(cfg.data.dir),
        seed=cfg.seed,
        config=resolved,
    )
    previous = load_record(run_dir)
    if previous is not None and previous.finished:
        return _skip_finished(run_dir, previous, record, tcfg.keep_checkpoint, log)

    verify_corpus(cfg.data.dir, meta)  # the shards are still the ones content_hash names
    # Validation slices first: every domain without enough validation tokens is named before training.
    check_eval_slice(meta, ecfg.tokens_per_domain)
    windows = {
        d: validation_windows(cfg.data.dir, meta, d, tokens=ecfg.tokens_per_domain, seq_len=eval_seq_len)
        for d in meta.eval_domains
    }
    batches = MixtureBatches(
        cfg.data.dir, meta, mixture, seq_len=tcfg.seq_len, batch_size=micro, seed=cfg.seed
    )
    if cfg.dry_run:
        log(f"[regmix] dry run: {run_dir} would train {steps} steps on {mixture}")
        record.status = DRY_RUN
        return record
    with run_lock(run_dir):  # one process per run folder, held until the record is written
        previous = load_record(run_dir)  # again under the lock: the holder may just have finished
        if previous is not None and previous.finished:
            return _skip_finished(run_dir, previous, record, tcfg.keep_checkpoint, log)
        if on_claimed is not None:
            on_claimed(run_dir)
        return _train_and_record(cfg, meta, mixture, record, resolved, windows, batches, steps, micro, log)
