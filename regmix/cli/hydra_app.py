"""What every regmix entry point shares: where its config comes from and how user errors end."""

from __future__ import annotations

import errno
import functools
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from regmix.hydra_conf import CONFIG_PATH, VERSION_BASE, ignore_missing_user_conf


def hydra_main(config_name: str, *, folders: tuple[str, ...] = ("out_dir",)):
    """`@hydra.main` over the shipped configs (plus ./conf), with `user_errors_exit` inside and
    `errors_end_cleanly` and `quiet_broken_pipe` outside.

    `folders`: the settings that choose where the command writes, named in the fix of an
    unwritable folder (the one whose value holds the failing path, else all of them).
    """
    import hydra

    ignore_missing_user_conf()

    def decorate(fn):
        app = hydra.main(version_base=VERSION_BASE, config_path=CONFIG_PATH, config_name=config_name)
        return quiet_broken_pipe(errors_end_cleanly(app(user_errors_exit(fn, folders))))

    return decorate


#: Environment variables that ask for the traceback of user errors too (Hydra's own, and ours).
DEBUG_ENV = ("REGMIX_DEBUG", "HYDRA_FULL_ERROR")

#: The line under the traceback of an error that is not the user's.
REPORT_LINE = (
    "regmix: internal error (a bug in regmix, not a problem with your settings or files); "
    "please report it to the regmix maintainers with the command you ran and the traceback above"
)

#: OS errors a user fixes (a full disk, a folder they may not write), with the fix to name;
#: {folders} becomes the settings that choose the command's folders.
_OS_FIXES = {
    errno.ENOSPC: "free disk space and rerun",
    errno.EDQUOT: "free disk space (quota) and rerun",
    errno.EFBIG: "free disk space (or raise the file-size limit) and rerun",
    errno.EACCES: "make it writable or choose another folder ({folders})",
    errno.EPERM: "make it writable or choose another folder ({folders})",
    errno.EROFS: "the file system is read-only; choose another folder ({folders})",
}


#: What the user's environment asked for, read before `errors_end_cleanly` sets
#: HYDRA_FULL_ERROR for Hydra (None: not read yet; read the environment then).
_user_wants_tracebacks: bool | None = None


def traceback_wanted() -> bool:
    """REGMIX_DEBUG=1 or HYDRA_FULL_ERROR=1 (as the user set them): show the traceback of user
    errors too."""
    if _user_wants_tracebacks is not None:
        return _user_wants_tracebacks
    return any(os.environ.get(name) == "1" for name in DEBUG_ENV)


def end_with(exc: BaseException, folders: Sequence[str] = ("out_dir",)) -> None:
    """Exit for `exc`: a user error is one `error:` line and exit 2 (its traceback too under
    REGMIX_DEBUG=1); anything else is a bug: its traceback, a line asking to report it, exit 1.
    Call it from an `except` block (the traceback printed is the one being handled)."""
    message = user_error_message(exc, folders)
    if message is None:
        traceback.print_exc()
        print(REPORT_LINE, file=sys.stderr, flush=True)
        sys.exit(1)
    if traceback_wanted():
        traceback.print_exc()
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def os_error_message(exc: OSError, folders: Sequence[str] = ("out_dir",)) -> str | None:
    """One line for an OS error the user can fix, or None for one that is a bug."""
    if isinstance(exc, FileNotFoundError):
        return str(exc).splitlines()[0] if str(exc) else "FileNotFoundError"
    fix = _OS_FIXES.get(exc.errno)
    if fix is None:
        return None
    where = f"cannot write {exc.filename}" if exc.filename else "cannot write"
    return f"{where}: {exc.strerror}; {fix.format(folders=', '.join(f'{k}=...' for k in folders))}"


def user_error_message(exc: BaseException, folders: Sequence[str] = ("out_dir",)) -> str | None:
    """The one line a user error ends with, or None when `exc` is a bug.

    User errors: `RegmixError` (every module's own error), a missing file or an OS error the
    user fixes (a full disk, a folder they may not write), and Hydra's refusal of the command
    line (a misspelled key, a value of the wrong type, an unknown config group option).
    """
    from hydra.errors import HydraException

    from regmix.errors import RegmixError

    if isinstance(exc, RegmixError):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, HydraException):  # before OSError: MissingConfigException is an IOError too
        return _hydra_line(exc)
    if isinstance(exc, OSError):
        return os_error_message(exc, folders)
    return _shown_config_message(exc)


def _shown_config_message(exc: BaseException) -> str | None:
    """`--cfg hydra --resolve`: Hydra shows the hydra node without the job's settings, so an
    interpolation of one (regmix-train's `hydra.run.dir: ${out_dir}/${run_name}`) cannot resolve
    there. That is Hydra's view, not a bug: say which view resolves it. None for anything else."""
    from omegaconf.errors import InterpolationKeyError

    if not isinstance(exc, InterpolationKeyError) or _shown_config() != "hydra":
        return None
    return (f"{str(exc).splitlines()[0]}: --cfg hydra shows Hydra's settings without the command's own, which "
            "they interpolate; use --cfg all --resolve (or leave out --resolve)")


def _hydra_line(exc: BaseException) -> str:
    """Hydra's refusal in one line: its message and the OmegaConf cause, without the
    `full_key:` / `object_type=` detail lines."""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    text = str(exc)
    if "\nAvailable options in " in text:  # an unknown option of a config group
        head, _, rest = text.partition("\nAvailable options in ")
        group, _, options = rest.partition(":")
        names = [line.strip() for line in options.split("Config search path:")[0].splitlines() if line.strip()]
        return f"{head.strip()}; available options in {group}: {', '.join(names)}"
    if isinstance(exc.__cause__, (ConfigKeyError, ConfigAttributeError)) and text.startswith("Could not override '"):
        key = text.split("'")[1]
        return (f"{key} is not a setting of this command ({str(exc.__cause__).splitlines()[0]}); "
                f"check its spelling (--cfg job prints every setting), or add a new key with +{key}=...")
    if text.startswith("Error merging override ") and exc.__cause__ is not None:
        item = text.splitlines()[0][len("Error merging override "):]
        return f"{item}: {str(exc.__cause__).splitlines()[0]}"
    parts = []
    for err in (exc, exc.__cause__):
        if err is None:
            continue
        for line in str(err).splitlines():
            line = line.strip()
            if line and not line.startswith(("full_key:", "object_type=", "reference_type=", "Set the environment")):
                parts.append(line.rstrip("."))
    return "; ".join(dict.fromkeys(parts)) or type(exc).__name__


def _shown_config() -> str | None:
    """The config `--cfg`/`-c` asks Hydra to show (job, hydra, all), read by Hydra's own command-line
    parser, so every spelling it takes counts; None when the command runs."""
    from hydra._internal.utils import get_args_parser

    try:
        return get_args_parser().parse_known_args(sys.argv[1:])[0].cfg
    except SystemExit:  # a command line Hydra itself refused: not a view of the config
        return None


def _relevant_folders(cfg: Any, exc: OSError, folders: Sequence[str]) -> tuple[str, ...]:
    """Of `folders`, the settings whose folder holds the path that failed (all when none does)."""
    from omegaconf import OmegaConf

    if not exc.filename:
        return tuple(folders)
    failed = os.path.abspath(str(exc.filename))
    found = []
    for key in folders:
        try:
            value = OmegaConf.select(cfg, key)
        except Exception:
            value = None
        if value and (failed + os.sep).startswith(os.path.abspath(str(value)) + os.sep):
            found.append(key)
    return tuple(found) or tuple(folders)


def user_errors_exit(fn, folders: Sequence[str] = ("out_dir",)):
    """Turn a user error (see `user_error_message`) into one `error: ...` line on stderr and
    exit 2; anything else goes on to `errors_end_cleanly` as the bug it is.

    In a multirun the error is re-raised after the line (marked as reported), so Hydra marks
    only that job as failed, goes on with the others and the command exits 2 at the end.
    """

    @functools.wraps(fn)
    def wrapper(cfg, *args, **kwargs):
        try:
            return fn(cfg, *args, **kwargs)
        except Exception as exc:
            where = _relevant_folders(cfg, exc, folders) if isinstance(exc, OSError) else folders
            if user_error_message(exc, where) is None:
                raise
            if not _in_multirun():
                end_with(exc, where)
            if traceback_wanted():
                traceback.print_exc()
            print(f"error: {user_error_message(exc, where)}", file=sys.stderr, flush=True)
            exc.regmix_reported = True  # type: ignore[attr-defined]
            raise

    return wrapper


def errors_end_cleanly(app):
    """How a command ends on an error raised outside its task function (Hydra's composition,
    the settings check in a callback) or inside it (a bug, a multirun's user errors).

    Hydra is asked to re-raise (HYDRA_FULL_ERROR=1 for the call) instead of printing its own
    report, so this wrapper alone decides: a user error is one `error:` line and exit 2; a bug
    is its full traceback, a line asking to report it, and exit 1.
    """

    @functools.wraps(app)
    def wrapper(*args, **kwargs):
        global _user_wants_tracebacks
        _user_wants_tracebacks = traceback_wanted()
        previous = os.environ.get("HYDRA_FULL_ERROR")
        os.environ["HYDRA_FULL_ERROR"] = "1"
        try:
            return app(*args, **kwargs)
        except BrokenPipeError:
            raise  # a reader that closed the pipe: `quiet_broken_pipe` ends quietly
        except Exception as exc:
            if getattr(exc, "regmix_reported", False):
                sys.exit(2)  # its line is already out (a multirun job)
            end_with(exc)
        finally:
            if previous is None:
                os.environ.pop("HYDRA_FULL_ERROR", None)
            else:
                os.environ["HYDRA_FULL_ERROR"] = previous

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
