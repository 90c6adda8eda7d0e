"""`run_demo`: the whole loop, stage by stage, resumable."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from scipy.stats import spearmanr

from analysis.fit import FitResult, run_fit
from regmix.corpus.prepare import prepare_corpus
from regmix.demo.config import DemoConfig
from regmix.demo.pipeline import (
    Job, elapsed, pick_target, rank_check_indices, stage, target_loss, train_many,
)
from regmix.demo.report import DemoOutcome, write_report
from regmix.mixture import Mixture
from regmix.sweep.files import settings_path
from regmix.sweep.record import SweepRecord
from regmix.sweep.sample import sample_sweep
from regmix.sweep.table import mixtures_from_table, read_mixtures_table


def _check_reused_table(table_path: Path, cfg: DemoConfig) -> None:
    """A rerun reuses the sampled table only when it was sampled as this run asks: another
    sample_seed or sampler must not quietly train on (and report) the old table."""
    from dataclasses import asdict

    record = SweepRecord.read(settings_path(table_path.parent, cfg.sweep))
    recorded = {"seed": record.seed, "sampler": record.sampler} if record else {}
    asked = {"seed": cfg.sample_seed, "sampler": asdict(cfg.sampler)}
    differ = [key for key, value in asked.items() if recorded.get(key) != json.loads(json.dumps(value))]
    if differ:
        was = f"sample_seed={recorded.get('seed')}" if "seed" in differ else "other sampler settings"
        raise ValueError(
            f"{table_path} was sampled with {was} (this run asks for sample_seed={cfg.sample_seed}); its "
            "proxies belong to that table: use another out_dir=... for a new sample"
        )


def run_demo(cfg: DemoConfig) -> DemoOutcome:
    start = time.perf_counter()
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    stage("1/6 prepare the synthetic corpus")
    meta = prepare_corpus(cfg.data)
    domains = meta.train_domains
    target = pick_target(cfg, meta)
    print(f"{len(domains)} train domains, target {target!r}" + (f" = {meta.target_blend[target]}" if target in meta.target_blend else ""))

    stage(f"2/6 sample {cfg.n_mixtures} mixtures (RegMix generator, seed {cfg.sample_seed})")
    table_path = out / "sweeps" / f"{cfg.sweep}.mixtures.csv"
    if table_path.exists():
        _check_reused_table(table_path, cfg)
        print(f"{table_path} exists (seed {cfg.sample_seed}): reusing it")
    else:
        sample_sweep(data_dir=cfg.data.dir, sweep=cfg.sweep, n_mixtures=cfg.n_mixtures, seed=cfg.sample_seed,
                     settings=cfg.sampler, out_dir=str(out / "sweeps"), target=target)
    table = read_mixtures_table(table_path, domains)
    if len(table) != cfg.n_mixtures:
        raise ValueError(f"{table_path} has {len(table)} mixtures but n_mixtures={cfg.n_mixtures}; "
                         f"use another out_dir or delete {table_path}")
    proxies = [Job("proxy", mixture, "proxy", index=int(index))
               for index, mixture in zip(table["index"], mixtures_from_table(table))]

    stage(f"3/6 train {len(proxies)} proxies ({cfg.proxy_model.name}, {cfg.proxy_train.tokens:,} tokens each)")
    proxy_records = train_many(cfg, proxies, "proxies")
    print(f"done ({elapsed(start)} so far)")

    stage("4/6 fit and compare regressors, simulate, emit the mixture")
    floors = {d: cfg.domain_floor for d in domains} if cfg.domain_floor > 0 else {}
    simulation = replace(cfg.fit.simulation, minimums={**floors, **(cfg.fit.simulation.minimums or {})})
    fit_cfg = replace(cfg.fit, target=target, overwrite=True, simulation=simulation)
    fit: FitResult = run_fit(fit_cfg, command="regmix-demo")
    print(fit.comparison.round(4).to_string())
    print(f"driving regressor: {fit.drive} ({fit.drive_reason})")
    print(f"emitted {fit.emitted}: {fit.mixture}")

    stage("5/6 train at target scale (emitted, prior, uniform, best proxy, seed noise, rank check)")
    prior = Mixture(meta.token_prior(), domains=domains)
    uniform = Mixture.uniform(domains)
    by_index = {job.index: job for job in proxies}
    proxy_loss = {job.index: target_loss(record, target) for job, record in zip(proxies, proxy_records)}
    best_index = min(proxy_loss, key=proxy_loss.get)
    named = {"emitted": fit.mixture, "prior": prior, "uniform": uniform, "best_proxy": by_index[best_index].mixture}
    checks = rank_check_indices(proxy_loss, cfg.n_rank_check)
    target_jobs = [Job(label, m, "target") for label, m in named.items()]
    target_jobs.append(Job("emitted", fit.mixture, "target", seed=cfg.noise_seed))
    target_jobs += [Job(f"proxy{i}", by_index[i].mixture, "target") for i in checks]
    # Proxy-scale losses of the named mixtures that were not proxies, for the rank check.
    check_jobs = [Job(label, named[label], "proxy_check") for label in ("emitted", "prior", "uniform")]
    records = train_many(cfg, target_jobs + check_jobs, "target-scale runs")

    stage("6/6 report")
    at_target = {
        job.label + (f" (seed {job.seed})" if job.seed else ""): target_loss(record, target)
        for job, record in zip(target_jobs, records)
    }
    at_proxy = {job.label: target_loss(record, target) for job, record in zip(check_jobs, records[len(target_jobs):])}
    at_proxy["best_proxy"] = proxy_loss[best_index]
    at_proxy.update({f"proxy{i}": proxy_loss[i] for i in checks})
    common = [k for k in at_proxy if k in at_target]
    rho = float(spearmanr([at_proxy[k] for k in common], [at_target[k] for k in common]).statistic) if len(common) > 2 else float("nan")
    outcome = DemoOutcome(
        target=target,
        blend=meta.target_blend.get(target, {}),
        mixtures={**named, **{f"proxy{i}": by_index[i].mixture for i in checks}},
        at_target=at_target,
        at_proxy=at_proxy,
        noise=abs(at_target["emitted"] - at_target[f"emitted (seed {cfg.noise_seed})"]),
        rank_spearman=rho,
        fit=fit,
        n_proxies=len(proxy_records),
        wall_s=time.perf_counter() - start,
        out_dir=out,
        proxy_model=cfg.proxy_model.name,
        target_model=cfg.target_model.name,
        proxy_tokens=cfg.proxy_train.tokens,
        target_tokens=cfg.target_train.tokens,
        domain_floor=cfg.domain_floor,
    )
    report = write_report(outcome)
    print(outcome.summary())
    print(f"\nreport: {report}\nW&B offline runs: wandb sync {out}/*/*/wandb/offline-run-* {out}/fit/wandb/offline-run-*")
    return outcome

