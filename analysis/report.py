"""The report folder of a fit: report.md, CSV tables, plots, and the console summary.

Files (all in `FitResult.report_dir`):

    report.md            what was used, dropped, compared, chosen and predicted, and why
    comparison.csv       one row per regressor: oof_/test_ spearman, pearson, mse, r2; fit_s
    runs.csv             the validated runs table: weights, losses, target, n_merged
    predictions.csv      per run: target and each regressor's out-of-fold prediction
    mixture.csv          per domain: chosen, prior, uniform, best run, lower/upper bound
    top_candidates.csv   the top-k candidates and their predicted loss
    *.png                see analysis.plots
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.compare import MIN_RUNS_FOR_CURVE
from analysis.noise_level import MIN_RUNS as MIN_RUNS_FOR_TREND
from analysis.noise_level import SIGNIFICANCE
from analysis.result import domain_correlations, mixture_frame
from analysis.run_outliers import MIN_RUNS, READINGS, Z_LIMIT
from regmix.atomic_file import write_text_atomic

#: First line of report.md; names the emitted mixture the report belongs to.
TITLE = "# regmix-fit: {name}"

#: Correlations are shown x100 (the paper's convention); errors as they are.
_SCALED = ("spearman", "pearson")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table (no dependency on `tabulate`)."""
    cells = [[str(h) for h in header]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, (float, np.floating)):
        return "-" if not np.isfinite(value) else f"{value:.4f}"
    return str(value)


def comparison_rows(table: pd.DataFrame) -> tuple[list[str], list[list[object]]]:
    """Header and rows of the comparison, correlations x100 (the paper's unit)."""
    metrics = [c for c in table.columns if c != "fit_s"]
    header = ["regressor"] + [
        c.replace("oof_", "OOF ").replace("test_", "test ") + (" x100" if c.endswith(_SCALED) else "") for c in metrics
    ] + ["seconds"]
    rows = []
    for name, row in table.iterrows():
        values = [round(100 * row[c], 2) if c.endswith(_SCALED) and np.isfinite(row[c]) else row[c] for c in metrics]
        rows.append([name, *[f"{v:.2f}" if c.endswith(_SCALED) and np.isfinite(v) else v for c, v in zip(metrics, values)],
                     f"{row['fit_s']:.1f}"])
    return header, rows


def predicted_rows(result) -> list[list[object]]:
    p, best = result.predicted, result.best_run
    return [
        ["chosen (emitted)", p["chosen"], result.status],
        *([["simulated choice (not emitted)", p["simulated_choice"], "weak evidence"]] if "simulated_choice" in p else []),
        ["best single candidate", p["best_candidate"], ""],
        [f"best run ({best['id']})", p["best_run"], f"observed {best['loss']:.4f}"],
        ["token prior", p["prior"], ""],
        ["uniform", p["uniform"], ""],
    ]


def _simulation_lines(sim: dict) -> list[str]:
    lines = [
        f"- candidates: {sim['n_candidates']:,} scored ({sim.get('drawn', 0):,} drawn, "
        f"{100 * sim.get('acceptance', 1):.1f}% within the caps), top {sim['top_k']} aggregated: {sim.get('aggregate_note')}",
    ]
    if sim.get("screened"):
        lines.append(
            f"- screen: a small LightGBM kept the best {sim['screen_pool']:,}; the driving regressor re-scored "
            f"{sim['rescored']:,} of them ({'settled' if sim['screen_converged'] else 'NOT settled'}; worst screen "
            f"rank in the top k: {sim['worst_screen_rank_in_top_k']}). Settled means more of the pool is unlikely to "
            "change the top k; candidates outside the pool were judged by the screen alone "
            "(`simulation.screen_keep=0` scores every one by the driver)"
        )
    lines.append(f"- L1 distance from the chosen mixture to the nearest run: {sim.get('nearest_run_l1', float('nan')):.3f}")
    lines.append(f"- simulation time: {sim.get('seconds', 0):.1f} s")
    return lines


def evidence_line(result) -> str:
    """One line: P(emitted beats prior / uniform / best run) with the loss-difference intervals."""
    e = result.evidence.get("emitted") or {}
    if not e:
        return ""
    parts = []
    for name, p in e["probability_beats"].items():
        d = e["loss_difference"][name]
        parts.append(f"{name.replace('_', ' ')} {p:.0%} (diff {d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}])")
    units = f"; diffs in {result.target.label}, higher is better" if result.target.maximize else ""
    line = f"P(chosen beats) {', '.join(parts)}; {e['coverage']:.0%} intervals {e.get('basis', '')}".rstrip()
    return line + units + _calibration_tail(result)


def _calibration_tail(result) -> str:
    text = calibration_summary(result.evidence)
    return f"; {text}" if text else ""


def calibration_summary(evidence: dict) -> str:
    """'calibration on 256 test runs: 50/80/95% intervals hold 47/85/97%, P(a beats b) ECE 0.012
    over 32,640 pairs' from a fit's evidence record; '' when not measured."""
    cal = evidence.get("calibration") or {}
    levels = [k for k in cal if k.startswith("coverage@")]
    if not levels:
        return ""
    nominal = "/".join(k.removeprefix("coverage@") for k in levels)
    held = "/".join(f"{100 * cal[k]:.0f}" for k in levels)
    return (f"calibration on {cal['runs']} {cal['on']} runs: {nominal}% intervals hold {held}%, "
            f"P(a beats b) ECE {cal['ece']:.3f} over {cal['pairs']:,} pairs")


def trust_line(result) -> str:
    """Where the emitted mixture lies against the trust radius the verdict judged by."""
    trust = result.evidence.get("trust") or {}
    if not trust:
        return ""
    where = "inside" if trust["inside"] else "OUTSIDE"
    region = "" if trust["region"] else " (choice.trust_radius < 0: candidates were not kept inside it)"
    return (f"Trust region: L1 <= {trust['radius_l1']:.3f} from the nearest run{region}; the emitted mixture is "
            f"{result.simulation.get('nearest_run_l1', float('nan')):.3f} from the nearest run: {where}.")


def uncertainty_lines(result) -> list[str]:
    """The evidence line and the status line (what `regmix-fit` prints and the report leads with)."""
    return [line for line in (evidence_line(result), result.status_line) if line]


def calibration_lines(result) -> list[str]:
    """The calibration table: share of unseen runs inside each interval; ECE and Brier of P."""
    cal = result.evidence.get("calibration") or {}
    if not cal:
        return ["Calibration: not measured (choice.calibrate=false)."]
    rows = [[k.removeprefix("coverage@") + "%", f"{100 * v:.1f}%"] for k, v in cal.items() if k.startswith("coverage@")]
    # A share over n runs is itself a draw: a calibrated 80% interval holds 80% +- this.
    se = 100 * (0.8 * 0.2 / max(cal["runs"], 1)) ** 0.5
    return [
        f"Calibration on {cal['runs']} {cal['on']} runs (runs the fit never saw): share inside each interval "
        f"(a calibrated 80% interval holds 80% +- {se:.1f}% of {cal['runs']} runs, one standard error); "
        f"P(a beats b) over {cal['pairs']:,} pairs: ECE {cal['ece']:.4f}, Brier {cal['brier']:.4f}.",
        "",
        markdown_table(["interval", "runs inside"], rows),
        "",
        _scale_line(result.evidence.get("residual_scale")),
        "",
        _noise_line(result.evidence.get("noise_by_level"), result.target),
    ]


def _noise_line(noise, target) -> str:
    """How the run noise changes with the predicted value, in the user's units (a maximised
    metric's levels are negated internally), and whether the intervals use it."""
    if not noise or not noise.get("trend"):
        return ("Every run taken as noisy as any other: no trend of the out-of-fold residuals with the "
                f"predicted {target.quantity} passes the trend test at {SIGNIFICANCE:.0%} (or fewer than "
                f"{MIN_RUNS_FOR_TREND} runs).")
    low, high = noise["levels"]
    quiet, noisy = (low, high) if noise["slope"] > 0 else (high, low)
    seen = (f"Run noise is {noise['ratio']:.1f}x larger at a predicted {target.quantity} of "
            f"{target.user(noisy):.4g} than at {target.user(quiet):.4g} (trend test p = {noise['p_value']:.2g})")
    if noise.get("applied"):
        return f"{seen}: intervals and P(beats) use the spread at each mixture's own predicted level (choice.noise_by_level)."
    # Internal levels are losses (lower is better): a positive slope is quiet at the better end,
    # where the chosen mixture lies.
    quiet_at_better = noise["slope"] > 0
    wide, narrow = ("wider", "narrower") if quiet_at_better else ("narrower", "wider")
    return (f"{seen}. Intervals and P(beats) still use one spread for all runs: {wide} than the runs' noise at the "
            f"better end ({target.better}), {narrow} at the worse end. choice.noise_by_level=true sizes them by level "
            f"(better calibrated on held-out runs; the chosen mixture, predicted better than every run, then gets "
            f"the {'quietest' if quiet_at_better else 'noisiest'} runs' spread).")


def _scale_line(scale) -> str:
    if scale is None or scale == 1.0:
        return ("Residuals used as measured (the fold models' own errors): the learning curve found no gain "
                f"from more runs, or choice.learning_curve=false, or fewer than {MIN_RUNS_FOR_CURVE} runs or 3 folds.")
    return (f"Residuals scaled by {scale:.3f}: the fold models saw (K-1)/K of the runs, the fit all of them "
            "(learning curve from 2-fold and K-fold errors; choice.learning_curve).")


def outlier_lines(result) -> list[str]:
    """The runs the fit cannot explain (analysis.run_outliers), as report bullets."""
    if result.outliers is None:
        return [f"- runs the fit cannot explain: not checked (fewer than {MIN_RUNS} runs, or no spread among their "
                "out-of-fold residuals)"]
    if not result.outliers:
        return [f"- no run lies more than {Z_LIMIT:g} robust s.d. from what its mixture predicts out of fold"]
    rows = [[o.run, o.observed, o.predicted, f"{o.z:+.1f}"] for o in result.outliers]
    return [
        f"- **{len(rows)} run(s) the fit cannot explain**: more than {Z_LIMIT:g} robust s.d. from what their mixtures "
        f"predict out of fold (+: worse): {READINGS}. They stay in the fit.",
        "",
        markdown_table(["run", f"observed {result.target.quantity}", "predicted out of fold", "robust z"], rows),
    ]


def interval_rows(result) -> list[list[object]]:
    labels = {"chosen": "chosen (emitted)", "prior": "prior", "uniform": "uniform", "best_run": "best run"}
    return [[labels[k], v[1], v[0], v[2]] for k, v in result.intervals.items()]


def constraint_lines(constraints: dict) -> list[str]:
    """The constraint set as report bullets."""
    lines = []
    for key in ("minimums", "caps"):
        if constraints.get(key):
            lines.append(f"- {key}: " + ", ".join(f"{d} {v:.4g}" for d, v in constraints[key].items()))
    budget = constraints.get("token_budget")
    if budget:
        lines.append(f"- token budget {budget['tokens']:.4g} tokens, at most {budget['max_epochs']:g} epochs per domain "
                     "(included in the caps above)")
    lines.append(f"- penalties toward the prior: L1 {constraints.get('l1_penalty', 0):g}, KL {constraints.get('kl_penalty', 0):g} (nats per unit)")
    radius = constraints.get("trust_radius_l1")
    lines.append(f"- trust region: L1 <= {radius:.3f} from the nearest run" if radius is not None else "- trust region: off")
    lines.append(f"- generator caps: {constraints.get('cap_multiplier', 15):g} x prior")
    return lines


def summary_text(result) -> str:
    """What `regmix-fit` prints: drops, the comparison, the choice, the prediction and the paths."""
    out = []
    out.extend(result.drops.lines())
    if result.test_drops is not None:
        out.extend(result.test_drops.lines())
    header, rows = comparison_rows(result.comparison)
    goal = f" (maximize: {result.target.better})" if result.target.maximize else ""
    out += ["", f"target: {result.target.label}{goal}", markdown_table(header, rows), ""]
    out.append(f"driving regressor: {result.drive} ({result.drive_reason})")
    out.append(markdown_table(["mixture", f"predicted {result.target.quantity}", ""], predicted_rows(result)))
    top = sorted(result.mixture.items(), key=lambda kv: -kv[1])
    out.append("chosen: " + ", ".join(f"{d} {w:.4f}" for d, w in top if w > 0))
    out += uncertainty_lines(result)
    out += [line for line in (trust_line(result),) if line]
    out += [f"warning: {w}" for w in result.warnings]
    out.append(f"emitted: {result.emitted}   (train on it: regmix-train mixture={result.emitted.stem} ...)")
    out.append(f"report:  {result.report_dir / 'report.md'}")
    return "\n".join(out)


def previous_report(folder: Path, name: str) -> str | None:
    """The mixture whose report `folder` holds when it is not `name`'s (None: empty or `name`'s)."""
    report = Path(folder) / "report.md"
    if not report.is_file():
        return None
    with open(report, encoding="utf-8", errors="replace") as file:
        first = file.readline().rstrip("\n")
    return None if first == TITLE.format(name=name) else (first.removeprefix("# regmix-fit: ") or "another fit")


def extrapolation_note(nearest_l1: float) -> list[str]:
    """The report's note on extrapolation: how far the chosen mixture is from every trained run."""
    verdict = (
        "far from every trained run: the regressor is extrapolating there; train a few proxies near it "
        "(regmix-propose) before the target run"
        if nearest_l1 > 0.5
        else "within the region the trained runs cover"
    )
    return [
        "## Note on extrapolation",
        "",
        f"The chosen mixture is {nearest_l1:.3f} (L1) from the nearest trained run: {verdict}.",
        "A regressor fitted on a few dozen runs is least reliable at the simplex's edges, where its argmax",
        "tends to land: linear models run to a corner, tree models are flat beyond the data. That is why",
        "`regressor.drive=auto` follows the regressor that ranks held-out runs best (out-of-fold Spearman),",
        "why the choice is re-scored inside a trust region around the trained runs (`choice.trust_radius`;",
        "off in the paper's recipe),",
        "why the cross-check above shows every regressor's view of the choice, and why `simulation.minimums`",
        "keeps domains from being dropped on too little evidence. L1 distance runs from 0 (a trained",
        "mixture) to 2 (no domain in common).",
        "",
    ]


def write_report(result, *, plots: bool = True) -> Path:
    """Write every report file into `result.report_dir`; returns the report.md path."""
    folder = Path(result.report_dir)
    _write_tables(result, folder, plots=plots)
    return write_report_text(result)


def _mixture_line(result) -> str:
    """Where the mixture is, saying only what is true when the report is written."""
    path, name = result.emitted, result.emitted.stem
    if result.mixture_written:
        return f"Emitted: `{path}` (train on it: `regmix-train mixture={name} ...`)."
    if result.emit_error:
        return f"The mixture was **not written** to `{path}`: {result.emit_error}."
    return f"Mixture: `{path}`, written after this report (if it is absent, the fit did not finish: run it again)."


def _write_tables(result, folder: Path, *, plots: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    d = result.details
    result.comparison.to_csv(folder / "comparison.csv", float_format="%.6g")
    table = result.table
    runs = pd.concat(
        [table.weights.add_prefix("w/"), table.losses.add_prefix("loss/"), table.runs[["n_merged"]]], axis=1
    )
    runs.insert(0, "target", d["y"])
    runs.to_csv(folder / "runs.csv", float_format="%.6g")
    predictions = pd.DataFrame({"target": d["y"], **{f"oof/{n}": p for n, p in d["oof"].items()}}, index=table.weights.index)
    predictions.to_csv(folder / "predictions.csv", float_format="%.6g")
    mixture = mixture_frame(result)
    mixture.to_csv(folder / "mixture.csv", float_format="%.6g")
    top = pd.DataFrame(d["top"], columns=table.domains)
    top.insert(0, "predicted", d["top_predicted"])
    top.to_csv(folder / "top_candidates.csv", float_format="%.6g", index_label="rank")
    if plots:
        from analysis.plots import write_plots

        write_plots(result, folder)


def write_report_text(result) -> Path:
    """Write report.md alone (the tables and plots are already there)."""
    folder = Path(result.report_dir)
    d = result.details
    table = result.table
    mixture = mixture_frame(result)
    header, rows = comparison_rows(result.comparison)
    corr = domain_correlations(result)
    test_note = f"; test: {len(result.test_table)} held-out runs" if result.test_table is not None else ""
    lines = [
        TITLE.format(name=result.emitted.stem),
        "",
        f"Target: **{result.target.label}** {result.target.reading}. {_mixture_line(result)}",
        "",
        "## Runs",
        "",
        *[f"- {line.strip()}" for line in result.drops.lines()],
        *([f"- test: {line.strip()}" for line in result.test_drops.lines()] if result.test_drops else []),
        f"- runs table sha256: `{table.sha256()[:16]}...`",
        *outlier_lines(result),
        "",
        f"## Regressors ({d['folds']}-fold out of fold{test_note})",
        "",
        markdown_table(header, rows),
        "",
        f"Driving regressor: **{result.drive}**: {result.drive_reason}.",
        "",
        "## Simulation",
        "",
        *_simulation_lines(result.simulation),
        "",
        "## How sure (predictive distribution: the driver plus its out-of-fold residuals, run noise included)",
        "",
        *[f"**{line}**" if line.startswith("status") else line for line in uncertainty_lines(result)],
        "",
        trust_line(result),
        "",
        f"Predicted {result.target.quantity} of a new run: centre and {result.evidence.get('emitted', {}).get('coverage', 0.8):.0%} "
        "conformal interval (the best run's centre by the fold model that never saw it).",
        "",
        markdown_table(["mixture", "centre", "low", "high"], interval_rows(result)),
        "",
        *calibration_lines(result),
        "",
        "## Constraints",
        "",
        *constraint_lines(result.constraints),
        "",
        (f"## Predicted {result.target.label} (by {result.drive}; higher is better)" if result.target.maximize
         else f"## Predicted {result.target.label} loss (by {result.drive})"),
        "",
        markdown_table(["mixture", f"predicted {result.target.quantity}", ""], predicted_rows(result)),
        "",
        "Cross-check, the same mixtures as every compared regressor predicts them:",
        "",
        markdown_table(
            ["regressor", "chosen", "best run", "prior"],
            [[name, v["chosen"], v["best_run"], v["prior"]] for name, v in result.cross_check.items()],
        ),
        "",
        "## Chosen mixture",
        "",
        markdown_table(
            ["domain", "chosen", "prior", "best run", "lower", "upper", "weight-loss Spearman"],
            [[dom, *row, corr.get(dom, np.nan)] for dom, row in zip(mixture.index, mixture[["chosen", "prior", "best_run", "lower", "upper"]].to_numpy())],
        ),
        "",
    ]
    if result.warnings:
        lines += ["## Warnings", "", *[f"- {w}" for w in result.warnings], ""]
    lines += extrapolation_note(float(result.simulation.get("nearest_run_l1", float("nan"))))
    lines += ["## Files", "", *[f"- `{p.name}`" for p in sorted(folder.iterdir()) if p.name != "report.md"], ""]
    return write_text_atomic(folder / "report.md", "\n".join(lines))
