"""Several sweeps read as one: the rounds of an active search (`sweep=[r0,r1]`).

Each round is an ordinary sweep (regmix-sample's, or regmix-propose's next batch), so its runs
land in `runs/<round>/` (local), in W&B group `<round>` (regmix-train's default group) and
carry `sweep: <round>` in their records. Reading several rounds concatenates their raw runs
(ids prefixed `<round>/` so they stay unique) and hands them to the one validation path, which
merges repeated mixtures with their spread and counts the runs each round gave
(`DropReport.rounds`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from analysis.runs_table import DropReport, RawRuns

#: A sweep name becomes file and folder names (regmix.sweep.files.SWEEP_NAME).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def sweep_names(sweep) -> list[str]:
    """`sweep` (a name or a list of names) as a list of distinct names, in the order given."""
    names = [sweep] if isinstance(sweep, str) else list(sweep or [])
    if not names:
        raise AnalysisError("sweep=[] names no sweep; give one (sweep=r0) or several ('sweep=[r0,r1]')")
    bad = [n for n in names if not isinstance(n, str) or not _NAME.match(n)]
    if bad:
        raise AnalysisError(f"sweep name(s) {bad} are not usable; use letters, digits, '_', '-', '.' ('sweep=[r0,r1]')")
    return list(dict.fromkeys(names))


def joined_name(sweep) -> str:
    """One name for several sweeps (report folders, default emitted names): 'r0-r1'."""
    return "-".join(sweep_names(sweep))


def local_roots(sweeps: Sequence[str], runs_dir: str) -> list[Path]:
    """`<runs_dir>/<sweep>` for each sweep; an `AnalysisError` naming any that does not exist."""
    roots = [Path(runs_dir) / s for s in sweeps]
    unknown = [s for s, root in zip(sweeps, roots) if not root.is_dir()]
    if unknown:
        raise AnalysisError(
            f"sweep(s) {unknown} unknown: no run folder {', '.join(str(Path(runs_dir) / s) for s in unknown)}; "
            "check the names (or runs_dir=), or train them first (regmix-train -m sweep=<name> ...)"
        )
    return roots


def concat_raw(parts: Sequence[RawRuns], names: Sequence[str], *, source: str) -> RawRuns:
    """Raw runs of several rounds as one table; ids become `<round>/<id>` when there are several."""
    if len(parts) == 1:
        return parts[0]
    runs, weights, losses, metrics, dropped = [], [], [], [], []
    for name, raw in zip(names, parts):
        rename = {i: f"{name}/{i}" for i in raw.weights.index}
        runs.append(raw.runs.rename(index=rename))
        weights.append(raw.weights.rename(index=rename))
        losses.append(raw.losses.rename(index=rename))
        metrics.append((raw.metrics if raw.metrics is not None else pd.DataFrame(index=raw.losses.index)).rename(index=rename))
        dropped.extend((f"{name}/{i}", reason, detail) for i, reason, detail in raw.dropped)
        # A record without its sweep name still belongs to the round it was read from.
        runs[-1]["sweep"] = runs[-1]["sweep"].where(runs[-1]["sweep"].notna(), name)
    prior = next((raw.prior for raw in parts if raw.prior), None)
    return RawRuns(
        source=source,
        runs=pd.concat(runs),
        weights=pd.concat(weights).astype(np.float64),
        losses=pd.concat(losses).astype(np.float64),
        metrics=pd.concat(metrics).astype(np.float64),
        prior=prior,
        dropped=dropped,
        location=" + ".join(raw.location for raw in parts),
    )



def check_rounds_used(names: Sequence[str], raw: RawRuns, drops: DropReport) -> None:
    """Refuse a learned-from round none of whose runs survived validation: fitting without it
    while the command names it would claim evidence that is not there.

    Rounds are told apart by the `<round>/` prefix `concat_raw` gives the run ids (local rounds);
    a source that reads several rounds as one (W&B groups) is counted by `drops.rounds` alone.
    """
    if len(names) < 2:
        return
    dropped: dict[str, list[str]] = {}
    for run_id, reason, _ in drops.dropped:
        dropped.setdefault(str(run_id), []).append(reason)
    read = [str(i) for i in raw.weights.index] + [str(i) for i, _, _ in raw.dropped]
    for name in names:
        ids = [i for i in read if i.startswith(f"{name}/")]
        if not ids or any(i not in dropped for i in ids):
            continue
        reasons: dict[str, int] = {}
        for i in ids:
            for reason in dropped[i][:1]:
                reasons[reason] = reasons.get(reason, 0) + 1
        why = "; ".join(f"{n} {reason}" for reason, n in reasons.items())
        raise AnalysisError(
            f"round {name} contributes no run: all {len(ids)} of its runs were dropped ({why}); "
            f"fix them, or leave {name} out of sweep=[{','.join(names)}]"
        )
