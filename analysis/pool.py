"""Candidates of an active round: a given pool of mixtures, or draws of RegMix's generator.

Either way the candidates come back as a float64 matrix in the runs' domain order, without any
mixture already trained (to 6 decimals, the runs table's duplicate rule): a round never spends
a proxy on a mixture whose loss is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.candidates import CandidateSpace, iter_candidates
from analysis.emit import round_weights
from analysis.errors import AnalysisError
from analysis.runs_table import DUPLICATE_DECIMALS
from regmix.mixture import SUM_TOLERANCE, invalid_rows
from regmix.sampler import INDEX_COLUMN


def _keys(matrix: np.ndarray) -> list[tuple]:
    return [tuple(row) for row in np.round(matrix, DUPLICATE_DECIMALS)]


def untrained(candidates: np.ndarray, trained: np.ndarray) -> np.ndarray:
    """Positions of the candidates that are neither trained nor a repeat of an earlier candidate."""
    seen = set(_keys(trained))
    keep = []
    for pos, key in enumerate(_keys(candidates)):
        if key not in seen:
            seen.add(key)
            keep.append(pos)
    return np.asarray(keep, dtype=np.int64)


def read_pool(path: str, domains: Sequence[str], *, prefix: str = "") -> tuple[np.ndarray, np.ndarray]:
    """The pool at `path` as (row labels, weights in `domains` order); an `AnalysisError` for a
    pool that cannot be used (missing, unreadable, other domains, rows that are not mixtures)."""
    file = Path(path)
    if not file.is_file():
        raise AnalysisError(f"candidates={path}: no such file; give a mixtures table (index, then one column per domain)")
    try:
        table = pd.read_csv(file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise AnalysisError(f"candidates={path} is not a readable CSV ({str(exc).splitlines()[0]})") from None
    named = {c[len(prefix) :]: c for c in table.columns if c != INDEX_COLUMN and c.startswith(prefix)}
    missing, extra = sorted(set(domains) - set(named)), sorted(set(named) - set(domains))
    if missing or extra:
        raise AnalysisError(
            f"candidates={path} names other domains than the runs: missing {missing}, extra {extra}; "
            "give a pool over the runs' domains (or set candidates_prefix= to strip a column prefix)"
        )
    if table.empty:
        raise AnalysisError(f"candidates={path} has no rows; give at least k mixtures")
    weights = table[[named[d] for d in domains]].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    labels = table[INDEX_COLUMN].to_numpy() if INDEX_COLUMN in table.columns else np.arange(len(table))
    sums = weights.sum(axis=1)
    bad = invalid_rows(weights)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise AnalysisError(
            f"candidates={path}: row {labels[row]} is not a mixture (weights must be finite, >= 0 and sum to 1 "
            f"within {SUM_TOLERANCE:g}; it sums to {sums[row]:.6g}); fix or drop the row"
        )
    return labels, weights / sums[:, None]


def draw_candidates(space: CandidateSpace, n: int, *, seed: int, decimals: int, chunk_rows: int = 65_536) -> np.ndarray:
    """`n` generator candidates within the space's caps and minimums, rounded to `decimals`
    (what a proxy would train on), as float64 in the space's domain order."""
    rows = [
        np.array([list(round_weights(dict(zip(space.domains, map(float, w))), decimals, upper=space.upper).values())
                  for w in chunk])
        for chunk in iter_candidates(space, n, chunk_rows=chunk_rows, seed=seed)
    ]
    return np.concatenate(rows) if rows else np.empty((0, len(space.domains)))
