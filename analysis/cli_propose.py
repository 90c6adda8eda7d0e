"""`regmix-propose`: an active round: the next mixtures where the ensemble is promising and unsure.

    regmix-propose sweep=r0 out=r1 k=32                   # learn from runs/r0/, write sweeps/r1.*
    regmix-propose 'sweep=[r0,r1]' out=r2 k=32            # several rounds merged
    regmix-propose sweep=r0 out=r1 k=32 candidates=pool.csv   # choose from a given table of mixtures

Writes sweeps/<out>.mixtures.csv, .sampler.json (with the parents) and the W&B spec .yaml, like
regmix-sample: train the round with `regmix-train -m sweep=<out> ...` or `regmix-sweep sweep=<out>`.
"""

from __future__ import annotations

import shlex

from omegaconf import DictConfig, OmegaConf

from analysis.propose_config import ProposeAppConfig, register_propose_configs
from regmix.cli.hydra_app import hydra_main

register_propose_configs()


def _command() -> str:
    from hydra.core.hydra_config import HydraConfig

    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    return shlex.join(["regmix-propose", *overrides])


@hydra_main("propose")
def main(cfg: DictConfig) -> None:
    from analysis.propose import run_propose, summary_text

    app: ProposeAppConfig = OmegaConf.to_object(cfg)
    print(summary_text(run_propose(app, command=_command())))


if __name__ == "__main__":
    main()
