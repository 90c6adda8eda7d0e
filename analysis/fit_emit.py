"""The fit's last stage: the `FitResult`, the report, the mixture config, the W&B log.

The report first, the mixture last: the mixture's existence means the fit finished (a rerun
refuses to replace it), so a fit killed before it is simply run again.
"""

from __future__ import annotations

import datetime as _dt
import time

from analysis.config import FitAppConfig
from analysis.emit import emit_mixture
from analysis.fit_choose import Choice
from analysis.fit_decide import Decision
from analysis.fit_load import LoadedRuns
from analysis.fit_model import Models
from analysis.fit_provenance import Provenance
from analysis.result import FitResult
from analysis.tracking import FitTracking
from regmix.errors import RegmixError


def fit_result(runs: LoadedRuns, models: Models, choice: Choice, decision: Decision, provenance: Provenance,
               timings: dict[str, float], warnings: list[str]) -> FitResult:
    """Everything the fit produced, as the report, the CLI and the tests read it."""
    calibration = models.calibration
    return FitResult(
        comparison=models.comparison.table,
        drive=models.drive,
        drive_reason=models.why,
        mixture=decision.mixture,
        predicted=decision.predicted,
        best_run=decision.best_run,
        emitted=runs.path,
        report_dir=runs.report_dir,
        target=runs.target,
        table=runs.table,
        drops=runs.drops,
        test_table=runs.test_table,
        test_drops=runs.test_drops,
        simulation={**choice.sim.stats, "nearest_run_l1": decision.nearest},
        timings=timings,
        warnings=warnings,
        cross_check=decision.cross_check,
        details={**_details(runs, models, choice), "interval_check": _interval_check(runs, calibration)},
        evidence=provenance.uncertainty,
        intervals=decision.intervals,
        status=decision.status,
        status_line=decision.status_line,
        constraints=provenance.constraints,
        predictive=models.predictive,
        outliers=models.outliers,
    )


def emit_stage(cfg: FitAppConfig, runs: LoadedRuns, decision: Decision, result: FitResult, provenance: Provenance,
               *, command: str | None, tracking: FitTracking) -> FitResult:
    """Write the report, then the mixture, then log to W&B; times `report_s`. The report says
    where the mixture goes, then (rewritten) that it was emitted, or why it was not."""
    from analysis.report import write_report, write_report_text  # matplotlib and friends: only when a fit gets here

    clock = time.perf_counter()
    write_report(result, plots=cfg.plots)
    result.timings["report_s"] = time.perf_counter() - clock
    try:
        emit_mixture(runs.path, name=runs.out, weights=decision.weights, provenance=provenance.as_dict(),
                     header=header(cfg, runs.out, result, command), overwrite=cfg.overwrite)
    except (OSError, RegmixError) as exc:
        result.emit_error = " ".join(str(exc).split()) or type(exc).__name__
        write_report_text(result)
        raise
    result.mixture_written = True
    write_report_text(result)
    result.tracked = tracking.log(result)  # after the report: its PNGs are logged too
    return result


def header(cfg: FitAppConfig, out: str, result: FitResult, command: str | None) -> list[str]:
    """The comment lines above the emitted mixture: what it is and how to train on it."""
    sim, predicted, target = cfg.simulation, result.predicted, result.target
    spearman = result.comparison.loc[result.drive, "oof_spearman"]
    aim = f"Maximises {target.label} (higher is better)" if target.maximize else f"Minimises the {target.label} validation loss"
    return [
        f"Mixture {out!r}, emitted by regmix-fit on {_dt.date.today().isoformat()}.",
        f"{aim} as predicted by {result.drive} (out-of-fold Spearman "
        f"{spearman:.3f}) fitted on {len(result.table)} runs of {result.table.source};",
        f"{sim.aggregate} of the top {sim.top_k} of {sim.n_candidates:,} candidates from the prior. Predicted {target.quantity} "
        f"{predicted['chosen']:.4f} (best run {predicted['best_run']:.4f}, prior {predicted['prior']:.4f}).",
        "",
        f"Train on it:  regmix-train mixture={out} model=<size> ...",
        f"Made with:    {command}" if command else "Made with:    regmix-fit (see provenance below)",
        "Weights are rounded to sum to 1; provenance records the runs, regressor, scores and sampler used.",
    ]


def _interval_check(runs: LoadedRuns, calibration):
    """The held-out runs' (low, high) interval bounds and observed values, in the target's units."""
    if calibration is None or calibration.low is None:
        return None
    user = runs.target.user
    low, high = user(calibration.low), user(calibration.high)
    return ((high, low) if runs.target.maximize else (low, high)) + (user(calibration.y),)


def _details(runs: LoadedRuns, models: Models, choice: Choice) -> dict:
    """Arrays the report draws from, in the target's units."""
    comparison, sim, space, user = models.comparison, choice.sim, runs.space, runs.target.user
    return {
        "folds": comparison.folds,
        "y": user(runs.y),
        "y_test": user(runs.y_test) if runs.y_test is not None else None,
        "oof": {name: user(p) for name, p in comparison.oof.items()},
        "test": {name: user(p) for name, p in comparison.test.items()} if comparison.test else comparison.test,
        "top": sim.top,
        "top_predicted": user(sim.top_predicted),
        "prior": space.prior,
        "lower": space.lower,
        "upper": space.upper,
    }
