"""The `Mixture` type: a validated mapping domain name -> sampling weight.

Torch-free on purpose: the analysis side imports it too. Domains are always keyed by
name; a domain absent from the mapping has weight 0. Every place where two sets of
domains meet calls `check_domains` so that a misaligned or misspelled domain fails loudly
instead of silently shifting weights onto the wrong data.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping

import numpy as np
from regmix.errors import RegmixError

#: How far the weights may sum from 1. Mixtures are rounded to a grid (2e-4 in RegMix's
#: generator, 1e-3 in the paper's released tables, whose rows sum to 0.996-1.003), so the
#: tolerance must admit rounding of up to ~17 domains at half a 1e-3 step each.
SUM_TOLERANCE = 5e-3


def invalid_rows(weights) -> np.ndarray:
    """Boolean mask of the rows of a (rows x domains) weight matrix that are not mixtures:
    a weight that is not finite or is negative, or weights that do not sum to 1 within
    `SUM_TOLERANCE`."""
    weights = np.asarray(weights, dtype=np.float64)
    sums = weights.sum(axis=1)
    return ~np.isfinite(weights).all(axis=1) | (weights < 0).any(axis=1) | (np.abs(sums - 1.0) > SUM_TOLERANCE)


class MixtureError(RegmixError):
    """A mixture that cannot be used; the message names the problem and the fix."""


def check_domains(given: Iterable[str], known: Iterable[str], *, what: str = "mixture") -> None:
    """Raise `MixtureError` naming every domain of `given` that is not in `known`."""
    known_set = set(known)
    unknown = sorted(set(given) - known_set)
    if unknown:
        raise MixtureError(
            f"{what} names unknown domain(s) {unknown}; known domains are {sorted(known_set)}. "
            "Fix the spelling or prepare a corpus that has them."
        )


class Mixture(Mapping[str, float]):
    """An immutable mapping domain -> weight: finite, non-negative, summing to 1.

    `domains` (optional) is the full set of domains the mixture is defined over; weights for
    domains outside it are an error and domains of it that are absent get weight 0.
    """

    __slots__ = ("_weights",)

    def __init__(
        self,
        weights: Mapping[str, float],
        *,
        domains: Iterable[str] | None = None,
        tolerance: float = SUM_TOLERANCE,
        normalize: bool = False,
    ) -> None:
        if not weights:
            raise MixtureError("mixture is empty; give at least one domain with a positive weight")
        clean: dict[str, float] = {}
        for name, value in weights.items():
            if not isinstance(name, str) or not name:
                raise MixtureError(f"domain names must be non-empty strings, got {name!r}")
            try:
                w = float(value)
            except (TypeError, ValueError):
                raise MixtureError(f"weight of domain {name!r} is {value!r}, not a number") from None
            if not math.isfinite(w):
                raise MixtureError(f"weight of domain {name!r} is {w}; weights must be finite numbers")
            if w < 0:
                raise MixtureError(f"weight of domain {name!r} is negative ({w}); weights must be >= 0")
            clean[name] = w
        if domains is not None:
            domains = list(domains)
            check_domains(clean, domains)
            clean = {d: clean.get(d, 0.0) for d in domains}
        total = sum(clean.values())
        if total <= 0:
            raise MixtureError("all mixture weights are 0; give at least one domain a positive weight")
        if normalize:
            clean = {d: w / total for d, w in clean.items()}
        elif abs(total - 1.0) > tolerance:
            raise MixtureError(
                f"mixture weights sum to {total:.6g}, not 1 (tolerance {tolerance:g}); "
                "rescale them so that they sum to 1"
            )
        self._weights = clean

    # -- Mapping protocol -------------------------------------------------------------
    def __getitem__(self, domain: str) -> float:
        return self._weights[domain]

    def __iter__(self) -> Iterator[str]:
        return iter(self._weights)

    def __len__(self) -> int:
        return len(self._weights)

    def __repr__(self) -> str:
        inner = ", ".join(f"{d}={w:.4g}" for d, w in self._weights.items() if w > 0)
        return f"Mixture({inner})"

    # -- conversions ------------------------------------------------------------------
    def get(self, domain: str, default: float = 0.0) -> float:  # absent = 0, not None
        return self._weights.get(domain, default)

    def to_dict(self) -> dict[str, float]:
        return dict(self._weights)

    def vector(self, domains: Iterable[str]) -> np.ndarray:
        """Weights in the order of `domains` (float64); unknown domains of the mixture raise."""
        domains = list(domains)
        check_domains(self._weights, domains)
        return np.array([self._weights.get(d, 0.0) for d in domains], dtype=np.float64)

    @classmethod
    def from_vector(cls, vector: Iterable[float], domains: Iterable[str], **kwargs) -> "Mixture":
        domains = list(domains)
        values = list(vector)
        if len(values) != len(domains):
            raise MixtureError(f"{len(values)} weights for {len(domains)} domains")
        return cls(dict(zip(domains, values)), **kwargs)

    @classmethod
    def uniform(cls, domains: Iterable[str]) -> "Mixture":
        domains = list(domains)
        return cls({d: 1.0 / len(domains) for d in domains})
