"""Run records (`regmix.run_record.RunRecord`) -> `RawRuns`.

Shared by the local source (result.json files) and the W&B source (a `RunRecord` per W&B run).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from analysis.runs_table import META_COLUMNS, RawRuns
from regmix.run_identity import setup_line
from regmix.run_record import RunRecord


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan  # validation names the run and drops it


def _prior(records: list[RunRecord]) -> dict[str, float] | None:
    """Token prior from the corpus identity the runs recorded (train tokens per domain)."""
    for record in records:
        corpus = record.corpus if isinstance(record.corpus, Mapping) else {}
        counts = corpus.get("train_tokens")
        if isinstance(counts, Mapping) and counts:
            return {str(d): float(c) for d, c in counts.items()}
    return None


def records_to_raw(
    items: Iterable[tuple[str, RunRecord]],
    *,
    source: str,
    location: str = "",
    dropped: list[tuple[str, str, str]] | None = None,
) -> RawRuns:
    """`items` are (run id, record) pairs; returns one raw row per record."""
    items = list(items)
    ids = [run_id for run_id, _ in items]
    records = [record for _, record in items]
    meta = []
    for record in records:
        corpus = record.corpus
        meta.append(
            {
                "source": source,
                "status": record.status,
                "model": record.model,
                "corpus": corpus.get("content_hash") if isinstance(corpus, Mapping) else corpus,
                "tokens": record.tokens,
                "setup": setup_line(record.config),  # the run identity less mixture, corpus, seed
                "sweep": record.sweep,
                "mixture_index": record.mixture_index,
            }
        )
    index = pd.Index(ids, name="run")

    def frame(key: str) -> pd.DataFrame:
        rows = [{str(d): _number(v) for d, v in getattr(r, key).items()} for r in records]
        return pd.DataFrame.from_records(rows, index=index).astype(np.float64) if rows else pd.DataFrame(index=index)

    runs = pd.DataFrame(meta, index=index, columns=list(META_COLUMNS))
    return RawRuns(
        source=source,
        runs=runs,
        weights=frame("mixture"),
        losses=frame("val_loss"),
        metrics=frame("metrics"),
        prior=_prior(records),
        dropped=list(dropped or []),
        location=location,
    )
