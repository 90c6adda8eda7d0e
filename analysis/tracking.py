"""A fit logged to W&B: one run of job type `analysis` in the proxies' project and group.

What the run holds (keys as they appear in the W&B UI):

    config       `fit` (the fit's whole config), `proxies` (source, project, group, W&B sweep
                 id, runs used, runs-table hash), `chosen` (the emitted mixture: name, weights)
    comparison   table: one row per regressor, out-of-fold (and test) scores
    predictions  table: per run, observed target loss and each regressor's out-of-fold
                 prediction; `pred_vs_actual/<regressor>` scatter charts of it (and
                 `test_predictions`, `pred_vs_actual_test/<regressor>` with a test source)
    domain_correlation   bar chart: Spearman(weight, target loss) across runs, per domain
    mixture      table: chosen / prior / uniform / best-run weights and bounds per domain;
                 `mixture_chosen` and `mixture_prior` bar charts of it
    plots/*      the report's PNG figures (when plots=true)
    summary      drive (the chosen regressor), predicted/{chosen,best_candidate,prior,uniform,
                 best_run}, best_run/{id,observed}, oof_spearman/<regressor> (test_spearman/
                 with a test source), runs/{used,read,dropped}, runs/round/<sweep> (runs per round),
                 emitted/{name,nearest_run_l1}
    artifact     the emitted mixture config, type `mixture`, named like the mixture, its
                 provenance as metadata (`wandb artifact get <entity>/<project>/<name>:latest`)

The run is linked to the proxies by group (regmix-train puts a sweep's proxies in group
`${sweep}`), by tag `sweep-<id>` when they came from a W&B sweep, and by `config.proxies`. It
is not made a member of the W&B sweep: the sweep controller would count it as a trial.
Offline (no account), the log is `<dir>/wandb/offline-run-*/run-<id>.wandb` and the artifact's
files are staged under WANDB_DATA_DIR until `wandb sync <that folder>` uploads both.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import pandas as pd
import yaml

from analysis.config import FitAppConfig
from analysis.result import domain_correlations, mixture_frame
from analysis.rounds import joined_name
from analysis.runs_table import RunsTable
from regmix.tracking import TrackingError, effective_mode  # one TrackingError for both sides

if TYPE_CHECKING:
    from analysis.result import FitResult

MODES = ("offline", "online", "disabled")
#: Tag every analysis run carries, so `tags: regmix-fit` finds them all in a project.
TAG = "regmix-fit"
#: Project of regmix-train's proxies by default (regmix.config.TrackerConfig.project).
DEFAULT_PROJECT = "regmix"
#: Rows of a predictions table (wandb.Table's logging limit; beyond it wandb keeps the first rows).
SCATTER_ROWS = 10_000


@dataclass
class TrackedRun:
    """Where the analysis run went."""

    mode: str
    id: str
    project: str
    entity: Optional[str]
    group: Optional[str]
    dir: Path
    """The run's local folder (offline: what `wandb sync` takes)."""
    url: Optional[str]

    def line(self) -> str:
        """One line for the console: the run's URL, or offline the command that uploads it."""
        if self.url:
            return f"W&B:     {self.url}"
        return f"W&B:     offline run {self.id} in {self.dir}   (upload: wandb sync {self.dir})"


def check_tracker(cfg: FitAppConfig) -> None:
    """Refuse a bad `tracker.mode` before anything is read."""
    if cfg.tracker.mode not in MODES:
        raise TrackingError(f"tracker.mode={cfg.tracker.mode!r} is not one of {MODES}; pick tracker=offline|online|disabled")


def proxy_link(cfg: FitAppConfig, table: RunsTable) -> dict[str, Any]:
    """Project, entity, group and W&B sweep id of the proxies in `table` (see FitTrackerConfig)."""
    t, source = cfg.tracker, cfg.source
    from_wandb = source.kind == "wandb"
    recorded = [str(s) for s in pd.unique(table.runs["sweep"].dropna()) if str(s)]
    group = t.group or (source.wandb.group if from_wandb else None)
    if group is None:
        group = recorded[0] if len(recorded) == 1 else joined_name(cfg.sweep)
    elif not isinstance(group, str):  # several rounds' groups: the analysis run joins the first
        group = list(group)[0]
    return {
        "project": t.project or (source.wandb.project if from_wandb else DEFAULT_PROJECT),
        "entity": t.entity or (source.wandb.entity if from_wandb else None),
        "group": group,
        "sweep_id": source.wandb.sweep if from_wandb else None,
    }


def _base_url(cfg: FitAppConfig) -> Optional[str]:
    """The proxies' W&B server when the runs were pulled from one named explicitly; else W&B's default."""
    return cfg.source.wandb.base_url if cfg.source.kind == "wandb" else None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def summary_values(result: "FitResult") -> dict[str, Any]:
    """Scalars for the run summary: the choice, its predicted losses and each regressor's scores."""
    out: dict[str, Any] = {
        "target": result.target.label,
        "target/goal": result.target.goal,
        "drive": result.drive,
        "drive_reason": result.drive_reason,
        **{f"predicted/{k}": v for k, v in result.predicted.items()},
        "best_run/id": result.best_run["id"],
        "best_run/observed": result.best_run["loss"],
        "runs/used": len(result.table),
        "runs/read": result.drops.total,
        "runs/dropped": len(result.drops.dropped),
        **{f"runs/round/{name}": n for name, n in result.drops.rounds.items()},
        "emitted/name": result.emitted.stem,
        "emitted/nearest_run_l1": result.simulation.get("nearest_run_l1"),
        "warnings": len(result.warnings),
        "status": str(result.status),
        "status_line": result.status_line,
        "interval_coverage": result.evidence.get("interval_coverage"),
        "residual_scale": result.evidence.get("residual_scale"),
        # The runs' noise at the noisiest predicted level over the quietest (1: no trend), and
        # whether intervals and P(beats) use it (choice.noise_by_level).
        "noise_trend/ratio": (result.evidence.get("noise_by_level") or {}).get("ratio", 1.0),
        "noise_trend/applied": bool((result.evidence.get("noise_by_level") or {}).get("applied", False)),
    }
    if result.outliers is not None:  # None: too few runs to check, which is not 0
        out["runs/outliers"], out["runs/outlier_ids"] = len(result.outliers), ", ".join(o.run for o in result.outliers)
    emitted = result.evidence.get("emitted") or {}
    for rival, p in emitted.get("probability_beats", {}).items():
        out[f"p_beats/{rival}"] = p
        diff = emitted["loss_difference"][rival]
        out[f"loss_diff/{rival}/low"], out[f"loss_diff/{rival}/high"] = diff["low"], diff["high"]
    for label, (low, _, high) in result.intervals.items():
        out[f"interval/{label}/low"], out[f"interval/{label}/high"] = low, high
    calibration = result.evidence.get("calibration") or {}
    for key, value in calibration.items():  # coverage@50/80/95, ece, brier, pairs, on, runs
        out[f"calibration/{key}"] = value
    trust = result.evidence.get("trust") or {}
    if trust:
        out["trust/radius_l1"], out["trust/inside"] = trust["radius_l1"], trust["inside"]
    for name, row in result.comparison.iterrows():
        for column in ("oof_spearman", "oof_pearson", "test_spearman"):
            if column in row:
                out[f"{column}/{name}"] = row[column]
    # NaN (a constant prediction ranks nothing) is left out rather than logged as a number.
    return {k: v for k, v in out.items() if not (isinstance(v, (float, np.floating)) and not math.isfinite(v))}


def _table(frame: pd.DataFrame):
    import wandb

    plain = frame.astype(object).where(frame.notna(), None)  # NaN is not JSON: empty cell
    return wandb.Table(dataframe=plain)


def _predictions(result: "FitResult", split: str) -> pd.DataFrame:
    d = result.details
    if split == "oof":
        index, observed, predicted = result.table.weights.index, d["y"], d["oof"]
    else:
        index, observed, predicted = result.test_table.weights.index, d["y_test"], d["test"]
    frame = pd.DataFrame({"run": [str(i) for i in index], "observed": observed})
    for name, values in predicted.items():
        frame[f"pred_{name}"] = values  # no '/' or '.': Vega reads those as paths
    if len(frame) > SCATTER_ROWS:  # a seeded sample, not wandb's silent cut to the first rows
        frame = frame.sample(n=SCATTER_ROWS, random_state=0).sort_index()
    return frame


def _media(result: "FitResult") -> dict[str, Any]:
    """Tables, charts and images to log in one step."""
    import wandb

    label = result.target.label
    media: dict[str, Any] = {"comparison": _table(result.comparison.reset_index())}
    splits = [("oof", "predictions", "pred_vs_actual", "out-of-fold")]
    if result.test_table is not None and result.details["test"]:
        splits.append(("test", "test_predictions", "pred_vs_actual_test", "test"))
    for split, table_key, chart_key, what in splits:
        table = media[table_key] = _table(_predictions(result, split))
        for name in result.details[split]:
            media[f"{chart_key}/{name}"] = wandb.plot.scatter(
                table, "observed", f"pred_{name}", title=f"{name}: {what} prediction vs observed {label} loss"
            )
    corr = domain_correlations(result).rename_axis("domain").reset_index()
    media["domain_correlation"] = wandb.plot.bar(
        _table(corr), "domain", "spearman", title=f"Spearman(weight, {label} loss) across runs (< 0: more weight, lower loss)"
    )
    if result.intervals:
        emitted = (result.evidence.get("emitted") or {}).get("probability_beats", {})
        media["uncertainty"] = _table(pd.DataFrame(
            [{"mixture": k, "mean": v[1], "low": v[0], "high": v[2], "p_chosen_beats": emitted.get(k)}
             for k, v in result.intervals.items()]
        ))
    if result.outliers:  # the runs the fit cannot explain (analysis.run_outliers), by id
        media["outliers"] = _table(pd.DataFrame(
            [{"run": o.run, "observed": o.observed, "predicted_oof": o.predicted, "robust_z": o.z}
             for o in result.outliers]
        ))
    weights = media["mixture"] = _table(mixture_frame(result).reset_index())
    media["mixture_chosen"] = wandb.plot.bar(weights, "domain", "chosen", title=f"chosen mixture for {label}")
    media["mixture_prior"] = wandb.plot.bar(weights, "domain", "prior", title="token prior")
    for png in sorted(Path(result.report_dir).glob("*.png")):  # analysis.plots' figures (plots=true)
        media[f"plots/{png.stem}"] = wandb.Image(str(png))
    return media


def _artifact(result: "FitResult"):
    import wandb

    emitted = Path(result.emitted)
    provenance = (yaml.safe_load(emitted.read_text()) or {}).get("provenance") or {}
    artifact = wandb.Artifact(
        emitted.stem,
        type="mixture",
        description=f"regmix-fit mixture for the {result.target.label} loss: conf/mixture/{emitted.name}",
        metadata=provenance,
    )
    artifact.add_file(str(emitted), name=emitted.name)
    return artifact


class FitTracking:
    """The W&B run of one fit, as a context manager around it (a no-op with tracker=disabled).

    `start` opens the run once the runs are validated, so that missing credentials or an
    unreachable server fail before the slow steps; `log` fills it in at the end; leaving the
    block finishes it, with exit code 1 (a failed run in W&B) if the fit raised.
    """

    def __init__(self, cfg: FitAppConfig, *, command: Optional[str] = None) -> None:
        check_tracker(cfg)
        self.cfg = cfg
        self.command = command
        self.run = None
        self.mode = cfg.tracker.mode
        self.link: dict[str, Any] = {}

    def __enter__(self) -> "FitTracking":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.run is not None:
            run, self.run = self.run, None
            run.finish(exit_code=0 if exc_type is None else 1)

    def start(self, table: RunsTable, *, out: str) -> None:
        """Open the W&B run (offline/online) for a fit of `table` that emits mixture `out`."""
        cfg = self.cfg
        # WANDB_MODE may turn the run down (online -> offline -> disabled), as for regmix-train.
        self.mode = mode = effective_mode(cfg.tracker.mode)
        if mode == "disabled":
            return
        import wandb  # lazily: ~1 s to import, and a plain fit does not need it

        self.link = link = proxy_link(cfg, table)
        tags = [TAG, *cfg.tracker.tags, *([f"sweep-{link['sweep_id']}"] if link["sweep_id"] else [])]
        folder = Path(cfg.tracker.dir or cfg.report_dir)
        folder.mkdir(parents=True, exist_ok=True)
        config = {
            "fit": {k: v for k, v in asdict(cfg).items() if k != "tracker"},
            "proxies": {**link, "source": cfg.source.kind, "runs": len(table), "table_sha256": table.sha256()},
            "command": self.command,
        }
        server = {"base_url": _base_url(cfg)} if _base_url(cfg) else {}
        try:
            self.run = wandb.init(
                project=link["project"],
                entity=link["entity"],
                group=link["group"],
                job_type=cfg.tracker.job_type,
                tags=list(dict.fromkeys(tags)),
                name=cfg.tracker.name or f"fit-{out}",
                config=config,
                dir=str(folder),
                mode=mode,
                reinit="create_new",  # never finishes (or swallows) a run the caller still has open
                settings=wandb.Settings(console="off", disable_git=True, x_disable_stats=True, silent=True, **server),
            )
        except wandb.errors.Error as err:
            fix = "set WANDB_API_KEY or run `wandb login`, " if mode == "online" else ""
            raise TrackingError(
                f"tracker={mode}: the W&B run could not start ({_first_line(err)}); {fix}"
                "or use tracker=disabled (or offline, and `wandb sync` the run later)"
            ) from None

    def log(self, result: "FitResult") -> Optional[TrackedRun]:
        """Log the results into the open run; None when tracking is disabled."""
        run = self.run
        if run is None:
            return None
        mode = self.mode
        run.config.update({"chosen": {"name": result.emitted.stem, "weights": dict(result.mixture.items())}})
        run.log(_media(result), step=0, commit=True)
        run.summary.update(summary_values(result))  # distinct keys from the logged step: never clobbered
        run.log_artifact(_artifact(result))
        return TrackedRun(
            mode=mode,
            id=run.id,
            project=self.link["project"],
            entity=run.entity if mode == "online" else self.link["entity"],
            group=self.link["group"],
            dir=Path(run.dir).parent,
            url=run.url if mode == "online" else None,
        )
