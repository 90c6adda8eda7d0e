"""Atomic file writes: a reader (or a rerun after Ctrl-C / SIGKILL) never sees half a file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def shared_file_mode() -> int:
    """The mode a plain `open()` would give a new file (0666 less the umask, e.g. 0644): run files
    are meant to be read by the group's other jobs, whereas `mkstemp` makes them 0600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_text_atomic(path: str | os.PathLike, text: str, *, fsync: bool = False) -> Path:
    """Write `text` to `path` via a temp file in the same folder and a rename.

    `fsync=True` also flushes the data to disk before the rename (run records: a crash right
    after a run ends must not leave a finished-looking empty file).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, shared_file_mode())
        os.replace(tmp, path)
    except OSError as exc:  # e.g. a full disk: the error names the file it was writing
        Path(tmp).unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
