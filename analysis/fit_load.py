"""The fit's first stage: read the runs, check the settings and the target, validate the
tables, and lay out the candidate space; everything a later stage could fail on is checked here,
before the slow steps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.budget import epoch_caps, merge_caps
from analysis.candidates import CandidateSpace, candidate_space
from analysis.config import FitAppConfig
from analysis.emit import check_free, mixture_path
from analysis.errors import AnalysisError
from analysis.regressors import REGRESSORS
from analysis.report import previous_report
from analysis.rounds import check_rounds_used, sweep_names
from analysis.runs_table import DropReport, RawRuns, RunsTable, check_usable, logged_keys, validate_runs
from analysis.simulate import AGGREGATES
from analysis.sources import load_runs
from analysis.round_target import resolve_target, round_records
from analysis.target import Target

#: Objectives of `choice.objective`: the members' upper quantile, their mean, or the driving
#: regressor fitted on all runs (the paper's recipe).
OBJECTIVES = ("upper", "mean", "driver")


@dataclass
class LoadedRuns:
    """What the load stage hands on: the validated runs, the target, where the outputs go."""

    raw: RawRuns
    table: RunsTable
    drops: DropReport
    target: Target
    out: str
    """Name of the emitted mixture."""
    path: Path
    """Where the mixture config is written."""
    report_dir: Path
    space: CandidateSpace
    budget_caps: dict[str, float] | None = None
    """Caps a token budget imposes (None without `simulation.token_budget`)."""
    test_table: RunsTable | None = None
    test_drops: DropReport | None = None

    @property
    def domains(self) -> list[str]:
        return self.table.domains

    @property
    def X(self) -> pd.DataFrame:
        return self.table.weights

    @property
    def y(self) -> np.ndarray:
        """What the fit minimises per run (`Target.loss`: negated for a maximised target)."""
        return self.target.loss(self.table.losses)

    @property
    def X_test(self) -> pd.DataFrame | None:
        return self.test_table.weights[self.domains] if self.test_table is not None else None

    @property
    def y_test(self) -> np.ndarray | None:
        return self.target.loss(self.test_table.losses) if self.test_table is not None else None


def load_stage(cfg: FitAppConfig, warnings: list[str]) -> LoadedRuns:
    """Read and check everything; sets `cfg.report_dir` (the tracker writes there too)."""
    raw = load_runs(cfg.source, sweeps=sweep_names(cfg.sweep), runs_dir=cfg.runs_dir)
    check_usable(raw)  # empty / unreadable / unfinished: say so before anything about the target
    target = resolve_target(cfg.target, goal=cfg.target_goal, sweeps_dir=cfg.sweeps_dir,
                            records=round_records(sweep_names(cfg.sweep), cfg.sweeps_dir), available=logged_keys(raw))
    out = cfg.out or f"{cfg.name}_{target.slug}"
    path = mixture_path(out, cfg.mixture_dir)
    check_free(path, cfg.overwrite)
    report_dir = Path(cfg.report_dir) if cfg.report_dir else Path("reports") / out
    replaced = previous_report(report_dir, out)
    if replaced is not None:  # only with an explicit report_dir: the default is one folder per mixture
        warnings.append(
            f"{report_dir} held the report of mixture {replaced!r}, replaced by this one's; "
            "leave report_dir unset (reports/<out>/) to keep one report per mixture"
        )
    cfg.report_dir = str(report_dir)  # the tracker's files go there too
    _check_folder(report_dir, "report_dir")
    _check_folder(path.parent, "mixture_dir")
    check_settings(cfg)

    table, drops = validate_runs(raw, required_losses=target.domains, allow_mixed=cfg.allow_mixed, goal=target.goal)
    check_rounds_used(sweep_names(cfg.sweep), raw, drops)
    test_table = test_drops = None
    if cfg.test.kind != "none":
        test_table, test_drops = _load_test(cfg, target, table.domains, raw.location)
    space, budget_caps = _space(cfg, table, warnings)
    return LoadedRuns(raw, table, drops, target, out, path, report_dir, space, budget_caps, test_table, test_drops)


def _check_folder(folder: Path, key: str) -> None:
    """A folder the fit writes into, refused before the slow steps when a file stands in its way."""
    for place in (folder, *folder.parents):
        if place.exists():
            if not place.is_dir():
                raise AnalysisError(f"{key}: {place} is a file, not a folder; set {key}=<a folder> (or move the file)")
            return


def _load_test(cfg: FitAppConfig, target: Target, domains: list[str], train_location: str) -> tuple[RunsTable, DropReport]:
    raw = load_runs(cfg.test)
    if raw.location == train_location:
        raise AnalysisError(f"the test source is the training source ({raw.location}); point test.root / test.mixtures at held-out runs")
    missing = [d for d in target.domains if d not in logged_keys(raw)]
    if missing:
        raise AnalysisError(f"the test runs ({raw.location}) logged no value for target key(s) {missing}")
    table, drops = validate_runs(raw, required_losses=target.domains, allow_mixed=cfg.allow_mixed, min_runs=2,
                                 goal=target.goal)
    if set(table.domains) != set(domains):
        only_train = sorted(set(domains) - set(table.domains))
        only_test = sorted(set(table.domains) - set(domains))
        raise AnalysisError(
            f"the test runs name other domains than the training runs: only in training {only_train}, "
            f"only in test {only_test}; use runs of the same corpus (or fix the column mapping/rename)"
        )
    return table, drops


def _space(cfg: FitAppConfig, table: RunsTable, warnings: list[str]) -> tuple[CandidateSpace, dict | None]:
    """The candidate space (prior, caps, minimums) and the caps a token budget adds."""
    caps, budget_caps = cfg.simulation.caps, None
    if cfg.simulation.token_budget is not None:
        budget_caps = epoch_caps(
            table.domains,
            cfg.simulation.domain_tokens or _recorded_tokens(table),
            budget=float(cfg.simulation.token_budget),
            max_epochs=float(cfg.simulation.max_epochs),
        )
        caps = merge_caps(caps, budget_caps)
    space = candidate_space(
        table.domains,
        _prior(cfg, table, warnings),
        cfg.simulation.sampler,
        caps=caps,
        minimums=cfg.simulation.minimums,
    )
    return space, budget_caps


def _prior(cfg: FitAppConfig, table: RunsTable, warnings: list[str]) -> dict[str, float]:
    if cfg.simulation.prior:
        return dict(cfg.simulation.prior)
    if cfg.simulation.sampler.prior:
        return dict(cfg.simulation.sampler.prior)
    if table.prior:
        return {d: table.prior.get(d, 0.0) for d in table.domains}
    warnings.append(
        "the runs carry no token prior: candidates are drawn around a uniform prior "
        "(set simulation.prior={domain: share} for RegMix's token prior)"
    )
    return {d: 1.0 for d in table.domains}


def _recorded_tokens(table: RunsTable) -> dict[str, float] | None:
    """Token counts the runs recorded (local records: the corpus meta); None for shares only."""
    prior = table.prior or {}
    return dict(prior) if prior and sum(prior.values()) > 1.5 else None


def check_settings(cfg: FitAppConfig) -> None:
    """Settings that would otherwise fail after the slow steps."""
    r, sim = cfg.regressor, cfg.simulation
    unknown = [n for n in r.compare if n not in REGRESSORS]
    if unknown or not r.compare:
        raise AnalysisError(f"regressor.compare={list(r.compare)}: use some of {sorted(REGRESSORS)}")
    if r.drive not in ("auto", "best_oof", "rule", *r.compare):
        raise AnalysisError(f"regressor.drive={r.drive!r}: use auto, best_oof, rule or one of regressor.compare={list(r.compare)}")
    if r.folds < 2:
        raise AnalysisError(f"regressor.folds={r.folds} is too few: use at least 2 (default 5)")
    if sim.aggregate not in AGGREGATES:
        raise AnalysisError(f"simulation.aggregate={sim.aggregate!r} is unknown; use one of {list(AGGREGATES)}")
    if not 1 <= sim.top_k <= sim.n_candidates:
        raise AnalysisError(f"simulation.top_k={sim.top_k} must be between 1 and n_candidates={sim.n_candidates}")
    c = cfg.choice
    if c.objective not in OBJECTIVES:
        raise AnalysisError(f"choice.objective={c.objective!r} is unknown; use one of {list(OBJECTIVES)}")
    for name, value in (("quantile", c.quantile), ("coverage", c.coverage), ("min_probability", c.min_probability)):
        if not 0 < value < 1:
            raise AnalysisError(f"choice.{name}={value} must be between 0 and 1")
    if c.l1_penalty < 0 or c.kl_penalty < 0:
        raise AnalysisError("choice.l1_penalty and choice.kl_penalty must be >= 0 (nats per unit of distance)")
    if c.around_runs < 0:
        raise AnalysisError(f"choice.around_runs={c.around_runs} must be >= 0 (candidates drawn around the best runs)")
    if not 1 <= cfg.weight_decimals <= 9:
        raise AnalysisError(f"weight_decimals={cfg.weight_decimals} is invalid; use 1-9 (4 = a 1e-4 grid)")
