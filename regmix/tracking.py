"""Experiment tracking behind a small interface: W&B (offline / online) or nothing.

W&B pitfalls handled here (measured on wandb 0.31, see docs/decisions.md):
- Hydra's basic launcher runs every job of a multirun in one process: `reinit="finish_previous"`
  and `finish()` in `finally` so that one run never swallows the next job's data.
- Hydra does not chdir: the run's files go to `dir=<the run's own folder>`.
- Summary values set after `log()` are replaced by buffered history at `finish()`: final
  metrics are logged with `commit=True` first and then written to the summary, so both agree.
- A preempted run must end with `mark_preempting()` and exit code 128 + signum to be re-queued.
- One W&B run per proxy run: the run's W&B id is kept in its folder (`wandb-run.json`), and a
  run that resumes from its checkpoint (a rerun after SIGTERM/SIGKILL) continues that W&B run
  (`id=..., resume="allow"`); its history goes on from the checkpoint's step. Under `wandb agent`
  the agent names the run (WANDB_RUN_ID; a re-queued run keeps its id), and its id wins.
- The record keeps the entity the run used: the W&B run's (online), else the one it was started
  with (tracker.entity, else WANDB_ENTITY, as a sweep agent's environment sets it).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from regmix.atomic_file import write_text_atomic
from regmix.config import TrackerConfig
from regmix.errors import RegmixError

#: The file in a run folder that names the run's W&B run, so a resumed run continues it.
WANDB_RUN_FILE = "wandb-run.json"

MODES = ("offline", "online", "disabled")
#: How far each mode reaches: WANDB_MODE may only move a run towards the local end.
_REACH = {"disabled": 0, "offline": 1, "online": 2}
#: WANDB_MODE values wandb itself accepts, as our modes ("dryrun" is wandb's old name for offline).
_ENV_MODES = {"online": "online", "run": "online", "offline": "offline", "dryrun": "offline", "disabled": "disabled"}


class TrackingError(RegmixError):
    """A W&B run (of a training run or of a fit) cannot start or be logged (no API key, an
    unreachable server, an unknown tracker mode); the message names the fix."""


def effective_mode(mode: str, env: str | None = None) -> str:
    """`tracker.mode`, unless WANDB_MODE asks for something more local.

    W&B's convention for running a sweep agent's command by hand is `WANDB_MODE=offline` (or
    `disabled`); the sweep command carries `tracker=online`, so the environment must be able to
    turn it down. It never turns a run *up* (offline -> online would upload what the user kept local).
    """
    env_mode = _ENV_MODES.get((os.environ.get("WANDB_MODE", "") if env is None else env).strip().lower())
    if env_mode is not None and mode in _REACH and _REACH[env_mode] < _REACH[mode]:
        return env_mode
    return mode


def previous_wandb_run(run_dir: Path) -> dict[str, Any] | None:
    """What `wandb-run.json` in `run_dir` says (None: no file, or not one we wrote)."""
    try:
        data = json.loads((run_dir / WANDB_RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("id"), str) and data["id"] else None


class Tracker(Protocol):
    def start(
        self, *, name: str, config: dict[str, Any], run_dir: Path, resume: bool = False
    ) -> dict[str, Any] | None: ...
    def log(self, metrics: dict[str, float], step: int) -> None: ...
    def log_final(self, metrics: dict[str, float], step: int) -> None: ...
    def mark_preempting(self) -> None: ...
    def finish(self, exit_code: int = 0) -> None: ...


class NullTracker:
    """Tracks nothing (tracker=disabled): the run record is still written."""

    def start(self, *, name, config, run_dir, resume=False):
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

    def start(self, *, name, config, run_dir, resume=False):
        """Start (or, when `resume`, continue) the run's W&B run; returns what the record keeps."""
        import wandb  # lazily: importing wandb costs ~1 s and is not needed with tracker=disabled

        run_dir.mkdir(parents=True, exist_ok=True)
        previous = previous_wandb_run(run_dir) if resume and not os.environ.get("WANDB_RUN_ID") else None
        entity = self.cfg.entity or os.environ.get("WANDB_ENTITY") or None
        try:
            self.run = self._init(wandb, name=name, config=config, run_dir=run_dir, entity=entity,
                                  run_id=previous["id"] if previous else None)
        except wandb.errors.Error as err:  # no key, a bad key, no server: the user's to fix
            text = str(err).strip() or type(err).__name__
            fix = "set WANDB_API_KEY or run `wandb login`, " if self.cfg.mode == "online" else ""
            raise TrackingError(
                f"tracker={self.cfg.mode}: the W&B run could not start ({text.splitlines()[0]}); {fix}"
                "or run it locally with WANDB_MODE=offline (`wandb sync` later) or WANDB_MODE=disabled"
            ) from None
        # Under `wandb agent` the sweep's flat parameter ("mixture.index") is merged into the
        # config; the nested config logged above stays intact and is what the analysis reads.
        self.run.define_metric("train/*", step_metric="train/tokens")
        write_text_atomic(run_dir / WANDB_RUN_FILE, json.dumps(
            {"id": self.run.id, "project": self.run.project, "mode": self.cfg.mode}) + "\n")
        return {
            "id": self.run.id,
            "project": self.run.project,
            "entity": (self.run.entity if self.cfg.mode == "online" else None) or entity,
            "mode": self.cfg.mode,
            "dir": str(Path(self.run.dir).parent),
            "sweep_id": self.run.sweep_id or os.environ.get("WANDB_SWEEP_ID"),
            "url": self.run.url if self.cfg.mode == "online" else None,
        }

    def _init(self, wandb, *, name, config, run_dir, entity, run_id):
        return wandb.init(
            project=self.cfg.project,
            entity=entity,
            id=run_id,
            resume="allow" if run_id else None,
            group=self.cfg.group,
            job_type=self.cfg.job_type,
            # Each tag once: a demo proxy's scale and label are both 'proxy'.
            tags=list(dict.fromkeys(self.cfg.tags)) or None,
            name=name,
            config=config,
            dir=str(run_dir),
            mode=self.cfg.mode,
            reinit="finish_previous",
            settings=wandb.Settings(console="off", disable_git=True, x_disable_stats=True),
        )

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
    """The tracker for `cfg.mode`, turned down to WANDB_MODE when that is more local (`effective_mode`)."""
    if cfg.mode not in MODES:
        raise TrackingError(f"tracker.mode={cfg.mode!r} is not one of {MODES}; pick tracker=offline|online|disabled")
    mode = effective_mode(cfg.mode)
    if mode != cfg.mode:
        print(f"[regmix] WANDB_MODE={os.environ.get('WANDB_MODE')}: tracking {mode} (tracker={cfg.mode})", file=sys.stderr)
        cfg = replace(cfg, mode=mode)
    return NullTracker() if mode == "disabled" else WandbTracker(cfg)
