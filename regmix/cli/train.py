"""`regmix-train`: one proxy (or target) run per mixture; see `regmix.train.train_run`."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig, OmegaConf

from regmix.cli.hydra_app import CONF_DIR, quiet_broken_pipe, user_errors_exit
from regmix.config import register_configs

register_configs()


@quiet_broken_pipe
@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
@user_errors_exit
def main(cfg: DictConfig) -> None:
    from regmix.train import train_run  # torch is imported only when a run really starts

    resolved = OmegaConf.to_container(cfg, resolve=True)
    if cfg.dry_run:
        print(OmegaConf.to_yaml(resolved))
    train_run(OmegaConf.to_object(cfg), resolved=resolved)


if __name__ == "__main__":
    main()
