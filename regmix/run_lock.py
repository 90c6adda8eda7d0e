"""One process per run folder: an OS file lock held for the life of a run.

Two processes on one run folder (two agents handed the same mixture, a re-queued job and its
zombie, a second terminal) must not both train and then race to write the record. The lock is
`fcntl.flock` on `<run folder>/.lock`: the kernel drops it when the holder exits, however it
exits (SIGKILL included), so a stale lock never blocks a rerun. The file itself is never
deleted (deleting a locked file lets a third process lock a new inode beside the old one).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from regmix.errors import RegmixError

LOCK_NAME = ".lock"


class RunBusy(RegmixError):
    """Another live process holds the run folder's lock."""


def _holder(fd: int) -> str:
    try:
        raw = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"pid {raw['pid']} on {raw['host']} since {raw['since']}"
    except (ValueError, KeyError, TypeError, OSError):
        return "another process"


@contextmanager
def run_lock(run_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold `run_dir`'s lock for the block; raise `RunBusy` at once when another process has it.

    Not waiting is deliberate: the holder may train for hours, and a scheduler (Hydra multirun,
    `wandb agent`) should go on with its next job; a rerun after the holder ends finds its record.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusy(
                f"{run_dir} is being trained by {_holder(fd)}; wait for it to end (a rerun then "
                "skips the finished run) or choose another out_dir=..."
            ) from None
        stamp = {"pid": os.getpid(), "host": socket.gethostname(),
                 "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(stamp).encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock
