"""`regmix-train`: one proxy (or target) run per mixture; see `regmix.train.train_run`."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from regmix.cli.hydra_app import hydra_main
from regmix.cli.run_folder import discard_staged_hydra_record, keep_hydra_record, register_staging_resolver
from regmix.config import register_configs

register_configs()
register_staging_resolver()


@hydra_main("train")
def main(cfg: DictConfig) -> None:
    from regmix.train import train_run  # torch is imported only when a run really starts

    resolved = OmegaConf.to_container(cfg, resolve=True)
    if cfg.dry_run:
        print(OmegaConf.to_yaml(resolved))
    try:
        train_run(OmegaConf.to_object(cfg), resolved=resolved, on_claimed=keep_hydra_record)
    finally:  # the job's staged .hydra/ is in the run folder now, or was refused
        discard_staged_hydra_record()


if __name__ == "__main__":
    main()
