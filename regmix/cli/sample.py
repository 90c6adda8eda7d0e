"""`regmix-sample`: draw a sweep's proxy mixtures and write its W&B sweep spec.

    regmix-sample sweep=demo n_mixtures=512
    regmix-sample sweep=pile sampler=paper_data 'fixed=["model=1m","train=paper"]'

writes, under `out_dir` (default sweeps/):

    <sweep>.mixtures.csv   index, then one weight column per train domain (corpus order)
    <sweep>.sampler.json   sampler settings, seed, prior, corpus identity, funnel counts, table hash
    <sweep>.yaml           W&B sweep spec: grid over mixture.index
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import hydra
from omegaconf import DictConfig, OmegaConf

from regmix.cli.hydra_app import CONF_DIR, quiet_broken_pipe, user_errors_exit
from regmix.config import SampleAppConfig, SamplerConfig, register_configs
from regmix.corpus.store import read_meta
from regmix.sampler import SamplerError, check_n_mixtures, normalize_prior, sample_mixtures
from regmix.sweep_files import (
    DEFAULT_OUT_DIR,
    SampleOutputs,
    check_sweep_name,
    check_table_free,
    fixed_with_table,
    write_sweep,
)
from regmix.sweep_spec import build_sweep_spec

register_configs()


def _target_for(meta, target: str | None) -> str | None:
    if target is not None:
        known = set(meta.eval_domains) | set(meta.train_domains)
        if target not in known:
            raise SamplerError(f"target={target!r} is not a domain of corpus {meta.name!r}; use one of {sorted(known)}")
        return target
    targets = [d for d, m in meta.domains.items() if m.role == "target"]
    return targets[0] if len(targets) == 1 else None


def sample_sweep(
    *,
    data_dir: str,
    sweep: str,
    n_mixtures: int,
    seed: int = 42,
    settings: SamplerConfig | None = None,
    out_dir: str = DEFAULT_OUT_DIR,
    fixed: Sequence[str] = (),
    target: str | None = None,
    overwrite: bool = False,
) -> SampleOutputs:
    """Sample `n_mixtures` mixtures over the corpus's train domains; write table, settings, spec.

    Refuses to replace an existing table unless `overwrite` (runs may already depend on it).
    """
    settings = settings or SamplerConfig()
    check_n_mixtures(n_mixtures)  # before the spec: a grid of 10^8 values is unbounded too
    check_sweep_name(sweep)
    table_file = check_table_free(out_dir, sweep, overwrite)
    meta = read_meta(data_dir)
    domains = meta.train_domains
    if not domains:
        raise SamplerError(f"corpus {meta.name!r} at {data_dir} has no train domains; prepare it with some")
    prior = normalize_prior(settings.prior if settings.prior else meta.token_prior(), domains)
    target = _target_for(meta, target)
    # Built (and its fixed items checked) before sampling, so a bad item fails fast.
    build_sweep_spec(sweep=sweep, n_mixtures=n_mixtures, fixed=fixed_with_table(fixed, out_dir, table_file), target=target)

    table = sample_mixtures(prior, n_mixtures, seed=seed, settings=settings)
    record = {
        "seed": int(seed),
        "sampler": asdict(settings),
        "prior": prior,
        "domains": domains,
        "corpus": meta.identity(data_dir),
    }
    return write_sweep(
        table,
        sweep=sweep,
        record=record,
        out_dir=out_dir,
        fixed=fixed,
        target=target,
        overwrite=overwrite,
        stats=dict(table.attrs.get("sampler_stats", {})),
    )


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


@quiet_broken_pipe
@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="sample")
@user_errors_exit
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
