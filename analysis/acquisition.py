"""Choosing the next batch of proxy mixtures from an ensemble's members.

Input: every member's predicted target loss for every candidate, `members` (n_bags x n), and
the candidates' weights. Output: the positions of the `k` candidates to train next.

- `thompson` (default): each slot draws a random blend of the members (Dirichlet weights) and
  takes that blend's best candidate not yet picked. Where the members agree a region is good,
  most blends pick there (exploitation near the predicted optimum); where they disagree, some
  blends pick elsewhere (exploration), so the batch spreads over the promising region without
  a tuned trade-off. A blend of members is itself a plausible regression, so every pick is the
  optimum of some plausible model: no slot is spent where no member sees a low loss.
- `lcb`: the lowest mean - kappa * sd, greedily (the floor the replay measured).
- `random`: uniform over the candidates (the baseline).

Diversity in all of them: no two picks (and no pick and trained mixture) closer than
`min_distance` in L1; if the candidates run out at that distance, it is halved until the batch
fills (and reported).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analysis.errors import AnalysisError

ACQUISITIONS = ("thompson", "lcb", "random")


@dataclass
class Batch:
    """The picks (positions into the candidates), each pick's members' mean and sd, and notes."""

    picks: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    min_distance: float
    """The L1 separation the batch was finally chosen with."""
    notes: list[str] = field(default_factory=list)


def check_acquisition(kind: str, k: int, n_candidates: int, *, what: str = "candidates") -> None:
    """Raise `AnalysisError` for an unknown acquisition or a batch the candidates cannot fill."""
    if kind not in ACQUISITIONS:
        raise AnalysisError(f"acquisition.kind={kind!r} is unknown; use one of {list(ACQUISITIONS)}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise AnalysisError(f"k={k!r} is invalid; ask for at least 1 mixture (e.g. k=32)")
    if k > n_candidates:
        raise AnalysisError(
            f"k={k} is larger than the {n_candidates} {what} not yet trained; lower k or give more candidates"
        )


def _order(kind: str, members: np.ndarray, rng: np.random.Generator, kappa: float, concentration: float):
    """Yield, slot after slot, the candidates in the order that slot prefers them."""
    mean, sd = members.mean(axis=0), members.std(axis=0)
    if kind == "lcb":
        order = np.argsort(mean - kappa * sd, kind="stable")
        while True:
            yield order
    if kind == "random":
        while True:
            yield rng.permutation(members.shape[1])
    while True:  # thompson
        blend = rng.dirichlet(np.full(members.shape[0], concentration))
        yield np.argsort(blend @ members, kind="stable")


def select_batch(
    members: np.ndarray,
    weights: np.ndarray,
    k: int,
    *,
    kind: str = "thompson",
    seed: int = 0,
    kappa: float = 2.0,
    concentration: float = 0.3,
    min_distance: float = 0.0,
    trained: np.ndarray | None = None,
) -> Batch:
    """Pick `k` of the candidates (rows of `weights`) from the members' predictions (see module doc).

    Deterministic for a given `seed`, `members` and `weights`.
    """
    members = np.asarray(members, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    n = weights.shape[0]
    check_acquisition(kind, k, n)
    assert members.shape[1] == n, "one prediction per candidate and member"
    rng = np.random.default_rng(seed)
    radius = float(min_distance)
    notes: list[str] = []
    # Candidates too close to a trained mixture are out from the start (at the current radius).
    near_trained = np.full(n, np.inf)
    if trained is not None and len(trained) and radius > 0:
        near_trained = np.min(
            [np.abs(weights - t[None, :]).sum(axis=1) for t in np.asarray(trained, dtype=np.float64)], axis=0
        )
    taken = np.zeros(n, dtype=bool)
    nearest_pick = np.full(n, np.inf)  # L1 from each candidate to the closest pick so far
    picks: list[int] = []
    orders = _order(kind, members, rng, kappa, concentration)
    while len(picks) < k:
        allowed = ~taken & (nearest_pick > radius) & (near_trained > radius)
        if not allowed.any():
            if radius == 0.0:  # only exact repeats are left: cannot happen with k <= n (checked)
                raise AssertionError("no candidate left to pick")
            radius = radius / 2.0 if radius > 1e-6 else 0.0
            continue
        order = next(orders)
        choice = int(order[np.flatnonzero(allowed[order])[0]])
        picks.append(choice)
        taken[choice] = True
        nearest_pick = np.minimum(nearest_pick, np.abs(weights - weights[choice][None, :]).sum(axis=1))
    if radius < min_distance:
        notes.append(f"min_distance lowered from {min_distance:g} to {radius:g} (L1) to fill the batch of {k}")
    chosen = np.asarray(picks, dtype=np.int64)
    return Batch(chosen, members[:, chosen].mean(axis=0), members[:, chosen].std(axis=0), radius, notes)
