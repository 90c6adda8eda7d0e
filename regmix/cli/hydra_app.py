"""What every regmix entry point shares: where the configs live and how user errors end."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

#: The project's Hydra configs (`conf/` at the top of the checkout). regmix runs from a
#: checkout (editable install): emitted mixtures are written into the same conf/mixture/.
CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


def user_errors_exit(fn):
    """Turn a user error (ValueError, FileNotFoundError) into one line on stderr and exit 2.

    In a multirun the error is re-raised after the line, so Hydra marks only that job as
    failed, goes on with the others and exits non-zero at the end.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, FileNotFoundError) as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(f"error: {message}", file=sys.stderr, flush=True)
            if _in_multirun():
                raise
            sys.exit(2)

    return wrapper


def _in_multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:
        return False
