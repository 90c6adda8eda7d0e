"""The target: the loss the mixture should minimise, from the per-domain validation losses.

`target=pile_cc` (one domain), `target=[a,b]` (equal weights) or `target={a: 3, b: 1}`
(weights, normalised to sum 1): the target is a weighted mean of domain losses.

A round records its target (`Target.recorded`: the key, or the normalised weights) in its
`.sampler.json`; `analysis.round_target.resolve_target` reads it back.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError


@dataclass(frozen=True)
class Target:
    """A weighted mean of domain losses; `weights` sum to 1."""

    weights: dict[str, float]

    @property
    def domains(self) -> list[str]:
        return list(self.weights)

    @property
    def label(self) -> str:
        """Short name: the domain, or 'w1*a+w2*b'."""
        if len(self.weights) == 1:
            return next(iter(self.weights))
        return "+".join(f"{w:.3g}*{d}" for d, w in self.weights.items())

    @property
    def slug(self) -> str:
        """The label as a file-name-safe string (default emitted mixture name)."""
        if len(self.weights) == 1:
            return re.sub(r"[^A-Za-z0-9_-]+", "_", self.label)
        return "mix_" + "_".join(re.sub(r"[^A-Za-z0-9]+", "", d)[:8] for d in self.weights)

    @property
    def recorded(self) -> str | dict[str, float]:
        """How a sweep record stores it: the key of a single-key target, else the weights."""
        return next(iter(self.weights)) if len(self.weights) == 1 else dict(self.weights)

    def same_as(self, other: "Target") -> bool:
        """The same keys with the same weights (to 1e-9: weights read back are renormalised)."""
        return self.weights.keys() == other.weights.keys() and all(
            abs(w - other.weights[k]) <= 1e-9 for k, w in self.weights.items()
        )

    def values(self, losses: pd.DataFrame) -> np.ndarray:
        """The target loss of every row of a losses table (run x domain)."""
        return losses[self.domains].to_numpy(dtype=np.float64) @ np.array(list(self.weights.values()))


def _usage(available: Sequence[str]) -> str:
    return f"set target=<domain> (one of {sorted(available)}) or 'target={{a: 0.5, b: 0.5}}'"


def parse_target(value: Any, available: Sequence[str]) -> Target:
    """Validate a configured target against the domains the runs logged losses for."""
    if value is None or value == "" or (isinstance(value, (list, tuple, Mapping)) and not value):
        raise AnalysisError(f"no target given: {_usage(available)}")
    if isinstance(value, str):
        raw = {value: 1.0}
    elif isinstance(value, Mapping):
        raw = dict(value)
    elif isinstance(value, (list, tuple)):
        raw = {str(d): 1.0 for d in value}
    else:
        raise AnalysisError(f"target={value!r} is not a domain, a list or a mapping: {_usage(available)}")
    unknown = sorted(str(d) for d in raw if d not in set(available))
    if unknown:
        raise AnalysisError(
            f"target names domain(s) {unknown} that no run logged a loss for; logged: {sorted(available)}"
        )
    weights = {}
    for domain, w in raw.items():
        try:
            w = float(w)
        except (TypeError, ValueError):
            raise AnalysisError(f"target weight of {domain!r} is {w!r}, not a number") from None
        if not math.isfinite(w) or w < 0:
            raise AnalysisError(f"target weight of {domain!r} is {w}; use finite weights >= 0")
        if w > 0:
            weights[str(domain)] = w
    total = sum(weights.values())
    if total <= 0:
        raise AnalysisError(f"every target weight is 0: {_usage(available)}")
    return Target({d: w / total for d, w in weights.items()})
