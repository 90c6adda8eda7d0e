"""Experiment tracking behind a small interface: W&B (offline / online) or nothing.

W&B pitfalls handled here (measured on wandb 0.31, see docs/decisions.md):
- Hydra's basic launcher runs every job of a multirun in one process: `reinit="finish_previous"`
  and `finish()` in `finally` so that one run never swallows the next job's data.
- Hydra does not chdir: the run's files go to `dir=<the run's own folder>`.
- Summary values set after `log()` are replaced by buffered history at `finish()`: final
  metrics are logged with `commit=True` first and then written to the summary, so both agree.
- A preempted run must end with `mark_preempting()` and exit code 128 + signum to be re-queued.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from regmix.config import TrackerConfig

MODES = ("offline", "online", "disabled")


class Tracker(Protocol):
    def start(self, *, name: str, config: dict[str, Any], run_dir: Path) -> dict[str, Any] | None: ...
    def log(self, metrics: dict[str, float], step: int) -> None: ...
    def log_final(self, metrics: dict[str, float], step: int) -> None: ...
    def mark_preempting(self) -> None: ...
    def finish(self, exit_code: int = 0) -> None: ...


class NullTracker:
    """Tracks nothing (tracker=disabled): the run record is still written."""

    def start(self, *, name, config, run_dir):
        return None

    def log(self, metrics, step):
        pass

    def log_final(self, metrics, step):
        pass

    def mark_preempting(self):
        pass

    def finish(self, exit_code=0):
        pass


class WandbTracker:
    """One W&B run per proxy run, offline (no account; `wandb sync` later) or online."""

    def __init__(self, cfg: TrackerConfig):
        self.cfg = cfg
        self.run = None

    def start(self, *, name, config, run_dir):
        import wandb  # lazily: importing wandb costs ~1 s and is not needed with tracker=disabled

        run_dir.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=self.cfg.project,
            entity=self.cfg.entity,
            group=self.cfg.group,
            job_type=self.cfg.job_type,
            tags=list(self.cfg.tags) or None,
            name=name,
            config=config,
            dir=str(run_dir),
            mode=self.cfg.mode,
            reinit="finish_previous",
            settings=wandb.Settings(console="off", disable_git=True, x_disable_stats=True),
        )
        # Under `wandb agent` the sweep's flat parameter ("mixture.index") is merged into the
        # config; the nested config logged above stays intact and is what the analysis reads.
        self.run.define_metric("train/*", step_metric="train/tokens")
        return {
            "id": self.run.id,
            "project": self.run.project,
            "entity": self.run.entity if self.cfg.mode == "online" else self.cfg.entity,
            "mode": self.cfg.mode,
            "dir": str(Path(self.run.dir).parent),
            "sweep_id": self.run.sweep_id or os.environ.get("WANDB_SWEEP_ID"),
            "url": self.run.url if self.cfg.mode == "online" else None,
        }

    def log(self, metrics, step):
        self.run.log(metrics, step=step)

    def log_final(self, metrics, step):
        self.run.log(metrics, step=step, commit=True)
        self.run.summary.update(metrics)

    def mark_preempting(self):
        if self.run is not None:
            self.run.mark_preempting()

    def finish(self, exit_code=0):
        if self.run is not None:
            self.run.finish(exit_code=exit_code)
            self.run = None


def make_tracker(cfg: TrackerConfig) -> Tracker:
    if cfg.mode not in MODES:
        raise ValueError(f"tracker.mode={cfg.mode!r} is not one of {MODES}; pick tracker=offline|online|disabled")
    return NullTracker() if cfg.mode == "disabled" else WandbTracker(cfg)
