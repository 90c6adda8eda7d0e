"""Run source: a mixtures table and a losses table joined on an index column.

Column names map to domain names by stripping a prefix/suffix and applying `rename`, so the
paper's released data (`train_the_pile_<d>`, `metric/the_pile_<d>_val_loss`) loads as `<d>`.
The losses table's other numeric columns are kept by their own names as metrics (a target may
name one, e.g. a downstream accuracy with `target_goal=maximize`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from analysis.runs_table import META_COLUMNS, RawRuns


def _read(path: str | None, what: str, key: str) -> pd.DataFrame:
    if not path:
        raise AnalysisError(f"source=csv needs source.{key}=<{what} CSV path>")
    file = Path(path)
    if not file.is_file():
        raise AnalysisError(f"{what} table {file} does not exist; fix source.{key}")
    try:
        return pd.read_csv(file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        reason = " ".join(str(exc).split())  # pandas' messages span lines; ours is one line
        raise AnalysisError(f"{what} table {file} is not a readable CSV ({reason}); fix source.{key}") from None


def _domain_columns(
    frame: pd.DataFrame, *, prefix: str, suffix: str, rename: dict[str, str], key: str, path: str
) -> dict[str, str]:
    """Column -> domain for the columns that match prefix/suffix (all but the index if neither)."""
    mapping = {}
    for column in frame.columns:
        if not column.startswith(prefix) or not column.endswith(suffix):
            continue
        domain = column[len(prefix) : len(column) - len(suffix)]
        domain = rename.get(domain, domain)
        if domain:
            mapping[column] = domain
    if not mapping:
        raise AnalysisError(
            f"no column of {path} matches {key}_prefix={prefix!r} / {key}_suffix={suffix!r} "
            f"(columns: {list(frame.columns)[:6]}); fix source.{key}_prefix / source.{key}_suffix"
        )
    clashes = [d for d in set(mapping.values()) if list(mapping.values()).count(d) > 1]
    if clashes:
        raise AnalysisError(f"several {key} columns of {path} map to domain(s) {sorted(clashes)}; fix source.rename")
    return mapping


def _indexed(frame: pd.DataFrame, index: str, what: str, path: str) -> pd.DataFrame:
    if index not in frame.columns:
        raise AnalysisError(
            f"{what} table {path} has no index column {index!r} (columns: {list(frame.columns)[:6]}...); "
            "set source.index"
        )
    frame = frame.set_index(frame[index].astype(str)).drop(columns=[index])
    frame.index.name = "run"
    repeated = frame.index[frame.index.duplicated()].unique()
    if len(repeated):
        # Which weights go with which losses is ambiguous, and keeping one row would drop data
        # silently; repeated seeds of one mixture need ids of their own (validation merges them).
        shown = ", ".join(map(str, repeated[:5])) + (f", ... {len(repeated) - 5} more" if len(repeated) > 5 else "")
        raise AnalysisError(
            f"{what} table {path} repeats index value(s) {shown} in column {index!r}; give every row its own "
            "index (e.g. <mixture>-<seed> for repeated seeds, in both tables) or set source.index to a unique column"
        )
    return frame


def _numeric(frame: pd.DataFrame, what: str, path: str) -> pd.DataFrame:
    out = frame.apply(pd.to_numeric, errors="coerce")
    bad = [c for c in frame.columns if out[c].isna().sum() > frame[c].isna().sum()]
    if bad:
        raise AnalysisError(f"{what} column(s) {bad[:5]} of {path} hold non-numbers; fix the table or the column mapping")
    return out.astype(np.float64)


def _metric_columns(frame: pd.DataFrame, *, taken: set[str]) -> pd.DataFrame:
    """The losses table's other numeric columns, by their own names: metrics a target may name
    (`target=<column>`). Text columns (notes, labels) are left out; a name a domain took is too."""
    out = frame.apply(pd.to_numeric, errors="coerce")
    numeric = [c for c in frame.columns if c not in taken and out[c].isna().sum() == frame[c].isna().sum()]
    return out[numeric].astype(np.float64)


def load_csv_runs(
    *,
    mixtures: str | None,
    losses: str | None,
    index: str = "index",
    weight_prefix: str = "",
    weight_suffix: str = "",
    loss_prefix: str = "",
    loss_suffix: str = "",
    rename: Mapping[str, str] | None = None,
    model: str | None = None,
    tokens: int | None = None,
    corpus: str | None = None,
    label: str = "csv",
) -> RawRuns:
    """Join the two tables on `index`; rows present in only one table are reported as dropped."""
    if rename is not None and not isinstance(rename, Mapping):
        raise AnalysisError(f"source.rename={rename!r} is not a mapping; write it as '{{old: new}}'")
    rename = dict(rename or {})
    mix = _read(mixtures, "mixtures", "mixtures")
    los = _read(losses, "losses", "losses")
    mix = _indexed(mix, index, "mixtures", mixtures)
    los = _indexed(los, index, "losses", losses)
    wmap = _domain_columns(mix, prefix=weight_prefix, suffix=weight_suffix, rename=rename, key="weight", path=mixtures)
    lmap = _domain_columns(los, prefix=loss_prefix, suffix=loss_suffix, rename=rename, key="loss", path=losses)
    weights = _numeric(mix[list(wmap)].rename(columns=wmap), "weight", mixtures)
    loss = _numeric(los[list(lmap)].rename(columns=lmap), "loss", losses)
    metrics = _metric_columns(los.drop(columns=list(lmap)), taken=set(lmap.values()))

    dropped = [(i, "no row in the losses table", "") for i in weights.index.difference(loss.index)]
    dropped += [(i, "no row in the mixtures table", "") for i in loss.index.difference(weights.index)]
    ids = weights.index[weights.index.isin(loss.index)]
    weights, loss = weights.loc[ids], loss.loc[loss.index.isin(ids)]
    loss, metrics = loss.reindex(ids), metrics.reindex(ids)

    runs = pd.DataFrame(index=ids, columns=list(META_COLUMNS), dtype=object)
    runs["source"] = label
    runs["status"] = "finished"  # a results table lists finished runs
    runs["model"], runs["tokens"], runs["corpus"] = model, tokens, corpus
    runs["mixture_index"] = list(ids)
    return RawRuns(
        source=label,
        runs=runs,
        weights=weights,
        losses=loss,
        metrics=metrics,
        dropped=dropped,
        location=f"{mixtures} + {losses}",
    )
