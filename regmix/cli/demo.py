"""`regmix-demo`: the whole RegMix loop on the embedded synthetic corpus (no account, no GPU)."""

from __future__ import annotations

import os

from omegaconf import DictConfig, OmegaConf

from regmix.cli.hydra_app import hydra_main
from regmix.demo.config import register_demo_config

register_demo_config()


@hydra_main("demo")
def main(cfg: DictConfig) -> None:
    os.environ.setdefault("WANDB_SILENT", "true")  # one progress bar per stage instead of W&B's banners
    from regmix.demo.run import run_demo

    run_demo(OmegaConf.to_object(cfg))


if __name__ == "__main__":
    main()
