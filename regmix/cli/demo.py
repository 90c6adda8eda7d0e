"""`regmix-demo`: the whole RegMix loop on the embedded synthetic corpus (no account, no GPU)."""

from __future__ import annotations

import os

import hydra
from omegaconf import DictConfig, OmegaConf

from regmix.cli.hydra_app import CONF_DIR, quiet_broken_pipe, user_errors_exit


def _register() -> None:
    from hydra.core.config_store import ConfigStore

    from regmix.config import register_configs
    from regmix.demo.config import DemoConfig

    register_configs()
    ConfigStore.instance().store(name="demo_schema", node=DemoConfig)


_register()


@quiet_broken_pipe
@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="demo")
@user_errors_exit
def main(cfg: DictConfig) -> None:
    os.environ.setdefault("WANDB_SILENT", "true")  # one progress bar per stage instead of W&B's banners
    from regmix.demo.run import run_demo

    run_demo(OmegaConf.to_object(cfg))


if __name__ == "__main__":
    main()
