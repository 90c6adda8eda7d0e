"""`run_fit`: runs -> validated table -> compared regressors -> simulation -> emitted mixture + report.

The Hydra app (`analysis.cli`) is a thin shell over this function; the demo and the tests call
it directly with a `FitAppConfig`.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.budget import epoch_caps, merge_caps
from analysis.candidates import CandidateSpace, candidate_space
from analysis.choice import Penalized, auto_radius, choose, evidence, nearest_l1, shrink, supported_point
from analysis.compare import Comparison, choose_drive, compare_regressors, interval_coverage
from analysis.config import FitAppConfig, SourceConfig
from analysis.ensemble import BaggedRegressor
from analysis.emit import check_free, emit_mixture, mixture_path, round_weights
from analysis.report import previous_report
from analysis.errors import AnalysisError
from analysis.regressors import REGRESSORS, build_regressor, build_screen, is_linear
from analysis.regressors.base import prediction_threads
from analysis.rounds import joined_name, sweep_names
from analysis.runs_table import DropReport, RawRuns, RunsTable, check_usable, validate_runs
from analysis.simulate import AGGREGATES, SimulationResult, simulate
from analysis.sources import load_runs
from analysis.target import Target, parse_target
from analysis.result import FitResult
from analysis.tracking import FitTracking
from regmix.mixture import Mixture


#: Objectives of `choice.objective`: the members' upper quantile, their mean, or the driving
#: regressor fitted on all runs (the paper's recipe).
OBJECTIVES = ("upper", "mean", "driver")


def _logged(raw: RawRuns) -> list[str]:
    """Domains some run reported a loss for (NaN included: validation names those runs)."""
    return list(raw.losses.columns)


def _sweep_id(cfg: SourceConfig, sweep) -> str | None:
    if cfg.kind == "wandb":
        group = cfg.wandb.group
        return cfg.wandb.sweep or (group if isinstance(group, str) or group is None else "+".join(group))
    return joined_name(sweep) if cfg.kind == "local" else (cfg.label or cfg.kind)


def _load_test(cfg: FitAppConfig, target: Target, domains: list[str], train_location: str) -> tuple[RunsTable, DropReport]:
    raw = load_runs(cfg.test)
    if raw.location == train_location:
        raise AnalysisError(f"the test source is the training source ({raw.location}); point test.root / test.mixtures at held-out runs")
    missing = [d for d in target.domains if d not in _logged(raw)]
    if missing:
        raise AnalysisError(f"the test runs ({raw.location}) logged no loss for target domain(s) {missing}")
    table, drops = validate_runs(raw, required_losses=target.domains, allow_mixed=cfg.allow_mixed, min_runs=2)
    if set(table.domains) != set(domains):
        only_train = sorted(set(domains) - set(table.domains))
        only_test = sorted(set(table.domains) - set(domains))
        raise AnalysisError(
            f"the test runs name other domains than the training runs: only in training {only_train}, "
            f"only in test {only_test}; use runs of the same corpus (or fix the column mapping/rename)"
        )
    return table, drops


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


def _check_settings(cfg: FitAppConfig) -> None:
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
    if r.bags < 1:
        raise AnalysisError(f"regressor.bags={r.bags} must be at least 1 (8 by default; 1 = no spread)")
    if not 1 <= cfg.weight_decimals <= 9:
        raise AnalysisError(f"weight_decimals={cfg.weight_decimals} is invalid; use 1-9 (4 = a 1e-4 grid)")


def candidate_chunk_rows(cfg: FitAppConfig, n_domains: int) -> int:
    """Rows per candidate chunk: `chunk_size`, fewer when `chunk_bytes` would be exceeded."""
    return int(max(1024, min(cfg.simulation.chunk_size, cfg.simulation.chunk_bytes // (8 * n_domains))))


def _recorded_tokens(table: RunsTable) -> dict[str, float] | None:
    """Token counts the runs recorded (local records: the corpus meta); None for shares only."""
    prior = table.prior or {}
    return dict(prior) if prior and sum(prior.values()) > 1.5 else None


def _normalised(weights: np.ndarray) -> np.ndarray:
    """Weights renormalised to sum 1 (aggregates already meet the bounds)."""
    w = np.asarray(weights, dtype=np.float64)
    return w / w.sum()


def _predict(model, weights: np.ndarray) -> float:
    return float(model.predict(np.asarray(weights, dtype=np.float64)[None, :])[0])


def propose_hint(cfg: FitAppConfig) -> str:
    """The regmix-propose command that continues this fit's sweeps with a round of 32."""
    names = sweep_names(cfg.sweep)
    sweeps = f"sweep={names[0]}" if len(names) == 1 else f"'sweep=[{','.join(names)}]'"
    source = "" if cfg.source.kind == "local" else f" source={cfg.source.kind} (this fit's source.* settings)"
    return f"regmix-propose {sweeps} out={joined_name(names)}_next k=32{source}"


def run_fit(cfg: FitAppConfig, *, command: str | None = None, progress: bool = True) -> FitResult:
    """Run the whole analysis for `cfg`; write the mixture config and the report; return a summary.

    Raises `AnalysisError` (a ValueError) for input it cannot use, before any slow step when it can.
    With tracker.mode offline/online the fit is also a W&B run (analysis.tracking), finished as
    failed if the fit fails.
    """
    if cfg.source.kind == "wandb":  # a sweep path names entity and project: the tracker links to them too
        from analysis.sources.wandb_api import resolve_sweep_path

        cfg.source.wandb = resolve_sweep_path(cfg.source.wandb)
    with FitTracking(cfg, command=command) as tracking:
        return _fit(cfg, command=command, progress=progress, tracking=tracking)


def _fit(cfg: FitAppConfig, *, command: str | None, progress: bool, tracking: FitTracking) -> FitResult:
    timings: dict[str, float] = {}
    warnings: list[str] = []
    clock = time.perf_counter()

    raw = load_runs(cfg.source, sweeps=sweep_names(cfg.sweep), runs_dir=cfg.runs_dir)
    check_usable(raw)  # empty / unreadable / unfinished: say so before anything about the target
    target = parse_target(cfg.target, _logged(raw))
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
    _check_settings(cfg)

    table, drops = validate_runs(raw, required_losses=target.domains, allow_mixed=cfg.allow_mixed)
    domains = table.domains
    test_table = test_drops = None
    if cfg.test.kind != "none":
        test_table, test_drops = _load_test(cfg, target, domains, raw.location)
    caps, budget_caps = cfg.simulation.caps, None
    if cfg.simulation.token_budget is not None:
        budget_caps = epoch_caps(
            domains,
            cfg.simulation.domain_tokens or _recorded_tokens(table),
            budget=float(cfg.simulation.token_budget),
            max_epochs=float(cfg.simulation.max_epochs),
        )
        caps = merge_caps(caps, budget_caps)
    space = candidate_space(
        domains,
        _prior(cfg, table, warnings),
        cfg.simulation.sampler,
        caps=caps,
        minimums=cfg.simulation.minimums,
    )
    timings["load_s"] = time.perf_counter() - clock
    tracking.start(table, out=out)  # W&B credentials fail here, before the slow steps

    X, y = table.weights, target.values(table.losses)
    X_test = test_table.weights[domains] if test_table is not None else None
    y_test = target.values(test_table.losses) if test_table is not None else None
    threads = cfg.simulation.predict_threads
    estimators = {
        n: build_regressor(n, cfg.regressor, seed=cfg.regressor.seed, predict_threads=threads)
        for n in dict.fromkeys(cfg.regressor.compare)
    }
    clock = time.perf_counter()
    comparison = compare_regressors(
        estimators,
        X,
        y,
        folds=cfg.regressor.folds,
        seed=cfg.regressor.seed,
        X_test=X_test,
        y_test=y_test,
        n_jobs=prediction_threads(cfg.regressor.n_jobs),
    )
    timings["compare_s"] = time.perf_counter() - clock
    drive, why = choose_drive(
        comparison, drive=cfg.regressor.drive, n_runs=len(table), min_runs_for_trees=cfg.regressor.min_runs_for_trees
    )
    model = comparison.models[drive]
    drive_oof = comparison.table.loc[drive, "oof_spearman"]
    weak: list[str] = []
    if not drive_oof >= cfg.choice.min_spearman:  # NaN too: a constant prediction ranks nothing
        weak.append(f"the driving {drive} ranks held-out runs poorly (out-of-fold Spearman {drive_oof:.2f} < {cfg.choice.min_spearman})")
    clock = time.perf_counter()
    ensemble = BaggedRegressor(
        build_regressor(drive, cfg.regressor, seed=cfg.regressor.seed, predict_threads=threads),
        n_bags=cfg.regressor.bags,
        random_state=cfg.regressor.seed,
        n_jobs=prediction_threads(cfg.regressor.n_jobs),
    ).fit(X, y)
    calibration = None
    if cfg.choice.calibrate and cfg.regressor.bags > 1 and X_test is not None:
        # Held-out test runs measure the intervals directly, at no extra fit.
        low, high = ensemble.predict_interval(X_test, coverage=cfg.choice.coverage)
        inside = (y_test >= low) & (y_test <= high)
        calibration = {"coverage": float(inside.mean()), "nominal": cfg.choice.coverage,
                       "mean_width": float((high - low).mean()), "on": "test", "low": low, "high": high}
    elif cfg.choice.calibrate and cfg.regressor.bags > 1:
        calibration = interval_coverage(
            ensemble.estimator, X, y, n_bags=min(cfg.regressor.bags, max(2, cfg.choice.calibration_bags)),
            folds=max(2, min(cfg.regressor.folds, cfg.choice.calibration_folds)), seed=cfg.regressor.seed,
            coverage=cfg.choice.coverage, n_jobs=prediction_threads(cfg.regressor.n_jobs),
        ) | {"on": "out of fold"}
    timings["ensemble_s"] = time.perf_counter() - clock
    best_oof = comparison.table["oof_spearman"].idxmax() if comparison.table["oof_spearman"].notna().any() else drive
    if best_oof != drive:
        warnings.append(
            f"{best_oof} has a higher out-of-fold Spearman than the driving {drive} "
            f"({comparison.table.loc[best_oof, 'oof_spearman']:.4f} vs {comparison.table.loc[drive, 'oof_spearman']:.4f}); "
            f"regressor.drive={best_oof} would let it pick the mixture"
        )

    clock = time.perf_counter()
    screen = None
    if not is_linear(drive) and cfg.simulation.screen_keep > 0:
        screen = build_screen(cfg.regressor, seed=cfg.regressor.seed, predict_threads=threads).fit(X, y)
    c = cfg.choice
    radius = None if (c.trust_radius is not None and c.trust_radius < 0) else (
        c.trust_radius if c.trust_radius is not None else auto_radius(X.to_numpy(), c.trust_factor)
    )
    # The paper's recipe (the driver's own top k, no region, no penalty) needs no re-scoring.
    rescore = not (c.objective == "driver" and radius is None and not c.l1_penalty and not c.kl_penalty)
    pool_k = min(max(c.pool, cfg.simulation.top_k), cfg.simulation.n_candidates) if rescore else cfg.simulation.top_k
    scorer = Penalized(model, space.prior, l1=c.l1_penalty, kl=c.kl_penalty) if (c.l1_penalty or c.kl_penalty) else model
    if screen is not None and scorer is not model:
        screen = Penalized(screen, space.prior, l1=c.l1_penalty, kl=c.kl_penalty)
    sim = simulate(
        scorer,
        space,
        n_candidates=cfg.simulation.n_candidates,
        top_k=pool_k,
        aggregate=cfg.simulation.aggregate,
        seed=cfg.simulation.seed,
        chunk_rows=candidate_chunk_rows(cfg, len(domains)),
        screen=screen,
        screen_keep=cfg.simulation.screen_keep,
        screen_blocks=cfg.simulation.screen_blocks,
        progress=progress,
    )
    choice_stats: dict = {"objective": "the driving regressor's prediction (the paper's recipe)", "trust_radius_l1": None}
    if rescore:
        picked = choose(
            sim.top, ensemble, X.to_numpy(), space, top_k=cfg.simulation.top_k, aggregate=cfg.simulation.aggregate,
            objective=c.objective, quantile=c.quantile, radius=radius, l1_penalty=c.l1_penalty,
            kl_penalty=c.kl_penalty, driver_scores=sim.top_predicted,
        )
        sim.weights, sim.top, sim.top_predicted = picked.weights, picked.top, model.predict(picked.top)
        sim.stats["aggregate_note"] = picked.stats.pop("aggregate_note")
        sim.stats["top_k"] = cfg.simulation.top_k
        choice_stats = picked.stats
        if "trust_note" in picked.stats:
            warnings.append(picked.stats["trust_note"])
    timings["simulate_s"] = time.perf_counter() - clock

    best_pos = int(np.argmin(y))
    best_vector = X.to_numpy()[best_pos]
    uniform = np.full(len(domains), 1.0 / len(domains))
    simulated = _normalised(sim.weights)
    others = {"prior": space.prior, "uniform": uniform, "best_run": best_vector}
    simulated_evidence = evidence(ensemble, simulated, others, coverage=c.coverage)
    # With a penalty toward the prior the user trades loss for closeness: judge by the penalised loss.
    judge = Penalized(ensemble, space.prior, l1=c.l1_penalty, kl=c.kl_penalty) if (c.l1_penalty or c.kl_penalty) else ensemble
    judged = simulated_evidence if judge is ensemble else evidence(judge, simulated, others, coverage=c.coverage)
    for name in ("prior", "best_run"):
        p = judged.probability[name]
        if p < c.min_probability:
            weak.append(f"P(beats the {name.replace('_', ' ')}) is {p:.0%} < {c.min_probability:.0%}")
    next_step = f"train more proxy runs where the ensemble is unsure ({propose_hint(cfg)}), then fit again"
    if weak and c.shrink:
        shrunk = shrink(
            judge, simulated, supported_point(judge, best_vector, space.prior, space),
            weak_reasons=weak, min_probability=c.min_probability, next_step=next_step,
        )
        status, status_line, emitted_vector = shrunk.status, shrunk.line, shrunk.weights
    elif weak:
        status, emitted_vector = "weak", simulated
        status_line = f"status: weak: emitted the simulated choice unshrunk (choice.shrink=false) although {'; '.join(weak)}; next: {next_step}"
    else:
        status, emitted_vector = "supported", simulated
        status_line = "status: supported: the evidence backs the chosen mixture"
    weights = round_weights(dict(zip(domains, emitted_vector)), cfg.weight_decimals, upper=space.upper)
    mixture = Mixture(weights, domains=domains, tolerance=1e-6)
    vector = mixture.vector(domains)
    emitted_evidence = evidence(ensemble, vector, others, coverage=c.coverage) if status in ("shrunk", "fallback") else simulated_evidence
    predicted = {
        "chosen": _predict(model, vector),
        "best_candidate": float(sim.top_predicted[0]),
        "prior": _predict(model, space.prior),
        "uniform": _predict(model, np.full(len(domains), 1.0 / len(domains))),
        "best_run": _predict(model, X.to_numpy()[best_pos]),
    }
    if status in ("shrunk", "fallback"):
        predicted["simulated_choice"] = _predict(model, simulated)
    points_all = {"chosen": vector, "prior": space.prior, "uniform": uniform, "best_run": best_vector}
    members = ensemble.predict_members(np.stack(list(points_all.values())))
    tail = (1.0 - c.coverage) / 2.0
    intervals = {
        label: (float(np.quantile(members[:, i], tail)), float(members[:, i].mean()), float(np.quantile(members[:, i], 1 - tail)))
        for i, label in enumerate(points_all)
    }
    best_run = {
        "id": str(X.index[best_pos]),
        "loss": float(y[best_pos]),
        "predicted": predicted["best_run"],
        "weights": dict(zip(domains, map(float, X.to_numpy()[best_pos]))),
    }
    # Every compared regressor's view of the same mixtures: a choice that only the driving
    # regressor likes is an artefact of that model, not of the data.
    points = {"chosen": vector, "best_run": X.to_numpy()[best_pos], "prior": space.prior}
    cross_check = {
        name: {label: _predict(other, point) for label, point in points.items()}
        for name, other in comparison.models.items()
    }
    nearest = float(nearest_l1(vector, X.to_numpy())[0])
    _check_outcome(predicted, sim, nearest, warnings)
    constraints = {
        "minimums": {d: float(v) for d, v in zip(space.domains, space.lower) if v > 0},
        "caps": {d: float(v) for d, v in zip(space.domains, space.upper) if v < 1.0},
        "cap_multiplier": cfg.simulation.sampler.cap_multiplier,
        "token_budget": (
            {"tokens": cfg.simulation.token_budget, "max_epochs": cfg.simulation.max_epochs, "caps": budget_caps}
            if budget_caps is not None else None
        ),
        "l1_penalty": c.l1_penalty,
        "kl_penalty": c.kl_penalty,
        "trust_radius_l1": choice_stats.get("trust_radius_l1"),
    }
    uncertainty = {
        "status": status,
        "status_line": status_line,
        "weak_evidence": weak,
        "bags": cfg.regressor.bags,
        "choice": {k: v for k, v in choice_stats.items() if k != "trust_note"},
        "emitted": emitted_evidence.as_dict(),
        "simulated_choice": simulated_evidence.as_dict() if emitted_evidence is not simulated_evidence else None,
        "intervals": {k: {"low": v[0], "mean": v[1], "high": v[2]} for k, v in intervals.items()},
        "calibration": {k: v for k, v in calibration.items() if k not in ("low", "high")} if calibration else None,
        "interval_coverage": calibration["coverage"] if calibration else float("nan"),
    }

    provenance = _provenance(
        cfg, command, raw, table, drops, test_table, target, comparison, drive, why, model, space, sim, predicted,
        best_run, nearest, cross_check, constraints, uncertainty,
    )
    header = _header(out, target, drive, comparison, table, cfg, predicted, command)

    result = FitResult(
        comparison=comparison.table,
        drive=drive,
        drive_reason=why,
        mixture=mixture,
        predicted=predicted,
        best_run=best_run,
        emitted=path,
        report_dir=report_dir,
        target=target,
        table=table,
        drops=drops,
        test_table=test_table,
        test_drops=test_drops,
        simulation={**sim.stats, "nearest_run_l1": nearest},
        timings=timings,
        warnings=warnings,
        cross_check=cross_check,
        details={**_details(comparison, sim, space, y, y_test),
                 "interval_check": (calibration["low"], calibration["high"]) if calibration else None},
        evidence=uncertainty,
        intervals=intervals,
        status=status,
        status_line=status_line,
        constraints=constraints,
    )
    clock = time.perf_counter()
    from analysis.report import write_report

    # The report first, the mixture last: the mixture's existence means the fit finished (a rerun
    # refuses to replace it), so a fit killed before it is simply run again.
    write_report(result, plots=cfg.plots)
    timings["report_s"] = time.perf_counter() - clock
    emit_mixture(path, name=out, weights=weights, provenance=provenance, header=header, overwrite=cfg.overwrite)
    result.tracked = tracking.log(result)  # after the report: its PNGs are logged too
    return result


def _check_outcome(predicted: dict, sim: SimulationResult, nearest: float, warnings: list[str]) -> None:
    if predicted["chosen"] >= predicted["best_run"]:
        warnings.append(
            f"the chosen mixture's predicted loss ({predicted['chosen']:.4f}) is not below the best run's "
            f"({predicted['best_run']:.4f}); the regressor sees no better mixture than one already trained"
        )
    if sim.stats.get("screened") and not sim.stats.get("screen_converged"):
        warnings.append(
            "the screen did not settle: the top k still moved in the last re-scored block; raise "
            "simulation.screen_keep / screen_blocks, or set simulation.screen_keep=0 to score every candidate"
        )
    if nearest > 0.5:
        warnings.append(
            f"the chosen mixture is {nearest:.2f} (L1) from the nearest run: an extrapolation; "
            "consider training a few proxies near it before the target run"
        )


def _scores(row: pd.Series, prefix: str) -> dict[str, float]:
    return {k[len(prefix) :]: float(v) for k, v in row.items() if k.startswith(prefix)}


def _provenance(cfg, command, raw, table, drops, test_table, target, comparison: Comparison, drive, why, model,
                space: CandidateSpace, sim: SimulationResult, predicted, best_run, nearest, cross_check,
                constraints, uncertainty) -> dict:
    row = comparison.table.loc[drive]
    sampler = asdict(cfg.simulation.sampler)
    sampler.pop("prior", None)
    settings = {k: sim.stats[k] for k in ("n_candidates", "top_k", "aggregate") if k in sim.stats}
    settings.update(
        seed=cfg.simulation.seed,
        drawn=sim.stats.get("drawn"),
        screen=(
            {k: sim.stats.get(k) for k in ("screen_keep", "screen_pool", "rescored", "screen_converged")}
            if sim.stats.get("screened")
            else None
        ),
        sampler=sampler,
        prior=space.prior_dict(),
    )
    return {
        "made_by": "regmix-fit",
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "runs": {
            "count": len(table),
            "read": drops.total,
            "dropped": len(drops.dropped),
            "merged_duplicates": sum(len(g) - 1 for g in drops.merged),
            "source": cfg.source.kind,
            "label": table.source,
            "location": raw.location,
            "sweep": _sweep_id(cfg.source, cfg.sweep),
            "table_sha256": table.sha256(),
            "model": table.identity("model"),
            "corpus": table.identity("corpus"),
            "tokens": table.identity("tokens"),
            "setup": table.identity("setup"),
        },
        "test_runs": (
            {"count": len(test_table), "label": test_table.source, "table_sha256": test_table.sha256()}
            if test_table is not None
            else None
        ),
        "target": {"label": target.label, "weights": target.weights},
        "regressor": {
            "name": drive,
            "why": why,
            "params": {k: v for k, v in model.get_params().items() if k != "predict_threads"},
            "folds": comparison.folds,
            "oof": _scores(row, "oof_"),
            "test": _scores(row, "test_") or None,
        },
        "compared": {name: _scores(r, "oof_") for name, r in comparison.table.iterrows()},
        "predicted_loss": {**predicted, "best_run_actual": best_run["loss"], "best_run_id": best_run["id"]},
        "predicted_by_each_regressor": cross_check,
        "nearest_run_l1": nearest,
        "simulation": settings,
        "constraints": constraints,
        "uncertainty": uncertainty,
    }


def _header(out, target, drive, comparison, table, cfg, predicted, command) -> list[str]:
    spearman = comparison.table.loc[drive, "oof_spearman"]
    sim = cfg.simulation
    return [
        f"Mixture {out!r}, emitted by regmix-fit on {_dt.date.today().isoformat()}.",
        f"Minimises the {target.label} validation loss as predicted by {drive} (out-of-fold Spearman "
        f"{spearman:.3f}) fitted on {len(table)} runs of {table.source};",
        f"{sim.aggregate} of the top {sim.top_k} of {sim.n_candidates:,} candidates from the prior. Predicted loss "
        f"{predicted['chosen']:.4f} (best run {predicted['best_run']:.4f}, prior {predicted['prior']:.4f}).",
        "",
        f"Train on it:  regmix-train mixture={out} model=<size> ...",
        f"Made with:    {command}" if command else "Made with:    regmix-fit (see provenance below)",
        "Weights are rounded to sum to 1; provenance records the runs, regressor, scores and sampler used.",
    ]


def _details(comparison: Comparison, sim: SimulationResult, space: CandidateSpace, y, y_test) -> dict:
    return {
        "folds": comparison.folds,
        "y": y,
        "y_test": y_test,
        "oof": comparison.oof,
        "test": comparison.test,
        "top": sim.top,
        "top_predicted": sim.top_predicted,
        "prior": space.prior,
        "lower": space.lower,
        "upper": space.upper,
    }
