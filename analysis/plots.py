"""Figures of a fit (matplotlib, Agg backend: no display needed).

    pred_vs_actual.png      per regressor: out-of-fold (and test) prediction vs observed target loss
    domain_correlation.png  per domain: Spearman correlation of its weight with the target loss
    mixture_vs_prior.png    per domain: chosen mixture vs token prior vs best run
    intervals.png           predictive intervals of unseen runs vs observed; intervals of the chosen mixture and its rivals
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from analysis.result import domain_correlations, mixture_frame  # noqa: E402
from analysis.run_outliers import MAX_NAMED  # noqa: E402

DPI = 110


def _pred_vs_actual(result, path: Path) -> None:
    d = result.details
    names = list(result.comparison.index)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        row = result.comparison.loc[name]
        ax.scatter(d["y"], d["oof"][name], s=8, alpha=0.6, label=f"out of fold (rho {row['oof_spearman']:.3f})")
        if name in d["test"]:
            ax.scatter(d["y_test"], d["test"][name], s=8, alpha=0.6, label=f"test (rho {row['test_spearman']:.3f})")
        if name == result.drive and result.outliers:  # the runs the fit cannot explain, by id
            for o in result.outliers[:MAX_NAMED]:
                ax.annotate(o.run, (o.observed, o.predicted), xytext=(4, 4), textcoords="offset points",
                            fontsize=7, color="tab:red")
            ax.scatter([o.observed for o in result.outliers], [o.predicted for o in result.outliers],
                       s=30, facecolors="none", edgecolors="tab:red", label="cannot explain (report: Runs)")
        values = np.concatenate([d["y"], d["oof"][name]])
        lo, hi = float(np.min(values)), float(np.max(values))
        ax.plot([lo, hi], [lo, hi], color="grey", lw=1)
        ax.set(title=name, xlabel=f"observed {result.target.label} loss", ylabel="predicted")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _domain_correlation(result, path: Path) -> None:
    corr = domain_correlations(result).sort_values()
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(corr) + 1.5))
    ax.barh(corr.index, corr.to_numpy(), color=np.where(corr.to_numpy() < 0, "tab:green", "tab:red"))
    ax.axvline(0, color="grey", lw=1)
    ax.set(xlabel=f"Spearman(weight, {result.target.label} loss) across runs", title="more weight -> lower loss (left)")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _mixture_vs_prior(result, path: Path) -> None:
    frame = mixture_frame(result)[["chosen", "prior", "best_run"]]
    x = np.arange(len(frame))
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(frame) + 2), 4))
    for i, column in enumerate(frame.columns):
        ax.bar(x + (i - 1) * 0.27, frame[column].to_numpy(), width=0.27, label=column.replace("_", " "))
    ax.set_xticks(x, frame.index, rotation=60, ha="right", fontsize=8)
    ax.set(ylabel="weight", title=f"chosen mixture for {result.target.label}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _intervals(result, path: Path) -> None:
    """Predictive intervals of runs the fit never saw (test, else out of fold) against their
    observed loss, and the intervals for the chosen mixture, the prior, uniform and the best run."""
    d = result.details
    low, high, y = d["interval_check"]
    on = (result.evidence.get("calibration") or {}).get("on", "out of fold")
    mid = (low + high) / 2
    inside = (y >= low) & (y <= high)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.errorbar(y, mid, yerr=[mid - low, high - mid], fmt="none", ecolor=np.where(inside, "tab:blue", "tab:red"), alpha=0.6)
    lo, hi = float(min(y.min(), low.min())), float(max(y.max(), high.max()))
    ax1.plot([lo, hi], [lo, hi], color="grey", lw=1)
    ax1.set(title=f"{result.drive}, {on}: {inside.mean():.0%} inside the intervals (red: outside)",
            xlabel=f"observed {result.target.label} loss", ylabel="predictive interval")
    labels = list(result.intervals)
    values = np.array([result.intervals[k] for k in labels])
    ax2.errorbar(np.arange(len(labels)), values[:, 1], yerr=[values[:, 1] - values[:, 0], values[:, 2] - values[:, 1]],
                 fmt="o", capsize=4)
    ax2.set_xticks(np.arange(len(labels)), [k.replace("_", " ") for k in labels])
    ax2.set(title=f"predicted {result.target.quantity} (status: {result.status})",
            ylabel=f"{result.target.label}" + (" (higher is better)" if result.target.maximize else " loss"))
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def reliability_plot(scores, path: Path) -> Path:
    """Reliability diagram of P(a beats b) (`analysis.calibration.CalibrationScores`): per bin,
    the mean predicted P against the observed frequency; the diagonal is perfect calibration."""
    bins = [b for b in scores.bins if b["pairs"]]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 4))
    ax1.plot([0, 1], [0, 1], color="grey", lw=1)
    ax1.plot([b["predicted"] for b in bins], [b["observed"] for b in bins], "o-")
    ax1.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted P(a beats b)", ylabel="observed frequency",
            title=f"{scores.pairs:,} pairs of {scores.on} runs: ECE {scores.ece:.3f}, Brier {scores.brier:.3f}")
    levels = list(scores.coverage)
    ax2.plot([0, 1], [0, 1], color="grey", lw=1)
    ax2.plot(levels, [scores.coverage[c] for c in levels], "o-")
    ax2.set(xlim=(0, 1), ylim=(0, 1), xlabel="nominal interval coverage", ylabel=f"share of {scores.on} runs inside",
            title="predictive intervals")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def write_plots(result, folder: Path) -> list[Path]:
    """Write the figures into `folder`; returns their paths."""
    paths = [folder / "pred_vs_actual.png", folder / "domain_correlation.png", folder / "mixture_vs_prior.png"]
    _pred_vs_actual(result, paths[0])
    _domain_correlation(result, paths[1])
    _mixture_vs_prior(result, paths[2])
    if result.details.get("interval_check") is not None and result.intervals:
        paths.append(folder / "intervals.png")
        _intervals(result, paths[-1])
    return paths
