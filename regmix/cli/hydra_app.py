"""What every regmix entry point shares: where its config comes from and how user errors end."""

from __future__ import annotations

import errno
import functools
import os
import sys

from regmix.hydra_conf import CONFIG_PATH, VERSION_BASE, ignore_missing_user_conf


def hydra_main(config_name: str):
    """`@hydra.main` over the shipped configs (plus ./conf), with `user_errors_exit` inside and
    `quiet_broken_pipe` outside."""
    import hydra

    ignore_missing_user_conf()

    def decorate(fn):
        app = hydra.main(version_base=VERSION_BASE, config_path=CONFIG_PATH, config_name=config_name)
        return quiet_broken_pipe(app(user_errors_exit(fn)))

    return decorate


#: OS errors a user fixes (a full disk, a folder they may not write), with the fix to name.
_OS_FIXES = {
    errno.ENOSPC: "free disk space and rerun",
    errno.EDQUOT: "free disk space (quota) and rerun",
    errno.EFBIG: "free disk space (or raise the file-size limit) and rerun",
    errno.EACCES: "make it writable or choose another folder (out_dir=..., data.dir=...)",
    errno.EPERM: "make it writable or choose another folder (out_dir=..., data.dir=...)",
    errno.EROFS: "the file system is read-only; choose another folder (out_dir=..., data.dir=...)",
}


def os_error_message(exc: OSError) -> str | None:
    """One line for an OS error the user can fix, or None for one that is a bug."""
    fix = _OS_FIXES.get(exc.errno)
    if fix is None:
        return None
    where = f"cannot write {exc.filename}" if exc.filename else "cannot write"
    return f"{where}: {exc.strerror}; {fix}"


def user_errors_exit(fn):
    """Turn a user error (ValueError, FileNotFoundError, a full disk, a read-only folder) into
    one line on stderr and exit 2.

    In a multirun the error is re-raised after the line, so Hydra marks only that job as
    failed, goes on with the others and exits non-zero at the end.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, FileNotFoundError, OSError) as exc:
            if isinstance(exc, (ValueError, FileNotFoundError)):
                message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            else:
                message = os_error_message(exc)
                if message is None:
                    raise
            print(f"error: {message}", file=sys.stderr, flush=True)
            if _in_multirun():
                raise
            sys.exit(2)

    return wrapper


def quiet_broken_pipe(fn):
    """`regmix-... --help | head` ends quietly: a reader that closes the pipe early is normal
    use, not an error worth a traceback (exit 141 = 128 + SIGPIPE, as a shell tool would)."""

    def silence_stdout() -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # later flushes (at exit) go nowhere

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BrokenPipeError:
            silence_stdout()
            sys.exit(141)
        finally:
            try:
                sys.stdout.flush()
            except BrokenPipeError:
                silence_stdout()

    return wrapper


def _in_multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:
        return False
