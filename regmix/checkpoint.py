"""Training checkpoints in the run's folder, so a preempted run resumes instead of restarting.

One file, `checkpoint.pt`, replaced atomically (temp file in the same folder, fsync, rename, fsync
of the folder): a SIGKILL during a write leaves the previous checkpoint whole and at most a stale
temp file, which the next write or `remove_checkpoints` deletes. It holds everything the rest of the
run depends on: model and optimizer state, the data stream's generator state, torch's RNG states,
the step reached, and the identity of the run it belongs to (a checkpoint of other settings is
never resumed). A checkpoint that cannot be read is set aside (`set_aside`), never left to fail
every rerun. Its mode is the other run files' (0666 less the umask), so a re-queued job of
another user of the same group can resume it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from regmix.atomic_file import shared_file_mode

CHECKPOINT = "checkpoint.pt"
_TMP_PREFIX = f".{CHECKPOINT}."
#: Suffix of a checkpoint set aside: checkpoint.pt.rejected-1, -2, ...
REJECTED = f"{CHECKPOINT}.rejected-"


class CheckpointError(Exception):
    """The checkpoint file exists but cannot be read (truncated, not a torch file); the caller
    sets it aside. Not a user error: nothing reaches the user but the one line saying so."""


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
        os.chmod(tmp, shared_file_mode())  # mkstemp makes 0600
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
    """The run's last checkpoint (tensors on CPU), or None when there is none; `CheckpointError`
    when the file cannot be read."""
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load fails in many ways on a bad file (EOF, zip, unpickling, ...)
        detail = (str(exc).splitlines() or [""])[0]
        raise CheckpointError(f"cannot be read ({type(exc).__name__}: {detail})") from exc


def set_aside(run_dir: str | os.PathLike) -> Path:
    """Rename the run's checkpoint to the first free `checkpoint.pt.rejected-N`; returns the new path."""
    run_dir = Path(run_dir)
    n = 1
    while (run_dir / f"{REJECTED}{n}").exists():
        n += 1
    target = run_dir / f"{REJECTED}{n}"
    os.replace(run_dir / CHECKPOINT, target)
    return target


def remove_checkpoints(run_dir: str | os.PathLike, *, keep_last: bool = False) -> None:
    """Delete the checkpoint (unless `keep_last`) and any stale temp files (a finished run needs neither)."""
    run_dir = Path(run_dir)
    for path in [*([] if keep_last else [run_dir / CHECKPOINT]), *_stale_temps(run_dir)]:
        path.unlink(missing_ok=True)
