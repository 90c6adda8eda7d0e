"""The runs table: what every source yields, and its validation.

A source yields `RawRuns` (one row per run, anything goes); `validate_runs` turns it into a
`RunsTable` that the rest of the analysis can trust:

- finished runs only;
- every run names the same domains (absent = not named, never silently 0);
- weights finite, >= 0 and summing to 1 within `regmix.mixture.SUM_TOLERANCE` (then renormalised);
- finite losses on every domain the target needs (a negative cross-entropy, or a value beyond
  `MAX_ABS_TARGET`, is refused naming the run and key: a logging error, not a run to drop);
- duplicate mixtures merged: losses averaged, their standard deviation kept (the noise estimate);
- one model size, corpus, token budget and training setup (shape, lr, eval slice) unless `allow_mixed`.

What was dropped and why is returned as a `DropReport`, never silently lost.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from regmix.mixture import SUM_TOLERANCE
from regmix.run_identity import setup_differences

#: Columns of `RawRuns.runs` / `RunsTable.runs` (the per-run metadata).
META_COLUMNS = ("source", "status", "model", "corpus", "tokens", "setup", "sweep", "mixture_index")
#: Metadata that must agree across runs unless allow_mixed (name in messages -> column).
#: `setup` is what else makes losses comparable: every setting of the run's identity but its
#: mixture and seed (`regmix.run_identity.setup_line`); a model *name* says nothing about `model.d_model=...`.
IDENTITY_COLUMNS = {"model size": "model", "corpus": "corpus", "token budget": "tokens", "training setup": "setup"}
#: Plurals for the refusal line ("the runs mix corpora", not "corpuss").
_PLURALS = {"corpus": "corpora"}
#: Weights equal to this many decimals are the same mixture (the paper's grid is 1e-3, ours 2e-4).
DUPLICATE_DECIMALS = 6
#: Fewest usable runs: K-fold comparison and a regression need a few.
MIN_RUNS = 4
#: Largest target value taken as a real measurement. A cross-entropy in nats/token is at most a
#: few dozen even for a diverged run; a value this large is a logging or unit error, and beside it
#: the regressors (LightGBM and XGBoost compute in float32) would see every other run as equal.
MAX_ABS_TARGET = 1e15


@dataclass
class RawRuns:
    """Runs as a source found them: metadata, weights and losses, indexed by run id.

    `weights` / `losses` hold NaN where a run did not name a domain / log a loss.
    """

    source: str
    runs: pd.DataFrame
    weights: pd.DataFrame
    losses: pd.DataFrame
    """Per-domain validation losses (cross-entropies, nats/token), by domain."""
    prior: dict[str, float] | None = None
    """The corpus token prior when the source knows it (local records carry token counts)."""
    metrics: pd.DataFrame | None = None
    """Other numeric results by key (W&B summary keys, CSV columns beside the losses): targets
    too (`target=<key>`); validation carries the ones a target names into the table's values."""
    dropped: list[tuple[str, str, str]] = field(default_factory=list)
    """(run id, reason, detail) for rows the source itself could not read."""
    location: str = ""
    """Where the source looked, for error messages."""


@dataclass
class RunsTable:
    """Validated runs: every row finished, every weight row summing to 1, target losses finite."""

    source: str
    runs: pd.DataFrame
    """Metadata per run (META_COLUMNS, plus n_merged and merged_ids)."""
    weights: pd.DataFrame
    """Run x train domain weights; each row sums to 1."""
    losses: pd.DataFrame
    """Run x evaluated domain losses (mean over merged duplicates)."""
    spread: pd.DataFrame
    """Standard deviation of each loss over merged duplicates (NaN for single runs)."""
    prior: dict[str, float] | None = None

    @property
    def domains(self) -> list[str]:
        return list(self.weights.columns)

    @property
    def loss_domains(self) -> list[str]:
        return list(self.losses.columns)

    def __len__(self) -> int:
        return len(self.weights)

    def sha256(self) -> str:
        """Hash of the table's content (ids, weights, losses): names the exact data a fit used."""
        digest = hashlib.sha256()
        for frame in (self.weights, self.losses):
            digest.update(frame.to_csv(float_format="%.10g").encode())
        return digest.hexdigest()

    def identity(self, column: str) -> list:
        """Distinct non-null values of a metadata column (e.g. 'model')."""
        return sorted({str(v) for v in self.runs[column].dropna()})


@dataclass
class DropReport:
    """What validation did to the table: rows dropped (with reasons) and duplicates merged."""

    source: str
    total: int
    dropped: list[tuple[str, str, str]] = field(default_factory=list)
    merged: list[list[str]] = field(default_factory=list)
    noise: dict[str, float] = field(default_factory=dict)
    """Median standard deviation of each loss over duplicate groups (only when there are some)."""
    rounds: dict[str, int] = field(default_factory=dict)
    """Runs used per sweep (round), in the order read, counted before duplicates are merged."""

    def lines(self, max_ids: int = 8) -> list[str]:
        """A short human summary, one line per reason, naming the first few runs."""
        kept = self.total - len(self.dropped) - sum(len(g) - 1 for g in self.merged)
        out = [f"{self.source}: {self.total} runs read, {kept} used"]
        by_reason: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for run_id, reason, detail in self.dropped:
            by_reason[reason].append((run_id, detail))
        for reason, items in by_reason.items():
            shown = ", ".join(f"{i} ({d})" if d else str(i) for i, d in items[:max_ids])
            more = f", ... {len(items) - max_ids} more" if len(items) > max_ids else ""
            out.append(f"  dropped {len(items)}: {reason}: {shown}{more}")
        if self.merged:
            n_runs = sum(len(g) for g in self.merged)
            example = " + ".join(self.merged[0][:4])
            out.append(f"  merged {n_runs} runs with identical mixtures into {len(self.merged)} (e.g. {example})")
            if self.noise:
                noise = ", ".join(f"{d} {v:.4f}" for d, v in list(self.noise.items())[:4])
                out.append(f"  noise (median std of loss over duplicates): {noise}")
        if len(self.rounds) > 1:
            out.append("  by round: " + ", ".join(f"{name} {n}" for name, n in self.rounds.items()))
        return out


def empty_frames(ids: Sequence[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Empty (runs, weights, losses) frames with the right index, for sources with nothing."""
    index = pd.Index(list(ids), name="run")
    return (
        pd.DataFrame(index=index, columns=list(META_COLUMNS), dtype=object),
        pd.DataFrame(index=index, dtype=np.float64),
        pd.DataFrame(index=index, dtype=np.float64),
    )


def _drop(report: DropReport, mask: np.ndarray, ids: pd.Index, reason: str, details=None) -> None:
    for pos in np.flatnonzero(mask):
        report.dropped.append((str(ids[pos]), reason, "" if details is None else details[pos]))


def _no_runs_left(report: DropReport, raw: RawRuns, what: str) -> AnalysisError:
    summary = "; ".join(line.strip() for line in report.lines(max_ids=3)[1:])
    return AnalysisError(f"{what} in {raw.location or raw.source}: {summary}")


def logged_keys(raw: RawRuns) -> list[str]:
    """Keys some run logged a value for, a target may name: domain losses, then other metrics
    (NaN included: validation names those runs)."""
    metrics = [] if raw.metrics is None else [k for k in raw.metrics.columns if k not in raw.losses.columns]
    return [*raw.losses.columns, *metrics]


def check_usable(raw: RawRuns) -> DropReport:
    """Raise `AnalysisError` when `raw` has no runs, none readable or none finished; else start
    the drop report with what the source itself could not read."""
    report = DropReport(source=raw.source, total=len(raw.weights) + len(raw.dropped))
    report.dropped.extend(raw.dropped)
    where = raw.location or raw.source
    if report.total == 0:
        raise AnalysisError(
            f"source {raw.source!r} has no runs (looked in {where}); "
            "check the path or sweep name, or train some runs first"
        )
    if len(raw.weights) == 0:
        raise _no_runs_left(report, raw, "no readable runs")
    status = raw.runs["status"].astype(str)
    if not (status == "finished").any():
        counts = ", ".join(f"{s} {n}" for s, n in status.value_counts().items())
        raise AnalysisError(
            f"none of the {len(status)} runs in {where} is finished ({counts}); "
            "only finished runs are used: wait for them, or rerun the failed ones"
        )
    return report


def validate_runs(
    raw: RawRuns,
    *,
    required_losses: Sequence[str],
    allow_mixed: bool = False,
    min_runs: int = MIN_RUNS,
    goal: str = "minimize",
) -> tuple[RunsTable, DropReport]:
    """Validate `raw` into a `RunsTable` (see the module docstring); raise `AnalysisError` when
    nothing usable is left, naming what went wrong with which runs and the fix.

    `required_losses` are the target's keys: domain losses, or metrics of `raw.metrics` (carried
    into the table's `losses`). With `goal='minimize'` the domain losses among them must be >= 0."""
    report = check_usable(raw)
    runs, weights, losses = raw.runs, raw.weights, _with_metrics(raw, required_losses)
    ids = weights.index
    if ids.has_duplicates:
        dup = ids.duplicated(keep="first")
        _drop(report, dup, ids, "duplicate run id (kept the first)")
        runs, weights, losses = runs[~dup], weights[~dup], losses[~dup]
        ids = weights.index

    status = runs["status"].astype(str).to_numpy()
    unfinished = status != "finished"
    _drop(report, unfinished, ids, "not finished", [f"status {s}" for s in status])
    keep = ~unfinished

    # Every run must name the same domains: the most common set wins, others are dropped.
    named = weights.notna().to_numpy()
    patterns = [tuple(row) for row in named]
    majority = Counter(p for p, k in zip(patterns, keep) if k).most_common(1)[0][0]
    domains = [d for d, on in zip(weights.columns, majority) if on]
    if not domains:
        raise AnalysisError(f"the runs of {raw.source} name no mixture domains; check the weight columns/prefix")
    odd = keep & np.array([p != majority for p in patterns])
    details = [""] * len(patterns)
    for pos in np.flatnonzero(odd):
        missing = [d for d, a, b in zip(weights.columns, majority, patterns[pos]) if a and not b]
        extra = [d for d, a, b in zip(weights.columns, majority, patterns[pos]) if b and not a]
        details[pos] = f"lacks {missing}" if missing else f"also names {extra}"
    _drop(report, odd, ids, "mixture names other domains than the other runs", details)
    keep &= ~odd

    w = weights[domains].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad_value = keep & ~np.all(np.isfinite(w) & (w >= 0), axis=1)
    _drop(report, bad_value, ids, "weights not finite and >= 0")
    keep &= ~bad_value
    sums = np.where(keep, np.nansum(np.where(np.isfinite(w), w, 0.0), axis=1), 1.0)
    off = keep & (np.abs(sums - 1.0) > SUM_TOLERANCE)
    _drop(report, off, ids, f"weights do not sum to 1 (tolerance {SUM_TOLERANCE:g}); fix the table or rescale",
          [f"sum {s:.4g}" for s in sums])
    keep &= ~off

    for domain in required_losses:
        if domain not in losses.columns:
            logged = sorted(losses.columns)
            raise AnalysisError(
                f"no run of {raw.source} logged a loss for {domain!r}; logged domains are {logged}; "
                "pick the target from those"
            )
    target_losses = losses[list(required_losses)].to_numpy(dtype=np.float64)
    bad_loss = keep & ~np.all(np.isfinite(target_losses), axis=1)
    loss_details = [
        ", ".join(f"{d}={v}" for d, v in zip(required_losses, row) if not np.isfinite(v)) for row in target_losses
    ]
    _drop(report, bad_loss, ids, "missing or non-finite target loss (NaN/inf)", loss_details)
    keep &= ~bad_loss
    cross_entropy = [k in raw.losses.columns and goal == "minimize" for k in required_losses]
    _refuse_implausible(raw, ids[keep], target_losses[keep], list(required_losses), np.array(cross_entropy, dtype=bool))

    if not np.any(keep):
        raise _no_runs_left(report, raw, "no usable runs")

    runs = runs[keep].copy()
    report.rounds = runs_per_round(runs)
    w = w[keep] / sums[keep][:, None]
    weights = pd.DataFrame(w, index=runs.index, columns=domains)
    losses = losses[keep].astype(np.float64)
    losses = losses.loc[:, losses.notna().any(axis=0)]

    if not allow_mixed:
        for what, column in IDENTITY_COLUMNS.items():
            values = runs[column].dropna().astype(str)
            if values.nunique() > 1:
                counts = ", ".join(f"{v!r} ({n} runs)" for v, n in values.value_counts().items())
                if column == "setup":  # long lines: name only the settings that differ
                    counts = setup_differences(dict(values.value_counts().items()))
                raise AnalysisError(
                    f"the runs mix {_PLURALS.get(what, what + 's')}: {counts}; fit one {what} at a time (narrow the source) "
                    "or pass allow_mixed=true"
                )

    table = _merge_duplicates(raw, runs, weights, losses, report)
    if len(table) < min_runs:
        raise _no_runs_left(report, raw, f"only {len(table)} usable run(s), need at least {min_runs}")
    return table, report


def _with_metrics(raw: RawRuns, keys: Sequence[str]) -> pd.DataFrame:
    """The losses, plus the metrics among `keys` that are not losses (a target may name either)."""
    if raw.metrics is None:
        return raw.losses
    extra = [k for k in keys if k not in raw.losses.columns and k in raw.metrics.columns]
    return pd.concat([raw.losses, raw.metrics[extra].reindex(raw.losses.index)], axis=1) if extra else raw.losses


def _refuse_implausible(raw: RawRuns, ids: pd.Index, values: np.ndarray, keys: list[str],
                        cross_entropy: np.ndarray) -> None:
    """Refuse a value no run can have: beyond MAX_ABS_TARGET, or a negative cross-entropy."""
    for what, bad in (
        (f"beyond {MAX_ABS_TARGET:g} in size, no measurement", np.abs(values) >= MAX_ABS_TARGET),
        ("negative, and a cross-entropy loss never is", (values < 0) & cross_entropy[None, :]),
    ):
        if bad.any():
            row, col = np.argwhere(bad)[0]
            more = int(bad.sum()) - 1
            raise AnalysisError(
                f"run {ids[row]} of {raw.location or raw.source} logged {keys[col]} = {values[row, col]:g}: {what}"
                + (f" ({more} more such value(s))" if more else "")
                + "; fix or remove that record (a logging or unit error) and fit again"
            )


def runs_per_round(runs: pd.DataFrame) -> dict[str, int]:
    """Runs per sweep (`runs.sweep`; '?' where a run recorded none), in the order they appear."""
    sweeps = runs["sweep"].astype(object).where(runs["sweep"].notna(), "?").astype(str)
    counts = sweeps.value_counts()
    return {name: int(counts[name]) for name in pd.unique(sweeps)}


def _merge_duplicates(
    raw: RawRuns, runs: pd.DataFrame, weights: pd.DataFrame, losses: pd.DataFrame, report: DropReport
) -> RunsTable:
    key = pd.Series(
        [tuple(row) for row in np.round(weights.to_numpy(), DUPLICATE_DECIMALS)], index=weights.index
    )
    group = key.map({k: i for i, k in enumerate(dict.fromkeys(key))}).to_numpy()
    first = ~pd.Series(group).duplicated().to_numpy()
    runs = runs.copy()
    runs["n_merged"] = 1
    runs["merged_ids"] = ""
    if first.all():
        spread = pd.DataFrame(np.nan, index=losses.index, columns=losses.columns)
        return RunsTable(raw.source, runs, weights, losses, spread, raw.prior)

    ids = weights.index.to_numpy()
    mean = losses.groupby(group, sort=False).mean()
    std = losses.groupby(group, sort=False).std(ddof=1)
    sizes = pd.Series(group).value_counts()
    keep_ids = ids[first]
    for g, run_id in zip(pd.unique(group), keep_ids):
        if sizes[g] > 1:
            members = [str(i) for i in ids[group == g]]
            report.merged.append(members)
            runs.loc[run_id, "n_merged"] = len(members)
            runs.loc[run_id, "merged_ids"] = " ".join(members[1:])
    mean.index = std.index = pd.Index(keep_ids, name=weights.index.name)
    # Single runs have std NaN (ddof=1): the noise estimate comes from real duplicates only.
    report.noise = {d: float(v) for d, v in std.median(skipna=True).dropna().items()}
    return RunsTable(raw.source, runs.loc[keep_ids], weights.loc[keep_ids], mean, std, raw.prior)
