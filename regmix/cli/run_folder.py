"""A Hydra callback of `regmix-train`: check the run folder before Hydra creates it.

Hydra makes the job's output folder (the run folder: its config copy and log) before any of
regmix's code runs, so a read-only `runs/` ended in Hydra's traceback and a dry run left empty
run folders behind. This callback runs first (`on_run_start` / `on_multirun_start`): it
refuses an unwritable folder with one line, and points a dry run's Hydra output at a temporary
folder removed at exit, so `dry_run=true` writes nothing under `runs/`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write


def _first_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(folder: Path, key: str) -> None:
    """Exit 2 with one line when `folder` cannot be created or written."""
    existing = _first_existing(folder)
    if not os.access(existing, os.W_OK | os.X_OK):
        print(f"error: cannot create the run folder {folder}: {existing} is not writable; "
              f"make it writable or choose another {key}=...", file=sys.stderr, flush=True)
        sys.exit(2)


class RunFolderCheck(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.get("dry_run"):
            scratch = tempfile.mkdtemp(prefix="regmix-dry-run-")
            atexit.register(shutil.rmtree, scratch, ignore_errors=True)
            with read_write(config.hydra), open_dict(config.hydra):
                config.hydra.run.dir = scratch
            return
        check_writable(Path(str(config.hydra.run.dir)), "out_dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        check_writable(Path(str(config.hydra.sweep.dir)), "out_dir")
