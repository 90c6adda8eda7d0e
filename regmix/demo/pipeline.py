"""The demo's stages as plain functions: each leaves files behind and skips work already done.

prepare -> sample -> proxies (parallel, offline W&B) -> fit (analysis.run_fit) -> target-scale
runs on the emitted, prior, uniform and best-proxy mixtures (+ a second seed, + a few proxy
mixtures for the rank-invariance check) -> report. A rerun retrains nothing that finished
(`train_run` skips finished records) and Ctrl-C leaves no half-written record.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from regmix.config import EvalConfig, MixtureConfig, TrainAppConfig
from regmix.corpus.store import CorpusMeta
from regmix.demo.config import DemoConfig
from regmix.mixture import Mixture
from regmix.run_record import RunRecord
from regmix.errors import SettingsError

@dataclass
class Job:
    """One training run of the demo: a label (what the mixture is), its weights and its scale."""

    label: str
    mixture: Mixture
    scale: str  # "proxy", "proxy_check" or "target": also the folder under out_dir
    seed: int = 0
    index: int | None = None
    sweep: str | None = None
    """The round a proxy belongs to (its runs go to <out_dir>/proxy/<sweep>/); None = the demo's sweep."""


def stage(name: str) -> None:
    print(f"\n== {name} ==", flush=True)


def run_name(job: Job) -> str:
    if job.index is not None:
        base = f"mix{job.index:04d}"
    else:  # named by content: a rerun whose emitted mixture changed trains it anew, nothing is overwritten
        digest = hashlib.sha1(json.dumps(job.mixture.to_dict(), sort_keys=True).encode()).hexdigest()[:8]
        base = f"{job.label.replace(' ', '_')}-{digest}"
    return base if not job.seed else f"{base}-s{job.seed}"


def train_config(cfg: DemoConfig, job: Job) -> TrainAppConfig:
    # "proxy_check": a mixture that is not in the sweep, trained at proxy scale in a folder of its
    # own so that the fit (which reads <out>/proxy) sees the sweep's proxies only.
    at_proxy_scale = job.scale in ("proxy", "proxy_check")
    model, train = (cfg.proxy_model, cfg.proxy_train) if at_proxy_scale else (cfg.target_model, cfg.target_train)
    sweep = job.sweep or cfg.sweep
    tracker = replace(cfg.tracker, group=f"{sweep}-{job.scale}", tags=[job.scale, job.label])
    # Proxies: <out>/proxy/<round>/ (regmix-fit's runs_dir layout, one folder per round);
    # everything else: <out>/<scale>/.
    out_dir = Path(cfg.out_dir) / job.scale / sweep if job.scale == "proxy" else Path(cfg.out_dir) / job.scale
    return TrainAppConfig(
        model=model,
        data=cfg.data,
        train=replace(train, threads=1),
        eval=EvalConfig(tokens_per_domain=cfg.eval_tokens),
        mixture=MixtureConfig(name=job.label, index=job.index, weights=job.mixture.to_dict(), table=None),
        tracker=tracker,
        sweep=sweep,
        out_dir=str(out_dir),
        run_name=run_name(job),
        seed=job.seed,
    )


PARENT_POLL_S = 0.5
"""How often (seconds) a demo worker checks that the demo is still alive."""
ORPHAN_GRACE_S = 5.0
"""Seconds an orphaned worker gives its run to record `preempted` before it exits."""


def stop_when_orphaned(parent_pid: int, *, poll_s: float = PARENT_POLL_S) -> None:
    """In a worker: when `parent_pid` is gone (the demo was killed, even by SIGKILL, which it
    cannot pass on), send this process SIGTERM. `train_run` treats that as a preemption: the run
    records `preempted` (never counted, retrained by the next demo) and the worker exits, instead
    of training on for minutes and writing finished records nobody asked for."""
    if parent_pid == os.getpid() or _watched.get(os.getpid()) == parent_pid:
        return  # the sequential backend runs jobs in the demo itself; one watchdog per worker

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os.kill(os.getpid(), signal.SIGTERM)
        # The pool would hand this worker its next queued job once the preempted one returns:
        # leave after the grace the preempted record needs, whatever the job does.
        time.sleep(ORPHAN_GRACE_S)
        os._exit(128 + signal.SIGTERM)

    _watched[os.getpid()] = parent_pid
    threading.Thread(target=watch, name="regmix-demo-parent-watch", daemon=True).start()


_watched: dict[int, int] = {}


def _train_one(position: int, app_cfg: TrainAppConfig, parent_pid: int) -> tuple[int, RunRecord]:
    # In a worker process: quiet, one torch thread (set by train_run), the record is the result.
    os.environ.setdefault("WANDB_SILENT", "true")
    stop_when_orphaned(parent_pid)
    from dataclasses import asdict

    from regmix.train import train_run

    return position, train_run(app_cfg, resolved=asdict(app_cfg), log=lambda *_: None)


def train_many(cfg: DemoConfig, jobs: list[Job], desc: str) -> list[RunRecord]:
    """Train `jobs` over worker processes (joblib), with a progress bar; records in job order."""
    configs = [train_config(cfg, job) for job in jobs]
    n_jobs = cfg.jobs or os.cpu_count() or 1
    records: list[RunRecord | None] = [None] * len(configs)
    runner = Parallel(n_jobs=min(n_jobs, len(configs)), return_as="generator_unordered")
    with tqdm(total=len(configs), desc=desc, unit="run") as bar:
        for position, record in runner(delayed(_train_one)(i, c, os.getpid()) for i, c in enumerate(configs)):
            records[position] = record
            bar.update()
    return records


def target_loss(record: RunRecord, target: str) -> float:
    return float(record.val_loss[target])


def pick_target(cfg: DemoConfig, meta: CorpusMeta) -> str:
    """The demo's target: `default_target` (the one place a sweep's target is picked), required."""
    from regmix.sweep.record import default_target

    target = default_target(meta, cfg.target)
    if target is None:
        raise SettingsError(f"corpus {meta.name!r} has no single target-role domain; set target=<domain>")
    return target


def rank_check_indices(proxy_losses: dict[int, float], n: int) -> list[int]:
    """`n` proxy mixtures spread evenly over the proxy ranking (best and worst excluded)."""
    order = sorted(proxy_losses, key=proxy_losses.get)
    if n <= 0 or len(order) < 3:
        return []
    picks = np.linspace(0, len(order) - 1, n + 2)[1:-1].round().astype(int)
    return [order[i] for i in dict.fromkeys(picks)]


def pooled_noise(losses: dict[str, list[float]]) -> float:
    """Seed noise pooled over every mixture trained with two or more seeds (nats/token): the
    root mean square of the seed-to-seed differences, i.e. sqrt(2) x the pooled per-run standard
    deviation, the typical gap between two runs of one mixture. NaN when nothing was repeated."""
    squares, dof = 0.0, 0
    for values in losses.values():
        if len(values) > 1:
            v = np.asarray(values, dtype=np.float64)
            squares += float(((v - v.mean()) ** 2).sum())
            dof += len(v) - 1
    return float(np.sqrt(2.0 * squares / dof)) if dof else float("nan")


def elapsed(start: float) -> str:
    return f"{time.perf_counter() - start:.0f} s"
