"""Where regmix's Hydra configs are, and composing them outside a Hydra app (tests, checks).

The configs ship inside the package (`conf/` at the top of the checkout is installed as the
package `regmix.conf`), so a regular `pip install` has them and Hydra finds them as
`pkg://regmix.conf`. Every primary config also puts the `conf/` folder of the working
directory on Hydra's search path (`hydra.searchpath`), and `regmix-fit` writes emitted
mixtures there (`conf/mixture/<name>.yaml`): results land where the user runs, never in the
installed package or in another checkout.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

#: The package that holds the shipped configs (mapped from the checkout's conf/ in pyproject).
CONF_PACKAGE = "regmix.conf"
#: What `@hydra.main(config_path=...)` takes.
CONFIG_PATH = f"pkg://{CONF_PACKAGE}"
#: The working directory's config folder: also on the search path; emitted mixtures go here.
USER_CONF_DIR = "conf"
#: Hydra's version_base for every app and compose call.
VERSION_BASE = "1.3"


def ignore_missing_user_conf() -> None:
    """Hydra warns when a search path folder does not exist; ./conf is optional (most runs
    start without one, and regmix-fit creates conf/mixture/ when it emits)."""
    import warnings

    warnings.filterwarnings("ignore", message=r".*hydra\.searchpath in main, path=conf is not available")


def shipped_conf_dir() -> Path:
    """The folder of the shipped configs on disk (the checkout's conf/ in an editable install)."""
    from importlib.resources import files

    return Path(str(files(CONF_PACKAGE)))


def user_mixture_dir() -> Path:
    """Where emitted mixtures are written and `mixture=<name>` finds them: ./conf/mixture."""
    return Path(USER_CONF_DIR) / "mixture"


def compose(config_name: str, overrides: Sequence[str] = (), *, return_hydra_config: bool = False) -> DictConfig:
    """A primary config composed with these overrides, as its command would compose it.

    Inside a running Hydra app the app's search path is used; elsewhere the shipped configs
    (plus ./conf) are. Schemas must be registered first (e.g. `regmix.config.register_configs`).
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    ignore_missing_user_conf()
    if GlobalHydra.instance().is_initialized():
        return hydra_compose(config_name=config_name, overrides=list(overrides), return_hydra_config=return_hydra_config)
    with initialize_config_module(config_module=CONF_PACKAGE, version_base=VERSION_BASE):
        return hydra_compose(config_name=config_name, overrides=list(overrides), return_hydra_config=return_hydra_config)
