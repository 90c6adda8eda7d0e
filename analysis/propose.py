"""`run_propose`: the finished runs of one or more sweeps -> the next sweep of `k` mixtures.

An active round: the runs are read and validated as `regmix-fit` reads them (several sweeps
merged, runs counted per round), a bagged ensemble of the paper's regressor is fitted on them,
every candidate (a given pool, or RegMix generator draws within the fit's constraints) is
predicted by every member, and `analysis.acquisition` picks the batch. The batch is written
through `regmix.sweep.write.write_sweep`, exactly like `regmix-sample`'s output, plus its
parents (sweeps, runs, the runs table's hash, the acquisition and the seed), so `regmix-train
-m`, `regmix-sweep` and `wandb agent` run it unchanged. Everything is checked before the first
file is written: a bad input writes nothing.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.acquisition import ACQUISITIONS, Batch, check_acquisition, select_batch
from analysis.candidates import candidate_space
from analysis.ensemble import BaggedRegressor
from analysis.errors import AnalysisError
from analysis.pool import draw_candidates, read_pool, untrained
from analysis.propose_config import ProposeAppConfig
from analysis.regressors import REGRESSORS, build_regressor
from analysis.round_target import resolve_target, round_records
from analysis.rounds import check_rounds_used, sweep_names
from analysis.runs_table import DropReport, RunsTable, check_usable, logged_keys, validate_runs
from analysis.sources import load_runs
from analysis.target import Target
from regmix.sampler import INDEX_COLUMN
from regmix.sweep.files import spec_path
from regmix.sweep.record import SweepRecord
from regmix.sweep.spec import read_sweep_spec
from regmix.sweep.write import SampleOutputs, check_sweep_name, check_table_free, write_sweep

#: The item of a sweep spec's command after the fixed items (regmix.sweep.spec.TRACKER_ITEM).
_TRACKER_PREFIX = "tracker="


@dataclass
class ProposeResult:
    """What `regmix-propose` wrote and why: the sweep files, the batch, the runs it learned from."""

    outputs: SampleOutputs
    table: pd.DataFrame
    """The proposed mixtures: `index`, then one weight column per domain."""
    predicted: pd.DataFrame
    """Per proposal: the members' mean and sd of the target loss (and the pool row in pool mode)."""
    target: Target
    runs: RunsTable
    drops: DropReport
    n_candidates: int
    best_observed: float
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def _fixed(cfg: ProposeAppConfig, names: list[str]) -> list[str]:
    """The new sweep's fixed items: as given, else the first parent spec's (its own table item dropped)."""
    if cfg.fixed is not None:
        return list(cfg.fixed)
    spec_file = spec_path(cfg.out_dir, names[0])
    if not spec_file.is_file():
        return []
    command = [str(item) for item in read_sweep_spec(spec_file).get("command") or []]
    start = f"sweep={names[0]}"
    if start not in command:
        return []
    items = []
    for item in command[command.index(start) + 1 :]:
        if item.startswith(_TRACKER_PREFIX) or item.startswith("${"):
            break
        if not item.startswith("mixture.table="):
            items.append(item)
    return items


def _check_settings(cfg: ProposeAppConfig, names: list[str]) -> None:
    a = cfg.acquisition
    if not cfg.out:
        raise AnalysisError("out= names the new sweep and is required (e.g. regmix-propose sweep=r0 out=r1 k=32)")
    check_sweep_name(cfg.out, key="out")
    if cfg.out in names:
        raise AnalysisError(f"out={cfg.out} is one of the sweeps learned from; name the new round differently (e.g. out={cfg.out}_next)")
    check_table_free(cfg.out_dir, cfg.out, cfg.overwrite, key="out")
    check_acquisition(a.kind, cfg.k, max(cfg.k, 1))  # kind and k; the pool size is checked once known
    if a.regressor not in REGRESSORS:
        raise AnalysisError(f"acquisition.regressor={a.regressor!r} is unknown; use one of {sorted(REGRESSORS)}")
    if a.n_bags < 2:
        raise AnalysisError(f"acquisition.n_bags={a.n_bags}: an ensemble needs at least 2 members (default 8)")
    if not 0 <= a.min_distance <= 2:
        raise AnalysisError(f"acquisition.min_distance={a.min_distance} is outside [0, 2] (L1 between mixtures)")
    if cfg.candidates is None and cfg.n_candidates < cfg.k:
        raise AnalysisError(f"n_candidates={cfg.n_candidates} is below k={cfg.k}; draw more candidates than you propose")


def _candidates(cfg: ProposeAppConfig, table: RunsTable, parents: dict[str, SweepRecord], domains: list[str]):
    """(weights of the untrained candidates, their pool labels or None, record of where they came from)."""
    trained = table.weights[domains].to_numpy()
    if cfg.candidates is not None:
        labels, pool = read_pool(cfg.candidates, domains, prefix=cfg.candidates_prefix)
        keep = untrained(pool, trained)
        check_acquisition(cfg.acquisition.kind, cfg.k, len(keep), what=f"rows of candidates={cfg.candidates}")
        digest = hashlib.sha256(Path(cfg.candidates).read_bytes()).hexdigest()
        record = {"mode": "pool", "path": str(cfg.candidates), "sha256": digest, "rows": int(len(pool)),
                  "untrained": int(len(keep))}
        return pool[keep], labels[keep], record
    prior = cfg.simulation.prior or cfg.simulation.sampler.prior or table.prior
    if not prior:
        prior = next((p.prior for p in parents.values() if p.prior), None)
    if not prior:
        raise AnalysisError("no token prior for the candidates: set simulation.prior={domain: share} (or candidates=<csv>)")
    space = candidate_space(domains, {d: prior.get(d, 0.0) for d in domains}, cfg.simulation.sampler,
                            caps=cfg.simulation.caps, minimums=cfg.simulation.minimums)
    drawn = draw_candidates(space, cfg.n_candidates, seed=cfg.seed, decimals=cfg.weight_decimals)
    keep = untrained(drawn, trained)
    check_acquisition(cfg.acquisition.kind, cfg.k, len(keep), what="drawn candidates")
    record = {"mode": "generator", "n_candidates": int(cfg.n_candidates), "untrained": int(len(keep)),
              "sampler": asdict(cfg.simulation.sampler), "prior": space.prior_dict(),
              "caps": cfg.simulation.caps, "minimums": cfg.simulation.minimums}
    return drawn[keep], None, record


def _metric(target: Target, raw) -> str | None:
    """The W&B summary key of a single-key target that is not a domain's loss (a domain's loss is
    `val/<domain>/loss`, which `write_sweep` names itself); None otherwise."""
    key = target.domains[0]
    if len(target.domains) > 1 or (key in raw.losses.columns and not target.maximize):
        return None
    return key


def ensemble_for(cfg: ProposeAppConfig, n_runs: int) -> BaggedRegressor:
    """The bagged ensemble of `acquisition.regressor` (hyperparameters from `regressor.*`)."""
    a = cfg.acquisition
    member = build_regressor(a.regressor, cfg.regressor, seed=cfg.seed, predict_threads=1)
    return BaggedRegressor(member, n_bags=a.n_bags, bootstrap=True, random_state=cfg.seed)


def predict_members(ensemble: BaggedRegressor, weights: np.ndarray, chunk_rows: int) -> np.ndarray:
    """Every member's prediction of every candidate (n_bags x n), a chunk of rows at a time."""
    parts = [ensemble.predict_members(weights[i : i + chunk_rows]) for i in range(0, len(weights), chunk_rows)]
    return np.concatenate(parts, axis=1)


def run_propose(cfg: ProposeAppConfig, *, command: str | None = None) -> ProposeResult:
    """Propose the next round for `cfg` and write it as sweep `cfg.out` (see the module doc).

    Raises `AnalysisError` (a ValueError) for input it cannot use; then nothing is written.
    """
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    names = sweep_names(cfg.sweep)
    _check_settings(cfg, names)
    raw = load_runs(cfg.source, sweeps=names, runs_dir=cfg.runs_dir)
    check_usable(raw)
    parents = round_records(names, cfg.out_dir)
    target = resolve_target(cfg.target, goal=cfg.target_goal, records=parents, available=logged_keys(raw),
                            sweeps_dir=cfg.out_dir)
    table, drops = validate_runs(raw, required_losses=target.domains, allow_mixed=cfg.allow_mixed, goal=target.goal)
    check_rounds_used(names, raw, drops)
    recorded_domains = next((p.domains for p in parents.values() if p.domains), None)
    domains = list(recorded_domains) if recorded_domains and set(recorded_domains) == set(table.domains) else table.domains
    candidates, labels, origin = _candidates(cfg, table, parents, domains)
    fixed = _fixed(cfg, names)
    timings["load_s"] = time.perf_counter() - clock

    clock = time.perf_counter()
    y = target.loss(table.losses)  # lower is better (negated for a maximised target)
    ensemble = ensemble_for(cfg, len(table)).fit(table.weights[domains], y)
    members = predict_members(ensemble, candidates, cfg.acquisition.chunk_rows)
    a = cfg.acquisition
    batch: Batch = select_batch(
        members, candidates, cfg.k, kind=a.kind, seed=cfg.seed, kappa=a.kappa, concentration=a.concentration,
        min_distance=a.min_distance, trained=table.weights[domains].to_numpy(),
    )
    timings["acquire_s"] = time.perf_counter() - clock

    proposal = pd.DataFrame(candidates[batch.picks], columns=domains)
    proposal.insert(0, INDEX_COLUMN, np.arange(len(proposal), dtype=np.int64))
    best_observed = float(target.user(np.min(y)))  # the record and the summary speak the target's units
    predicted = pd.DataFrame({"mean": target.user(batch.mean), "sd": batch.sd}, index=proposal[INDEX_COLUMN])
    if labels is not None:
        predicted["pool_row"] = labels[batch.picks]
    first = parents.get(names[0])
    record = {
        "seed": int(cfg.seed),
        "sampler": (first.sampler if first else None) or None,
        "prior": (first.prior if first else None) or (origin.get("prior") if origin["mode"] == "generator" else None),
        "domains": domains,
        "corpus": (first.corpus if first else None) or {"content_hash": (table.identity("corpus") or [None])[0]},
        "parents": {
            "sweeps": names,
            "source": cfg.source.label or cfg.source.kind,
            "location": raw.location,
            "runs": [str(i) for i in table.weights.index],
            "n_runs": int(len(table)),
            "runs_per_round": drops.rounds,
            "runs_table_sha256": table.sha256(),
            "command": command,
        },
        "acquisition": {**asdict(a), "ensemble": f"{a.n_bags} bootstrap bags of {a.regressor}",
                        "min_distance_used": batch.min_distance},
        "candidates": origin,
        "predicted": {"best_observed": best_observed, "mean": predicted["mean"].tolist(), "sd": batch.sd.tolist()},
    }
    # The target as named (one key, or the weights): the next round reads it back (round_target).
    outputs = write_sweep(proposal, sweep=cfg.out, record=record, out_dir=cfg.out_dir, fixed=fixed,
                          target=target.recorded, target_goal=target.goal, metric=_metric(target, raw),
                          overwrite=cfg.overwrite, key="out")
    return ProposeResult(
        outputs=outputs,
        table=proposal,
        predicted=predicted,
        target=target,
        runs=table,
        drops=drops,
        n_candidates=len(candidates),
        best_observed=best_observed,
        notes=batch.notes,
        timings=timings,
    )


def summary_text(result: ProposeResult) -> str:
    """What `regmix-propose` prints: the runs used (per round), the batch, the files and commands."""
    out = list(result.drops.lines())
    p = result.predicted
    out.append(
        f"proposed {len(result.table)} of {result.n_candidates} candidates for {result.target.label}"
        f"{' (higher is better)' if result.target.maximize else ''}: "
        f"predicted {p['mean'].min():.4f}..{p['mean'].max():.4f} (sd up to {p['sd'].max():.4f}); "
        f"best trained run {result.best_observed:.4f}"
    )
    out.extend(f"note: {n}" for n in result.notes)
    o = result.outputs
    out += [f"wrote {o.table}", f"wrote {o.settings}", f"wrote {o.spec}"]
    out.extend(f"warning: {w}" for w in o.warnings)
    out.append(f"local sweep:  {o.local_command}   (add hydra/launcher=cpu for one job per CPU core)")
    out.append(f"W&B sweep:    {o.wandb_command}   (or regmix-sweep sweep={o.table.name.split('.')[0]})")
    return "\n".join(out)


__all__ = ["ACQUISITIONS", "ProposeResult", "run_propose", "summary_text"]
