"""`regmix-fit`: fit regressors on finished proxy runs, simulate, emit the best mixture.

    regmix-fit source=local sweep=demo target=<domain>
    regmix-fit source=paper                                   # the paper's released runs
    regmix-fit source=csv source.mixtures=m.csv source.losses=l.csv target=<domain>
    regmix-fit ... tracker=offline|online                     # also log the results to W&B

Writes conf/mixture/<out>.yaml (train on it with `regmix-train mixture=<out>`) and a report
folder (reports/<name>/ by default); prints both paths at the end.
"""

from __future__ import annotations

import shlex

from omegaconf import DictConfig, OmegaConf

from analysis.config import FitAppConfig, register_fit_configs
from regmix.cli.hydra_app import hydra_main

register_fit_configs()


def _command() -> str:
    """This command line as typed (Hydra overrides), for the emitted file's provenance."""
    from hydra.core.hydra_config import HydraConfig

    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    return shlex.join(["regmix-fit", *overrides])


@hydra_main("fit", folders=("report_dir", "mixture_dir"))
def main(cfg: DictConfig) -> None:
    from analysis.fit import run_fit
    from analysis.report import summary_text

    app: FitAppConfig = OmegaConf.to_object(cfg)
    result = run_fit(app, command=_command())
    print(summary_text(result))
    if result.tracked is not None:
        print(result.tracked.line())


if __name__ == "__main__":
    main()
