"""`regmix-sweep`: check a sampled sweep and create it on W&B, ready for `wandb agent` workers.

    regmix-sweep sweep=pile                                   # create it, print the agent commands
    regmix-sweep sweep=pile 'fixed=["model=1m","train=paper"]' entity=my-team project=regmix
    regmix-sweep sweep=pile dry_run=true                      # check and print only, no W&B

The work is `regmix.sweep.wandb_sweep.launch_sweep`; the checks are `regmix.sweep.check`.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from regmix.cli.hydra_app import hydra_main
from regmix.config import SweepAppConfig, register_configs
from regmix.sweep.wandb_sweep import launch_sweep

register_configs()


@hydra_main("sweep", folders=("spec_dir",))
def main(cfg: DictConfig) -> None:
    app: SweepAppConfig = OmegaConf.to_object(cfg)
    launch_sweep(
        sweep=app.sweep,
        spec_dir=app.spec_dir,
        fixed=list(app.fixed),
        entity=app.entity,
        project=app.project,
        dry_run=app.dry_run,
    )


if __name__ == "__main__":
    main()
