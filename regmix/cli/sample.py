"""`regmix-sample`: draw a sweep's proxy mixtures and write its W&B sweep spec.

    regmix-sample sweep=demo n_mixtures=512
    regmix-sample sweep=pile sampler=paper_data 'fixed=["model=1m","train=paper"]'

writes, under `out_dir` (default sweeps/):

    <sweep>.mixtures.csv   index, then one weight column per train domain (corpus order)
    <sweep>.sampler.json   sampler settings, seed, prior, corpus identity, funnel counts, table hash
    <sweep>.yaml           W&B sweep spec: grid over mixture.index
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from regmix.cli.hydra_app import hydra_main
from regmix.config import SampleAppConfig, register_configs
from regmix.sweep.sample import sample_sweep

register_configs()


def _data_overrides() -> list[str]:
    """`data...` overrides of this command, forwarded so proxies train on the sampled corpus."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    items = []
    for item in HydraConfig.get().overrides.task:
        key = item.split("=", 1)[0].lstrip("+~")
        if (key == "data" or key.startswith("data.")) and key != "data.overwrite":
            items.append(item)
    return items


@hydra_main("sample")
def main(cfg: DictConfig) -> None:
    app: SampleAppConfig = OmegaConf.to_object(cfg)
    given = list(app.fixed)
    forwarded = [d for d in _data_overrides() if d.split("=", 1)[0] not in {f.split("=", 1)[0] for f in given}]
    result = sample_sweep(
        data_dir=app.data.dir,
        sweep=app.sweep,
        n_mixtures=app.n_mixtures,
        seed=app.seed,
        settings=app.sampler,
        out_dir=app.out_dir,
        fixed=forwarded + given,
        target=app.target,
        overwrite=app.overwrite,
    )
    s = result.stats
    print(
        f"wrote {result.table} ({result.n_mixtures} mixtures; {s.get('distinct')} distinct of "
        f"{s.get('drawn')} drawn, {s.get('within_cap')} within the caps)"
    )
    print(f"wrote {result.settings}")
    print(f"wrote {result.spec}")
    for message in result.warnings:
        print(f"warning: {message}")
    print(f"local sweep:  {result.local_command}   (add hydra/launcher=cpu for one job per CPU core)")
    print(f"W&B sweep:    {result.wandb_command}   (then `wandb agent <entity/project/id>` per GPU)")


if __name__ == "__main__":
    main()
