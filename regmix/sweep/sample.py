"""Sampling orchestration behind `regmix-sample`: a sweep's mixtures table, record and W&B spec.

Under `out_dir` (default sweeps/) it writes:

    <sweep>.mixtures.csv   index, then one weight column per train domain (corpus order)
    <sweep>.sampler.json   sampler settings, seed, prior, corpus identity, target, funnel counts, table hash
    <sweep>.yaml           W&B sweep spec: grid over mixture.index
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from regmix.config import SamplerConfig
from regmix.corpus.store import read_meta
from regmix.sampler import SamplerError, check_n_mixtures, normalize_prior, sample_mixtures
from regmix.sweep.files import DEFAULT_DIR
from regmix.sweep.record import default_target
from regmix.sweep.spec import build_sweep_spec
from regmix.sweep.write import SampleOutputs, check_sweep_name, check_table_free, fixed_with_table, write_sweep


def sample_sweep(
    *,
    data_dir: str,
    sweep: str,
    n_mixtures: int,
    seed: int = 42,
    settings: SamplerConfig | None = None,
    out_dir: str = DEFAULT_DIR,
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
    target = default_target(meta, target)
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
