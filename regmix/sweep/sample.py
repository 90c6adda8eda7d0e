"""Sampling orchestration behind `regmix-sample`: a sweep's mixtures table, record and W&B spec.

Under `out_dir` (default sweeps/) it writes:

    <sweep>.mixtures.csv   index, then one weight column per train domain (corpus order)
    <sweep>.sampler.json   sampler settings, seed, prior, corpus identity, target, funnel counts, table hash
    <sweep>.yaml           W&B sweep spec: grid over mixture.index
"""

from __future__ import annotations

import datetime as _dt
import shlex
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from regmix.config import SamplerConfig
from regmix.corpus.store import read_meta
from regmix.sampler import SamplerError, check_n_mixtures, normalize_prior, sample_mixtures
from regmix.sweep.files import DEFAULT_DIR, SWEEP_NAME, settings_path, spec_path, table_path
from regmix.sweep.record import SweepRecord, default_target
from regmix.sweep.spec import build_sweep_spec, grid_warnings, write_sweep_spec
from regmix.sweep.table import write_mixtures_table


@dataclass
class SampleOutputs:
    """What `sample_sweep` wrote, and the commands that use it."""

    table: Path
    settings: Path
    spec: Path
    n_mixtures: int
    stats: dict
    warnings: list[str] = field(default_factory=list)
    local_command: str = ""
    wandb_command: str = ""


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
    if not SWEEP_NAME.match(sweep or ""):
        raise SamplerError(f"sweep={sweep!r} is not a usable name; use letters, digits, '_', '-', '.' (e.g. sweep=pile_1m)")
    out = Path(out_dir)
    table_file, settings_file, spec_file = table_path(out, sweep), settings_path(out, sweep), spec_path(out, sweep)
    if table_file.exists() and not overwrite:
        raise SamplerError(
            f"{table_file} already exists and runs may depend on it; pass overwrite=true to replace it "
            "or pick another sweep= name"
        )
    meta = read_meta(data_dir)
    domains = meta.train_domains
    if not domains:
        raise SamplerError(f"corpus {meta.name!r} at {data_dir} has no train domains; prepare it with some")
    prior = normalize_prior(settings.prior if settings.prior else meta.token_prior(), domains)
    target = default_target(meta, target)

    fixed = list(fixed)
    if Path(out_dir) != Path(DEFAULT_DIR) and not any(f.split("=", 1)[0] == "mixture.table" for f in fixed):
        # regmix-train reads sweeps/<sweep>.mixtures.csv by default: point it at this table.
        fixed.append(f"mixture.table={table_file.as_posix()}")
    # Built (and its fixed items checked) before sampling, so a bad item fails fast.
    spec = build_sweep_spec(sweep=sweep, n_mixtures=n_mixtures, fixed=fixed, target=target)

    table = sample_mixtures(prior, n_mixtures, seed=seed, settings=settings)
    stats = dict(table.attrs.get("sampler_stats", {}))
    table_sha = write_mixtures_table(table_file, table)
    SweepRecord(
        sweep=sweep,
        n_mixtures=int(n_mixtures),
        seed=int(seed),
        sampler=asdict(settings),
        prior=prior,
        domains=list(domains),
        corpus=meta.identity(data_dir),
        target=target,
        stats=stats,
        table=table_file.name,
        table_sha256=table_sha,
        spec=spec_file.name,
        created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    ).write(settings_file)
    write_sweep_spec(spec_file, spec)

    local = ["regmix-train", "-m", f"sweep={sweep}", f"mixture.index=range(0,{n_mixtures})", *fixed]
    return SampleOutputs(
        table=table_file,
        settings=settings_file,
        spec=spec_file,
        n_mixtures=int(n_mixtures),
        stats=stats,
        warnings=grid_warnings(spec),
        local_command=shlex.join(local),
        wandb_command=shlex.join(["wandb", "sweep", spec_file.as_posix()]),
    )
