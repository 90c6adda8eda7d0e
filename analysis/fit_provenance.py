"""What the emitted mixture records about how it was made: a typed record, written as the
`provenance:` block of conf/mixture/<out>.yaml (the keys and their order are the file's format)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field, fields

import pandas as pd

from analysis.config import FitAppConfig, SourceConfig
from analysis.fit_choose import Choice
from analysis.fit_decide import Decision
from analysis.fit_load import LoadedRuns
from analysis.fit_model import Models
from analysis.rounds import joined_name


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(kw_only=True)
class Provenance:
    """The provenance block: runs, target, regressor, predictions, simulation, uncertainty."""

    made_by: str = "regmix-fit"
    created_at: str = field(default_factory=_now)
    """UTC, ISO 8601 to the second."""
    command: str | None
    """The command line as typed (None when called from Python)."""
    runs: dict
    """Count, read, dropped, merged, source, location, sweep, table sha256, the setup identity and
    the runs the fit cannot explain."""
    test_runs: dict | None
    target: dict
    regressor: dict
    """The driving regressor: name, why, params, folds, out-of-fold and test scores."""
    compared: dict
    predicted_loss: dict
    predicted_by_each_regressor: dict
    nearest_run_l1: float
    simulation: dict
    constraints: dict
    uncertainty: dict

    def as_dict(self) -> dict:
        """Plain data in field order (the order the YAML file shows)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def constraints_record(cfg: FitAppConfig, runs: LoadedRuns, choice: Choice) -> dict:
    """Minimums, caps, token budget and penalties the choice respected."""
    space, c, s = runs.space, cfg.choice, cfg.simulation
    return {
        "minimums": {d: float(v) for d, v in zip(space.domains, space.lower) if v > 0},
        "caps": {d: float(v) for d, v in zip(space.domains, space.upper) if v < 1.0},
        "cap_multiplier": s.sampler.cap_multiplier,
        "token_budget": (
            {"tokens": s.token_budget, "max_epochs": s.max_epochs, "caps": runs.budget_caps}
            if runs.budget_caps is not None else None
        ),
        "l1_penalty": c.l1_penalty,
        "kl_penalty": c.kl_penalty,
        "trust_radius_l1": choice.stats.get("trust_radius_l1"),
    }


def uncertainty_record(cfg: FitAppConfig, models: Models, choice: Choice, decision: Decision) -> dict:
    """Status, weak reasons, evidence, intervals, the trust region and the measured calibration."""
    calibration = models.calibration
    d = decision
    return {
        "status": d.status.value,
        "status_line": d.status_line,
        "weak_evidence": d.weak,
        "members": len(models.predictive.fold_models),
        "residual_scale": models.predictive.scale,
        # applied: the intervals and P(beats) use a trend (asked for, and the runs show one).
        "noise_by_level": {**models.noise_trend.as_dict(),
                           "applied": models.predictive.by_level and not models.predictive.noise.flat},
        "choice": {k: v for k, v in choice.stats.items() if k != "trust_note"},
        "trust": d.trust,
        "emitted": d.emitted_evidence.as_dict(),
        "simulated_choice": d.simulated_evidence.as_dict() if d.emitted_evidence is not d.simulated_evidence else None,
        "intervals": {k: {"low": v[0], "mean": v[1], "high": v[2]} for k, v in d.intervals.items()},
        "calibration": calibration.as_dict() if calibration else None,
        "interval_coverage": calibration.coverage.get(cfg.choice.coverage, float("nan")) if calibration else float("nan"),
    }


def provenance(cfg: FitAppConfig, command: str | None, runs: LoadedRuns, models: Models, choice: Choice,
               decision: Decision) -> Provenance:
    """The provenance of this fit's mixture."""
    row = models.comparison.table.loc[models.drive]
    return Provenance(
        command=command,
        runs=_runs_record(cfg, runs, models),
        test_runs=(
            {"count": len(runs.test_table), "label": runs.test_table.source, "table_sha256": runs.test_table.sha256()}
            if runs.test_table is not None else None
        ),
        target={"label": runs.target.label, "weights": runs.target.weights, "goal": runs.target.goal},
        regressor={
            "name": models.drive,
            "why": models.why,
            "params": {k: v for k, v in models.model.get_params().items() if k != "predict_threads"},
            "folds": models.comparison.folds,
            "oof": _scores(row, "oof_"),
            "test": _scores(row, "test_") or None,
        },
        compared={name: _scores(r, "oof_") for name, r in models.comparison.table.iterrows()},
        predicted_loss={**decision.predicted, "best_run_actual": decision.best_run["loss"],
                        "best_run_id": decision.best_run["id"]},
        predicted_by_each_regressor=decision.cross_check,
        nearest_run_l1=decision.nearest,
        simulation=_simulation_record(cfg, runs, choice),
        constraints=constraints_record(cfg, runs, choice),
        uncertainty=uncertainty_record(cfg, models, choice, decision),
    )


def _runs_record(cfg: FitAppConfig, runs: LoadedRuns, models: Models) -> dict:
    table, drops = runs.table, runs.drops
    return {
        "count": len(table),
        "read": drops.total,
        "dropped": len(drops.dropped),
        "merged_duplicates": sum(len(g) - 1 for g in drops.merged),
        "source": cfg.source.kind,
        "label": table.source,
        "location": runs.raw.location,
        "sweep": _sweep_id(cfg.source, cfg.sweep),
        "table_sha256": table.sha256(),
        "model": table.identity("model"),
        "corpus": table.identity("corpus"),
        "tokens": table.identity("tokens"),
        "setup": table.identity("setup"),
        # Runs far from what their mixtures predict out of fold (analysis.run_outliers), in the
        # target's own units: check their logs. null: too few runs (or no spread) to tell.
        "outliers": None if models.outliers is None else [o.as_dict() for o in models.outliers],
    }


def _simulation_record(cfg: FitAppConfig, runs: LoadedRuns, choice: Choice) -> dict:
    stats = choice.sim.stats
    sampler = asdict(cfg.simulation.sampler)
    sampler.pop("prior", None)
    settings = {k: stats[k] for k in ("n_candidates", "top_k", "aggregate") if k in stats}
    settings.update(
        seed=cfg.simulation.seed,
        drawn=stats.get("drawn"),
        screen=(
            {k: stats.get(k) for k in ("screen_keep", "screen_pool", "rescored", "screen_converged")}
            if stats.get("screened")
            else None
        ),
        sampler=sampler,
        prior=runs.space.prior_dict(),
    )
    return settings


def _sweep_id(cfg: SourceConfig, sweep) -> str | None:
    if cfg.kind == "wandb":
        group = cfg.wandb.group
        return cfg.wandb.sweep or (group if isinstance(group, str) or group is None else "+".join(group))
    return joined_name(sweep) if cfg.kind == "local" else (cfg.label or cfg.kind)


def _scores(row: pd.Series, prefix: str) -> dict[str, float]:
    return {k[len(prefix) :]: float(v) for k, v in row.items() if k.startswith(prefix)}
