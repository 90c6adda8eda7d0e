"""The choice among simulated candidates, with uncertainty: a risk-aware objective inside a
trust region.

The simulation hands over its best candidates by the driving regressor's prediction (a pool),
and candidates drawn around the best trained runs join it (analysis.candidates.around_runs);
every one of them is re-scored by the members, the driving regressor's K fold models:

    objective = quantile_q(members' predicted loss) + l1_penalty * |w - prior|_1 + kl_penalty * KL(w || prior)

and only candidates within the trust region (L1 distance to the nearest trained run <= radius)
are eligible: far from every run the regression is an extrapolation (facts: with few runs the
argmax of any regressor runs to the simplex's edge). The best `top_k` are aggregated; an
aggregate that leaves the region is replaced by the best candidate inside it.

The evidence that the choice beats the alternatives and the status are analysis.verdict's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analysis.candidates import CandidateSpace
from analysis.simulate import aggregate_top


def nearest_l1(points: np.ndarray, runs: np.ndarray, *, chunk: int = 4096) -> np.ndarray:
    """L1 distance from each point to its nearest run, in chunks (bounded memory)."""
    points, runs = np.atleast_2d(points).astype(np.float64), np.asarray(runs, dtype=np.float64)
    out = np.empty(len(points))
    for begin in range(0, len(points), chunk):
        block = points[begin : begin + chunk]
        out[begin : begin + chunk] = np.abs(block[:, None, :] - runs[None, :, :]).sum(axis=2).min(axis=1)
    return out


def auto_radius(runs: np.ndarray, factor: float) -> float:
    """Trust radius from the runs' own spacing: `factor` x the median L1 distance from a run to
    its nearest other run (so a dense sweep trusts a small region, a sparse one a larger one)."""
    runs = np.asarray(runs, dtype=np.float64)
    if len(runs) < 2:
        return 2.0
    d = np.abs(runs[:, None, :] - runs[None, :, :]).sum(axis=2)
    np.fill_diagonal(d, np.inf)
    return float(factor * np.median(d.min(axis=1)))


def kl_to_prior(weights: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """KL(w || prior) in nats per row (0 log 0 = 0); prior zeros are floored at 1e-12."""
    w = np.atleast_2d(weights).astype(np.float64)
    p = np.maximum(np.asarray(prior, dtype=np.float64), 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(w > 0, w * np.log(w / p), 0.0)
    return terms.sum(axis=1)


def penalty(weights: np.ndarray, prior: np.ndarray, *, l1: float, kl: float) -> np.ndarray:
    """The constraint penalty toward the prior, in loss units (nats), per row."""
    w = np.atleast_2d(weights).astype(np.float64)
    out = np.zeros(len(w))
    if l1:
        out += l1 * np.abs(w - prior[None, :]).sum(axis=1)
    if kl:
        out += kl * kl_to_prior(w, prior)
    return out


class Penalized:
    """A fitted regressor whose predictions carry the penalty toward the prior, so that the
    simulation's pool is already the best candidates under the penalised objective."""

    def __init__(self, model, prior: np.ndarray, *, l1: float, kl: float):
        self.model, self.prior, self.l1, self.kl = model, np.asarray(prior, dtype=np.float64), l1, kl

    def predict(self, X) -> np.ndarray:
        return np.asarray(self.model.predict(X), dtype=np.float64) + penalty(np.asarray(X), self.prior, l1=self.l1, kl=self.kl)


@dataclass
class Choice:
    """The aggregated choice and how it was reached."""

    weights: np.ndarray
    top: np.ndarray
    top_objective: np.ndarray
    stats: dict = field(default_factory=dict)


def choose(
    pool: np.ndarray,
    ensemble,
    runs: np.ndarray,
    space: CandidateSpace,
    *,
    top_k: int,
    aggregate: str,
    objective: str,
    quantile: float,
    radius: float | None,
    l1_penalty: float = 0.0,
    kl_penalty: float = 0.0,
    driver_scores: np.ndarray | None = None,
) -> Choice:
    """Re-score `pool` (candidates, domain order) by the ensemble's risk-aware objective, keep
    those inside the trust region (`radius` None: no region), and aggregate the best `top_k`.

    objective: 'upper' (members' `quantile`), 'mean' (members' mean) or 'driver' (`driver_scores`,
    the driving regressor's own predictions of the pool, penalty included)."""
    pool = np.asarray(pool, dtype=np.float64)
    if objective == "driver":
        score, n_members = np.asarray(driver_scores, dtype=np.float64).copy(), 1
    else:
        members = ensemble.predict_members(pool)
        n_members = len(members)
        score = members.mean(axis=0) if objective == "mean" else np.quantile(members, quantile, axis=0)
        score = score + penalty(pool, space.prior, l1=l1_penalty, kl=kl_penalty)
    distance = nearest_l1(pool, runs)
    inside = np.ones(len(pool), dtype=bool) if radius is None else distance <= radius
    stats = {
        "objective": {"driver": "the driving regressor's prediction", "mean": f"mean of {n_members} members"}.get(
            objective, f"upper quantile {quantile:g} of {n_members} members"
        ),
        "pool": len(pool),
        "trust_radius_l1": radius,
        "in_trust_region": int(inside.sum()),
    }
    if not inside.any():
        # No candidate near the runs (none drawn around them): the nearest, and the verdict says so.
        stats["trust_note"] = f"none of {len(pool)} pooled candidates lies within the trust region; took the {top_k} nearest"
        keep = np.argsort(distance, kind="stable")[:top_k]
    else:
        if inside.sum() < top_k:
            stats["trust_note"] = (f"only {int(inside.sum())} of {len(pool)} pooled candidates lie within the trust "
                                   f"region; aggregated those instead of the top {top_k}")
        eligible = np.flatnonzero(inside)
        keep = eligible[np.argsort(score[eligible], kind="stable")[:top_k]]
    keep = keep[np.argsort(score[keep], kind="stable")]
    top = pool[keep]
    weights, note = aggregate_top(top, aggregate, space)
    if radius is not None and inside.any() and nearest_l1(weights, runs)[0] > radius:
        # The aggregate of candidates near different runs can sit between them, beyond the
        # region: the best candidate itself is inside it.
        weights = top[0] / top[0].sum()
        note = f"the best candidate within the trust region (the {aggregate} of the top {len(top)} left it)"
    stats["aggregate_note"] = note
    return Choice(weights, top, score[keep], stats)


#: Said instead of P = 50% where the emitted mixture is the alternative itself (e.g. the fit fell
#: back to the best run): "ties count half" would read as a coin flip.
NO_MEMBER_TELLS = "no member tells them apart"
