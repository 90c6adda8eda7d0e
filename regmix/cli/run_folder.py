"""`regmix-train`'s run folder on Hydra's side: checked before Hydra creates it, written only
once the run has passed its checks.

Hydra makes the job's output folder (the run folder) and writes its record of the config
(`.hydra/`) before any of regmix's code runs. So:
- `RunFolderCheck` (a callback, run first: `on_run_start` / `on_multirun_start`) refuses an
  unwritable folder with one line (a read-only *finished* run passes: the trainer reports it
  finished), and points a dry run's Hydra output at a temporary folder removed at exit, so
  `dry_run=true` writes nothing under `runs/`;
- Hydra writes `.hydra/` to a staging folder outside the run folder (`hydra.output_subdir:
  ${regmix.hydra_staging:...}` in conf/train.yaml), and `keep_hydra_record` copies it into the
  run folder once the trainer holds the run's lock and has passed the finished/identity checks:
  a refused trainer never rewrites a live or finished run's `.hydra/`.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from regmix.atomic_file import write_text_atomic
from regmix.run_record import is_finished

#: Where a run folder keeps Hydra's record of its config (config.yaml, hydra.yaml, overrides.yaml).
HYDRA_RECORD = ".hydra"
#: The resolver conf/train.yaml names in `hydra.output_subdir`.
STAGING_RESOLVER = "regmix.hydra_staging"
_staging_root: list[str] = []  # one temporary folder per process, removed at exit


def hydra_staging(output_dir: str) -> str:
    """Where Hydra writes the `.hydra/` of the job whose output folder is `output_dir` (absolute,
    so Hydra's `output_dir / output_subdir` is this path): a subfolder per job of this process's
    temporary folder."""
    if not _staging_root:
        _staging_root.append(tempfile.mkdtemp(prefix="regmix-hydra-"))
        atexit.register(shutil.rmtree, _staging_root[0], ignore_errors=True)
    return os.path.join(_staging_root[0], hashlib.sha1(str(output_dir).encode()).hexdigest()[:16])


def register_staging_resolver() -> None:
    if not OmegaConf.has_resolver(STAGING_RESOLVER):
        OmegaConf.register_new_resolver(STAGING_RESOLVER, hydra_staging)


def _staged() -> Path | None:
    """The running job's staged `.hydra/` (None: Hydra wrote none, or wrote it in place)."""
    from hydra.core.hydra_config import HydraConfig

    staged = HydraConfig.get().output_subdir
    return Path(staged) if staged is not None and Path(staged).is_absolute() else None


def discard_staged_hydra_record() -> None:
    """Remove the running job's staging folder (kept or refused, the job is over); the process's
    staging root goes at exit."""
    staged = _staged()
    if staged is not None and _staging_root and staged.parent == Path(_staging_root[0]):
        shutil.rmtree(staged, ignore_errors=True)


def keep_hydra_record(run_dir: Path) -> None:
    """Copy the staged `.hydra/` of the running job into `run_dir` (the trainer calls this once it
    has claimed the run). Nothing to do when Hydra wrote none (`hydra.output_subdir=null`) or
    wrote it in place (a relative `hydra.output_subdir=...` given by the user)."""
    staged = _staged()
    if staged is None or not staged.is_dir():
        return
    for path in sorted(staged.glob("*.yaml")):
        write_text_atomic(run_dir / HYDRA_RECORD / path.name, path.read_text(encoding="utf-8"))


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
        run_dir = Path(str(config.hydra.run.dir))
        if is_finished(run_dir):  # read-only or not, the trainer answers "already finished" (or refuses)
            return
        check_writable(run_dir, "out_dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        check_writable(Path(str(config.hydra.sweep.dir)), "out_dir")
