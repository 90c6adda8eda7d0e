"""What every regmix entry point shares: where its config comes from and how user errors end."""

from __future__ import annotations

import functools
import sys

from regmix.hydra_conf import CONFIG_PATH, VERSION_BASE, ignore_missing_user_conf


def hydra_main(config_name: str):
    """`@hydra.main` over the shipped configs (plus ./conf), with `user_errors_exit`."""
    import hydra

    ignore_missing_user_conf()

    def decorate(fn):
        return hydra.main(version_base=VERSION_BASE, config_path=CONFIG_PATH, config_name=config_name)(
            user_errors_exit(fn)
        )

    return decorate


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
