"""The choice among simulated candidates, with uncertainty: a risk-aware objective inside a
trust region, the evidence that the choice beats the alternatives, and shrinkage when it is weak.

The simulation hands over its best candidates by the driving regressor's prediction (a pool);
here every one of them is re-scored by the bagged ensemble of that regressor:

    objective = quantile_q(members' predicted loss) + l1_penalty * |w - prior|_1 + kl_penalty * KL(w || prior)

and only candidates within the trust region (L1 distance to the nearest trained run <= radius)
are eligible: far from every run the regression is an extrapolation (facts: with few runs the
argmax of any regressor runs to the simplex's edge). The best `top_k` are aggregated.

Then `evidence` compares the chosen mixture with the prior, uniform and the best trained run,
member by member (each member predicts every mixture; the share of members that rank the chosen
one lower is P(beats)), and `shrink` moves the choice toward the best supported point (the best
run or the prior) while the evidence for going further is weak.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analysis.candidates import CandidateSpace, fit_to_bounds
from analysis.ensemble import probability_below
from analysis.simulate import aggregate_top
from analysis.status import SUPPORTED_LINE, Status

#: Blend steps tried when shrinking: share of the way from the supported point to the choice.
SHRINK_STEPS = (1.0, 0.75, 0.5, 0.25, 0.0)


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

    def predict_members(self, X) -> np.ndarray:
        """The wrapped ensemble's members, each with the penalty added (for judging a choice)."""
        extra = penalty(np.asarray(X), self.prior, l1=self.l1, kl=self.kl)
        return self.model.predict_members(X) + extra[None, :]


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
    if inside.sum() < top_k:
        # Too few candidates near the runs: take the nearest ones rather than extrapolate.
        stats["trust_note"] = f"only {int(inside.sum())} of {len(pool)} pooled candidates lie within the trust region; took the {top_k} nearest"
        keep = np.argsort(distance, kind="stable")[:top_k]
    else:
        eligible = np.flatnonzero(inside)
        keep = eligible[np.argsort(score[eligible], kind="stable")[:top_k]]
    keep = keep[np.argsort(score[keep], kind="stable")]
    top = pool[keep]
    weights, note = aggregate_top(top, aggregate, space)
    stats["aggregate_note"] = note
    return Choice(weights, top, score[keep], stats)


#: Said instead of P = 50% where every member predicts two mixtures alike (e.g. the emitted
#: mixture is the best run itself): "ties count half" would read as a coin flip.
NO_MEMBER_TELLS = "no member tells them apart"


@dataclass
class Evidence:
    """How sure the ensemble is that the chosen mixture beats each alternative."""

    probability: dict[str, float]
    """P(chosen's loss < alternative's loss) over ensemble members."""
    difference: dict[str, tuple[float, float, float]]
    """Predicted loss difference chosen - alternative: (low, mean, high) at `coverage`."""
    coverage: float
    members: int

    def line(self) -> str:
        parts = [
            f"{name}: {NO_MEMBER_TELLS} (loss diff 0)" if self.difference[name] == (0.0, 0.0, 0.0) else
            f"{name} {p:.0%} (loss diff {self.difference[name][1]:+.3f} [{self.difference[name][0]:+.3f}, {self.difference[name][2]:+.3f}])"
            for name, p in self.probability.items()
        ]
        return f"P(chosen beats) {', '.join(parts)}; {self.coverage:.0%} intervals over {self.members} bagged members"

    def as_dict(self) -> dict:
        return {
            "probability_beats": dict(self.probability),
            "loss_difference": {k: {"low": v[0], "mean": v[1], "high": v[2]} for k, v in self.difference.items()},
            "coverage": self.coverage,
            "members": self.members,
        }


def evidence(ensemble, chosen: np.ndarray, others: dict[str, np.ndarray], *, coverage: float) -> Evidence:
    """P(chosen beats each of `others`) and intervals of the loss difference, from the members."""
    names = list(others)
    points = np.stack([np.asarray(chosen, dtype=np.float64), *[np.asarray(others[n], dtype=np.float64) for n in names]])
    members = ensemble.predict_members(points)
    tail = (1.0 - coverage) / 2.0
    probability, difference = {}, {}
    for i, name in enumerate(names, start=1):
        diff = members[:, 0] - members[:, i]
        probability[name] = probability_below(members[:, 0], members[:, i])
        low, high = np.quantile(diff, [tail, 1.0 - tail])
        difference[name] = (float(low), float(diff.mean()), float(high))
    return Evidence(probability, difference, coverage, members.shape[0])


@dataclass
class Shrinkage:
    """The outcome of `shrink`: the weights to emit and a one-line status."""

    weights: np.ndarray
    status: Status
    """SUPPORTED (emitted as chosen), SHRUNK (part-way to the supported point) or
    FALLBACK (the supported point itself)."""
    toward: str
    share: float
    """Share of the way from the supported point to the choice that was kept (1 = all)."""
    reasons: list[str]
    line: str


def supported_point(ensemble, best_run: np.ndarray, prior: np.ndarray, space: CandidateSpace) -> tuple[str, np.ndarray]:
    """The best trained run if the members think it beats the prior, else the prior; either
    brought within the constraints (the prior may break a minimum, a cap or a token budget)."""
    members = ensemble.predict_members(np.stack([best_run, prior]))
    name, point = ("best_run", best_run) if probability_below(members[:, 0], members[:, 1]) >= 0.5 else ("prior", prior)
    inside = np.all(point >= space.lower - 1e-9) and np.all(point <= space.upper + 1e-9)
    if not inside:
        fitted = fit_to_bounds(np.maximum(point, 1e-6), space.lower, space.upper)
        point = fitted if fitted is not None else point
    return name, np.asarray(point, dtype=np.float64)


def shrink(
    ensemble,
    chosen: np.ndarray,
    supported: tuple[str, np.ndarray],
    *,
    weak_reasons: list[str],
    regressor_weak: bool = False,
    min_probability: float,
    next_step: str,
) -> Shrinkage:
    """Keep the largest share of the step from the supported point to the choice that the
    members back with P(beats the supported point) >= `min_probability`; when the regressor
    itself ranks held-out runs poorly (`regressor_weak`) fall back to the supported point.
    `weak_reasons` are the sentences the status line gives."""
    name, point = supported
    chosen = np.asarray(chosen, dtype=np.float64)
    if not weak_reasons:
        return Shrinkage(chosen, Status.SUPPORTED, name, 1.0, [], SUPPORTED_LINE)
    share = 0.0
    if not regressor_weak:
        for step in SHRINK_STEPS[1:-1]:
            blend = (1 - step) * point + step * chosen
            members = ensemble.predict_members(np.stack([blend, point]))
            if probability_below(members[:, 0], members[:, 1]) >= min_probability:
                share = step
                break
    weights = (1 - share) * point + share * chosen
    status = Status.SHRUNK if share > 0 else Status.FALLBACK
    where = f"{share:.0%} of the way from the {name.replace('_', ' ')} to the simulated choice" if share else f"the {name.replace('_', ' ')}"
    line = f"status: {status}: emitted {where} because {'; '.join(weak_reasons)}; next: {next_step}"
    return Shrinkage(weights / weights.sum(), status, name, share, list(weak_reasons), line)
