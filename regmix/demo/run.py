"""`run_demo`: the whole loop, stage by stage, resumable."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from scipy.stats import spearmanr

from analysis.config import SourceConfig
from analysis.fit import FitResult, run_fit
from analysis.propose import run_propose
from analysis.propose_config import ProposeAppConfig
from regmix.corpus.prepare import prepare_corpus
from regmix.demo.config import DemoConfig
from regmix.demo.pipeline import (
    Job, elapsed, pick_target, pooled_noise, rank_check_indices, stage, target_loss, train_many,
)
from regmix.demo.report import DemoOutcome, RoundOutcome, write_report
from regmix.mixture import Mixture
from regmix.sweep.files import settings_path
from regmix.sweep.record import SweepRecord
from regmix.sweep.sample import sample_sweep
from regmix.sweep.table import mixtures_from_table, read_mixtures_table
from regmix.errors import RegmixError


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
        raise RegmixError(
            f"{table_path} was sampled with {was} (this run asks for sample_seed={cfg.sample_seed}); its "
            "proxies belong to that table: use another out_dir=... for a new sample"
        )


def _proxy_jobs(table_path: Path, domains: list[str], sweep: str) -> list[Job]:
    table = read_mixtures_table(table_path, domains)
    return [Job("proxy", mixture, "proxy", index=int(index), sweep=sweep)
            for index, mixture in zip(table["index"], mixtures_from_table(table))]


def _simulation(cfg: DemoConfig, domains: list[str]):
    """The fit's candidate space with the opt-in `domain_floor` as per-domain minimums."""
    floors = {d: cfg.domain_floor for d in domains} if cfg.domain_floor > 0 else {}
    return replace(cfg.fit.simulation, minimums={**floors, **(cfg.fit.simulation.minimums or {})})


def _fit(cfg: DemoConfig, target: str, domains: list[str], sweeps: list[str], out_name: str, report_dir: str) -> FitResult:
    simulation = _simulation(cfg, domains)
    name = "-".join(sweeps)
    fit_cfg = replace(cfg.fit, sweep=sweeps if len(sweeps) > 1 else sweeps[0], name=name, target=target,
                      overwrite=True, simulation=simulation, out=out_name, report_dir=report_dir)
    fit = run_fit(fit_cfg, command="regmix-demo")
    print(fit.comparison.round(4).to_string())
    print(f"driving regressor: {fit.drive} ({fit.drive_reason})")
    print(fit.status_line)
    print(f"emitted {fit.emitted} (predicted {fit.predicted['chosen']:.4f}): {fit.mixture}")
    return fit


def _propose_round(cfg: DemoConfig, target: str, domains: list[str], out: Path) -> Path:
    """Round 1: `run_propose` on round 0's proxies writes sweep `<sweep>_r1` beside the sampled one;
    a rerun reuses it (same runs and seed give the same proposal)."""
    name = f"{cfg.sweep}_r1"
    table_path = out / "sweeps" / f"{name}.mixtures.csv"
    if table_path.exists():
        print(f"{table_path} exists: reusing it")
        return table_path
    simulation = _simulation(cfg, domains)
    result = run_propose(
        ProposeAppConfig(
            source=SourceConfig(kind="local"), sweep=cfg.sweep, runs_dir=str(out / "proxy"), out=name,
            k=cfg.round_k, target=target, seed=cfg.round_seed, acquisition=cfg.acquisition,
            regressor=cfg.fit.regressor, simulation=simulation, out_dir=str(out / "sweeps"),
        ),
        command="regmix-demo",
    )
    p = result.predicted
    print(f"proposed {len(result.table)} mixtures ({cfg.acquisition.kind}, {cfg.acquisition.n_bags} bags of "
          f"{cfg.acquisition.regressor}): predicted {p['mean'].min():.4f}..{p['mean'].max():.4f}; "
          f"best round-0 proxy {result.best_observed:.4f}")
    return result.outputs.table


def run_demo(cfg: DemoConfig) -> DemoOutcome:
    start = time.perf_counter()
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rounds = cfg.round_k > 0
    n_stages = 8 if rounds else 6
    step = iter(range(1, n_stages + 1))

    stage(f"{next(step)}/{n_stages} prepare the synthetic corpus")
    meta = prepare_corpus(cfg.data)
    domains = meta.train_domains
    target = pick_target(cfg, meta)
    print(f"{len(domains)} train domains, target {target!r}" + (f" = {meta.target_blend[target]}" if target in meta.target_blend else ""))

    stage(f"{next(step)}/{n_stages} sample {cfg.n_mixtures} mixtures (RegMix generator, seed {cfg.sample_seed})")
    table_path = out / "sweeps" / f"{cfg.sweep}.mixtures.csv"
    if table_path.exists():
        _check_reused_table(table_path, cfg)
        print(f"{table_path} exists (seed {cfg.sample_seed}): reusing it")
    else:
        sample_sweep(data_dir=cfg.data.dir, sweep=cfg.sweep, n_mixtures=cfg.n_mixtures, seed=cfg.sample_seed,
                     settings=cfg.sampler, out_dir=str(out / "sweeps"), target=target)
    proxies = _proxy_jobs(table_path, domains, cfg.sweep)
    if len(proxies) != cfg.n_mixtures:
        raise RegmixError(f"{table_path} has {len(proxies)} mixtures but n_mixtures={cfg.n_mixtures}; "
                         f"use another out_dir or delete {table_path}")

    stage(f"{next(step)}/{n_stages} train {len(proxies)} proxies ({cfg.proxy_model.name}, {cfg.proxy_train.tokens:,} tokens each)")
    proxy_records = train_many(cfg, proxies, "proxies")
    print(f"done ({elapsed(start)} so far)")

    fit0: FitResult | None = None
    if rounds:
        stage(f"{next(step)}/{n_stages} fit round 0 ({len(proxies)} proxies), then propose {cfg.round_k} more (active round)")
        fit0 = _fit(cfg, target, domains, [cfg.sweep], f"{cfg.fit.out}_r0", f"{cfg.fit.report_dir}_r0")
        r1_table = _propose_round(cfg, target, domains, out)
        round_jobs = _proxy_jobs(r1_table, domains, f"{cfg.sweep}_r1")

        stage(f"{next(step)}/{n_stages} train the round's {len(round_jobs)} proxies")
        proxies += round_jobs
        proxy_records += train_many(cfg, round_jobs, "round-1 proxies")
        print(f"done ({elapsed(start)} so far)")

    sweeps = [cfg.sweep, f"{cfg.sweep}_r1"] if rounds else [cfg.sweep]
    stage(f"{next(step)}/{n_stages} fit {' + '.join(sweeps)} ({len(proxies)} proxies), compare regressors, emit the mixture")
    fit = _fit(cfg, target, domains, sweeps, cfg.fit.out, cfg.fit.report_dir)

    seeds = list(range(max(cfg.target_seeds, 1)))
    stage(f"{next(step)}/{n_stages} train at target scale (emitted, prior, uniform{', pre-round choice' if rounds else ''}: "
          f"{len(seeds)} seed(s) each; best proxy, rank check)")
    prior = Mixture(meta.token_prior(), domains=domains)
    uniform = Mixture.uniform(domains)
    by_key = {(job.sweep, job.index): job for job in proxies}
    proxy_loss = {(job.sweep, job.index): target_loss(record, target) for job, record in zip(proxies, proxy_records)}
    best_key = min(proxy_loss, key=proxy_loss.get)
    rivals = {"emitted": fit.mixture, "prior": prior, "uniform": uniform}
    if fit0 is not None:
        rivals["emitted before round"] = fit0.mixture
    checks = {_label(key, cfg.sweep): key for key in rank_check_indices(proxy_loss, cfg.n_rank_check)}
    named = {**rivals, "best_proxy": by_key[best_key].mixture, **{k: by_key[key].mixture for k, key in checks.items()}}
    target_jobs = [Job(label, m, "target", seed=s) for label, m in rivals.items() for s in seeds]
    target_jobs += [Job(label, named[label], "target") for label in ["best_proxy", *checks]]
    # Proxy-scale losses of the named mixtures that were not proxies, for the rank check.
    check_jobs = [Job(label, m, "proxy_check") for label, m in rivals.items()]
    records = train_many(cfg, target_jobs + check_jobs, "target-scale runs")

    stage(f"{next(step)}/{n_stages} report")
    by_seed: dict[str, list[float]] = {}
    for job, record in zip(target_jobs, records):
        by_seed.setdefault(job.label, []).append(target_loss(record, target))
    at_target = {label: float(sum(v) / len(v)) for label, v in by_seed.items()}
    at_proxy = {job.label: target_loss(record, target) for job, record in zip(check_jobs, records[len(target_jobs):])}
    at_proxy["best_proxy"] = proxy_loss[best_key]
    at_proxy.update({label: proxy_loss[key] for label, key in checks.items()})
    common = [k for k in at_proxy if k in at_target]
    rho = float(spearmanr([at_proxy[k] for k in common], [at_target[k] for k in common]).statistic) if len(common) > 2 else float("nan")
    round_outcome = None
    if fit0 is not None:
        round_outcome = RoundOutcome(before=fit0, after=fit, n_before=cfg.n_mixtures, n_after=len(proxies),
                                     acquisition=f"{cfg.acquisition.kind}, {cfg.acquisition.n_bags} bootstrap bags of "
                                                 f"{cfg.acquisition.regressor}, seed {cfg.round_seed}")
    outcome = DemoOutcome(
        target=target,
        blend=meta.target_blend.get(target, {}),
        mixtures=named,
        at_target=at_target,
        at_proxy=at_proxy,
        noise=pooled_noise(by_seed),
        rank_spearman=rho,
        fit=fit,
        n_proxies=len(proxies),
        wall_s=time.perf_counter() - start,
        out_dir=out,
        proxy_model=cfg.proxy_model.name,
        target_model=cfg.target_model.name,
        proxy_tokens=cfg.proxy_train.tokens,
        target_tokens=cfg.target_train.tokens,
        domain_floor=cfg.domain_floor,
        seed_losses=by_seed,
        round=round_outcome,
    )
    report = write_report(outcome)
    print(outcome.summary())
    print(f"\nreport: {report}\nW&B offline runs: wandb sync {out}/*/*/wandb/offline-run-* {out}/fit*/wandb/offline-run-*")
    return outcome


def _label(key: tuple[str | None, int | None], sweep: str) -> str:
    """A proxy's label in the report: proxy<index> for round 0, r1-proxy<index> for the round."""
    round_name, index = key
    return f"proxy{index}" if round_name == sweep else f"r1-proxy{index}"
