"""`run_fit`: runs -> validated table -> compared regressors -> simulation -> emitted mixture + report.

Each stage is a module with one job, handing a typed record to the next:

    fit_load     read the runs, check settings and target, validate, lay out the candidate space
    fit_model    compare the regressors, pick the driver, bag it into members
    fit_choose   simulate candidates, re-score a pool by the members, aggregate the top k
    fit_decide   weigh the evidence, set the status, shrink if weak, round the weights
    fit_provenance  the typed record the emitted file carries
    fit_emit     the result, the report, the mixture config, the W&B log

The Hydra app (`analysis.cli`) is a thin shell over `run_fit`; the demo and the tests call it
directly with a `FitAppConfig`.
"""

from __future__ import annotations

import time

from analysis.config import FitAppConfig
from analysis.fit_choose import choose_stage
from analysis.fit_decide import decide_stage
from analysis.fit_emit import emit_stage, fit_result
from analysis.fit_load import load_stage
from analysis.fit_model import model_stage
from analysis.fit_provenance import provenance
from analysis.result import FitResult
from analysis.tracking import FitTracking

__all__ = ["FitResult", "run_fit"]


def run_fit(cfg: FitAppConfig, *, command: str | None = None, progress: bool = True) -> FitResult:
    """Run the whole analysis for `cfg`; write the mixture config and the report; return a summary.

    Raises `AnalysisError` (a user error) for input it cannot use, before any slow step when it
    can. With tracker.mode offline/online the fit is also a W&B run (analysis.tracking), finished
    as failed if the fit fails.
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
    runs = load_stage(cfg, warnings)
    timings["load_s"] = time.perf_counter() - clock
    tracking.start(runs.table, out=runs.out)  # W&B credentials fail here, before the slow steps
    models = model_stage(cfg, runs, timings, warnings)
    choice = choose_stage(cfg, runs, models, timings, warnings, progress=progress)
    decision = decide_stage(cfg, runs, models, choice, warnings).for_user(runs.target)
    record = provenance(cfg, command, runs, models, choice, decision)
    result = fit_result(runs, models, choice, decision, record, timings, warnings)
    return emit_stage(cfg, runs, decision, result, record, command=command, tracking=tracking)
