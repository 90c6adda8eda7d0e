"""Training checkpoints in the run's folder, so a preempted run resumes instead of restarting.

One file, `checkpoint.pt`, replaced atomically (temp file in the same folder, fsync, rename, fsync
of the folder): a SIGKILL during a write leaves the previous checkpoint whole and at most a stale
temp file, which the next write or `remove_checkpoints` deletes. It holds everything the rest of the
run depends on: model and optimizer state, the data stream's generator state, torch's RNG states,
the step reached, and the identity of the run it belongs to (a checkpoint of other settings is
never resumed).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

CHECKPOINT = "checkpoint.pt"
_TMP_PREFIX = f".{CHECKPOINT}."


def rng_state(device: torch.device) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _stale_temps(run_dir: Path) -> list[Path]:
    return list(run_dir.glob(f"{_TMP_PREFIX}*.tmp"))


def save_checkpoint(run_dir: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write `state` as the run's checkpoint, atomically; returns its path."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in _stale_temps(run_dir):  # left by a writer killed mid-write
        stale.unlink(missing_ok=True)
    path = run_dir / CHECKPOINT
    fd, tmp = tempfile.mkstemp(dir=run_dir, prefix=_TMP_PREFIX, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(run_dir, os.O_RDONLY)
    try:  # the rename itself survives a crash only once the folder is synced
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def load_checkpoint(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The run's last checkpoint (tensors on CPU), or None when there is none."""
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


def remove_checkpoints(run_dir: str | os.PathLike) -> None:
    """Delete the checkpoint and any stale temp files (a finished run needs neither)."""
    run_dir = Path(run_dir)
    for path in [run_dir / CHECKPOINT, *_stale_temps(run_dir)]:
        path.unlink(missing_ok=True)
