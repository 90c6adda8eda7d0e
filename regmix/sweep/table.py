"""A sweep's mixtures table on disk: `sweeps/<sweep>.mixtures.csv`.

CSV: an `index` column, then one weight column per train domain. Written by regmix-sample
(`regmix.sweep.sample`), read by regmix-train (`mixture_at`) and by `regmix-sweep`'s checks.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from regmix.atomic_file import write_text_atomic
from regmix.mixture import Mixture, check_domains, invalid_rows
from regmix.sampler import INDEX_COLUMN
from regmix.sweep.files import TABLE_SUFFIX
from regmix.errors import RegmixError


class MixturesTableError(RegmixError):
    """A mixtures table that is missing or cannot be used; the message says the fix."""


def mixtures_from_table(table: pd.DataFrame) -> list[Mixture]:
    """Each row of a mixtures table as a `Mixture` (domains = the non-index columns)."""
    domains = [c for c in table.columns if c != INDEX_COLUMN]
    return [Mixture.from_vector(row, domains) for row in table[domains].to_numpy()]


def write_mixtures_table(path: str | os.PathLike, table: pd.DataFrame) -> str:
    """Write the table as CSV (atomically); return the sha256 of the file's text."""
    text = table.to_csv(index=False)
    write_text_atomic(path, text)
    return hashlib.sha256(text.encode()).hexdigest()


def _sweep_hint(path: Path) -> str:
    name = path.name
    sweep = name[: -len(TABLE_SUFFIX)] if name.endswith(TABLE_SUFFIX) else "<name>"
    return f"regmix-sample sweep={sweep}"


def read_mixtures_table(path: str | os.PathLike, domains: Sequence[str] | None = None) -> pd.DataFrame:
    """Read and validate a mixtures table (CSV: `index`, then one weight column per domain).

    With `domains`, columns naming other domains are an error, domains the table lacks get
    weight 0, and the columns come back in `domains` order. Every row must be a valid mixture.
    """
    path = Path(path)
    if not path.is_file():
        raise MixturesTableError(f"no mixtures table at {path}; run `{_sweep_hint(path)}` first")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise MixturesTableError(
            f"{path} is not a readable CSV ({exc}); regenerate it with `{_sweep_hint(path)} overwrite=true`"
        ) from None
    if INDEX_COLUMN not in table.columns:
        raise MixturesTableError(
            f"{path} has no {INDEX_COLUMN!r} column; a mixtures table starts with `index`, then one column per domain"
        )
    columns = [c for c in table.columns if c != INDEX_COLUMN]
    if not columns:
        raise MixturesTableError(
            f"{path} has no domain columns; regenerate it with `{_sweep_hint(path)} overwrite=true`"
        )
    if domains is not None:
        domains = list(domains)
        try:
            check_domains(columns, domains, what=f"mixtures table {path}")
        except ValueError as exc:
            raise MixturesTableError(str(exc)) from None
        for d in domains:
            if d not in table.columns:
                table[d] = 0.0
        columns = domains
    index = pd.to_numeric(table[INDEX_COLUMN], errors="coerce")
    if index.isna().any() or (index % 1 != 0).any() or (index < 0).any():
        raise MixturesTableError(f"{path}: column 'index' must hold whole numbers >= 0")
    if index.duplicated().any():
        dup = sorted(index[index.duplicated()].astype(int).unique().tolist())[:5]
        raise MixturesTableError(f"{path}: index value(s) {dup} appear more than once; each row needs its own index")
    weights = table[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    sums = weights.sum(axis=1)
    bad = invalid_rows(weights)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise MixturesTableError(
            f"row index {int(index.iloc[i])} of {path} is not a valid mixture (weights must be finite "
            f"numbers >= 0 summing to 1; this row sums to {sums[i]:.6g}); fix the row or regenerate "
            f"the table with `{_sweep_hint(path)} overwrite=true`"
        )
    out = pd.DataFrame(weights, columns=columns)
    out.insert(0, INDEX_COLUMN, index.astype(np.int64).to_numpy())
    return out


def mixture_at(path: str | os.PathLike, index: int, domains: Sequence[str] | None = None) -> Mixture:
    """The mixture in row `index` of the table at `path` (validated against `domains`)."""
    table = read_mixtures_table(path, domains)
    hit = table[table[INDEX_COLUMN] == index]
    if hit.empty:
        indices = table[INDEX_COLUMN]
        raise MixturesTableError(
            f"mixture.index={index} is not in {path} (valid: {int(indices.min())}..{int(indices.max())}); "
            "pick an index in that range"
        )
    columns = [c for c in table.columns if c != INDEX_COLUMN]
    return Mixture.from_vector(hit[columns].to_numpy()[0], columns)
