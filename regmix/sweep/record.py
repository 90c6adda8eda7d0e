"""What regmix-sample recorded about a sweep: `sweeps/<sweep>.sampler.json`.

The record is read back instead of re-derived: `regmix-sweep` takes the sweep's target from it
(the metric W&B shows, the `regmix-fit` command it prints) and its checks compare the table's
hash with it. `default_target` is the one place that picks a sweep's target.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from regmix.atomic_file import write_text_atomic
from regmix.json_record import record_to_dict, split_known
from regmix.corpus.store import TARGET_ROLE, CorpusMeta
from regmix.errors import RegmixError

SCHEMA = 1


class SweepTargetError(RegmixError):
    """A target that is not a domain of the corpus; the message lists the domains."""


def default_target(meta: CorpusMeta, target: Optional[str] = None) -> Optional[str]:
    """The domain whose validation loss a sweep is judged by.

    `target` when given (checked against the corpus's domains), else the corpus's one domain
    of role `target` (the synthetic corpus's held-out blend), else None (no metric).
    """
    if target is not None:
        known = set(meta.eval_domains) | set(meta.train_domains)
        if target not in known:
            raise SweepTargetError(
                f"target={target!r} is not a domain of corpus {meta.name!r}; use one of {sorted(known)}"
            )
        return target
    targets = [d for d, m in meta.domains.items() if m.role == TARGET_ROLE]
    return targets[0] if len(targets) == 1 else None


@dataclass
class SweepRecord:
    """The settings, prior, corpus and target a sweep's table was made with (sampled, or proposed
    by an active round, whose extra keys such as its parents are kept in `extra`)."""

    sweep: str
    n_mixtures: Optional[int] = None
    seed: Optional[int] = None
    sampler: dict[str, Any] = field(default_factory=dict)
    """`SamplerConfig` as a dict."""
    prior: dict[str, float] = field(default_factory=dict)
    """domain -> token share the generator was tempered from."""
    domains: list[str] = field(default_factory=list)
    corpus: dict[str, Any] = field(default_factory=dict)
    """`CorpusMeta.identity`: name, path, content hash, tokenizer."""
    target: Any = None
    """The sweep's target: a domain (`default_target`) or metric key, or {key: weight} (weights
    sum to 1) for a weighted target; None = no metric."""
    target_goal: Optional[str] = None
    """'minimize' or 'maximize' (W&B's `metric.goal`); None when there is no target."""
    stats: dict[str, Any] = field(default_factory=dict)
    """The generator's funnel: drawn, within the caps, valid after rounding, distinct."""
    table: Optional[str] = None
    table_sha256: Optional[str] = None
    spec: Optional[str] = None
    created_at: Optional[str] = None
    schema: int = SCHEMA
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys of a newer record this version does not know (kept when read back)."""

    def write(self, path: str | os.PathLike) -> Path:
        return write_text_atomic(path, json.dumps(record_to_dict(self), indent=2) + "\n")

    @classmethod
    def read(cls, path: str | os.PathLike) -> Optional["SweepRecord"]:
        """The record at `path`, or None when there is none or it is not a record."""
        try:
            data = json.loads(Path(path).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if not isinstance(data, dict):
            return None
        known, extra = split_known(cls, data)
        if not isinstance(known.get("sweep"), str):
            return None
        return cls(**known, extra=extra)
