"""The verdict on the simulated choice: the evidence that it beats the alternatives, and the one
function that decides the fit's status from it and from the trust region.

Evidence comes from the predictive distribution (analysis.predictive), which includes the runs'
own noise: P(chosen beats the prior / uniform) compares two new runs; P(chosen beats the best
run) compares a new run at the chosen mixture with a rerun of the best run's mixture, both
predicted by the fold model that never saw that run (its observed loss is the luckiest of N
noisy draws, and the model fitted on all runs has learned it).

`judge` then decides, in this order:

- `extrapolates`: the mixture to emit lies beyond the trust radius from every run (only possible
  when the user opted out of the region, `choice.trust_radius=-1`, as the paper preset does);
  no regression is evidence there, whatever its probabilities say;
- `supported`: inside the region, the driver ranks held-out runs well and P(beats the prior)
  and P(beats the best run) reach `choice.min_probability`;
- otherwise weak: `shrunk` / `fallback` toward the best supported point (the best run, or the
  prior when the evidence prefers it and it lies inside the region), or `weak` unshrunk when
  `choice.shrink=false`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.candidates import CandidateSpace, fit_to_bounds
from analysis.choice import NO_MEMBER_TELLS, nearest_l1, penalty
from analysis.predictive import Predictive
from analysis.status import SUPPORTED_LINE, Status

#: Blend steps tried when shrinking: share of the way from the supported point to the choice.
SHRINK_STEPS = (0.75, 0.5, 0.25)
#: L1 below which two mixtures are the same one (emitted weights are rounded to 1e-4).
SAME_L1 = 1e-6


@dataclass
class Penalty:
    """The constraint penalty toward the prior (nats), added to a mixture's loss when judging."""

    prior: np.ndarray
    l1: float = 0.0
    kl: float = 0.0

    def __call__(self, X) -> np.ndarray:
        return penalty(np.atleast_2d(np.asarray(X, dtype=np.float64)), self.prior, l1=self.l1, kl=self.kl)


@dataclass
class Evidence:
    """How sure the fit is that the chosen mixture beats each alternative, run noise included."""

    probability: dict[str, float]
    """P(a new run at the chosen mixture has the lower loss than the alternative)."""
    difference: dict[str, tuple[float, float, float]]
    """Loss difference chosen - alternative of new runs: (low, median, high) at `coverage`."""
    coverage: float
    basis: str
    """What the probabilities rest on, in words (for the evidence line)."""

    def line(self) -> str:
        parts = [
            f"{name}: {NO_MEMBER_TELLS} (loss diff 0)" if self.difference[name] == (0.0, 0.0, 0.0) else
            f"{name} {p:.0%} (loss diff {self.difference[name][1]:+.3f} [{self.difference[name][0]:+.3f}, {self.difference[name][2]:+.3f}])"
            for name, p in self.probability.items()
        ]
        return f"P(chosen beats) {', '.join(parts)}; {self.coverage:.0%} intervals {self.basis}"

    def as_dict(self) -> dict:
        return {
            "probability_beats": dict(self.probability),
            "loss_difference": {k: {"low": v[0], "mean": v[1], "high": v[2]} for k, v in self.difference.items()},
            "coverage": self.coverage,
            "basis": self.basis,
        }


def gather_evidence(predictive: Predictive, chosen: np.ndarray, others: dict[str, np.ndarray], *, runs: np.ndarray,
                    best_run: int, coverage: float, judge_penalty: Penalty | None = None) -> Evidence:
    """P(chosen beats each of `others`) and the loss-difference intervals. `others["best_run"]`
    is judged against a rerun of trained run `best_run` by the fold model that never saw it; a
    penalty (when given) is added to both sides' losses."""
    chosen = np.asarray(chosen, dtype=np.float64)
    probability, difference = {}, {}
    for name, point in others.items():
        point = np.asarray(point, dtype=np.float64)
        offset = float(judge_penalty(chosen)[0] - judge_penalty(point)[0]) if judge_penalty else 0.0
        if np.abs(chosen - point).sum() < SAME_L1:
            probability[name], difference[name] = 0.5, (0.0, 0.0, 0.0)  # the same mixture: nothing to tell
        elif name == "best_run":
            probability[name] = predictive.probability_beats_run(chosen, best_run, runs, offset=offset)
            difference[name] = predictive.difference_to_run(chosen, best_run, runs, coverage, offset=offset)
        else:
            probability[name] = float(predictive.probability_beats(chosen[None], point[None], offset=offset)[0])
            difference[name] = predictive.difference(chosen[None], point[None], coverage, offset=offset)
    # P resolves in steps of 1/(n (n - 1)); rounding to 1e-6 keeps float noise in an exact tie
    # (a tree model predicting both mixtures alike: P = 0.5) from reading as "below 50%".
    probability = {k: round(v, 6) for k, v in probability.items()}
    scaled = f", scaled {predictive.scale:.2f} to the fit on all runs" if predictive.scale != 1.0 else ""
    by_level = "" if predictive.noise.flat else f", at each mixture's predicted level ({predictive.noise.ratio:.1f}x across the runs)"
    basis = f"of new runs (run noise from the out-of-fold residuals of {predictive.n} runs{scaled}{by_level})"
    return Evidence(probability, difference, coverage, basis)


@dataclass
class Verdict:
    """The status, its one-line explanation, why the evidence is weak, and the weights to emit."""

    status: Status
    line: str
    weak: list[str]
    weights: np.ndarray
    distance: float
    """L1 distance from the weights to emit to the nearest run."""


def supported_point(predictive: Predictive, runs: np.ndarray, best_run: int, prior: np.ndarray, space: CandidateSpace,
                    radius: float) -> tuple[str, np.ndarray]:
    """The best trained run, or the prior when a new run there beats a rerun of the best run and
    the prior lies inside the trust region; either brought within the constraints."""
    best = np.asarray(runs[best_run], dtype=np.float64)
    prior_inside = nearest_l1(prior, runs)[0] <= radius
    prefer_prior = prior_inside and predictive.probability_beats_run(prior, best_run, runs) > 0.5
    name, point = ("prior", np.asarray(prior, dtype=np.float64)) if prefer_prior else ("best_run", best)
    inside = np.all(point >= space.lower - 1e-9) and np.all(point <= space.upper + 1e-9)
    if not inside:
        fitted = fit_to_bounds(np.maximum(point, 1e-6), space.lower, space.upper)
        point = fitted if fitted is not None else point
    return name, point


def _beats_point(predictive: Predictive, x: np.ndarray, supported: tuple[str, np.ndarray], runs: np.ndarray,
                 best_run: int, judge_penalty: Penalty | None) -> float:
    name, point = supported
    offset = float(judge_penalty(x)[0] - judge_penalty(point)[0]) if judge_penalty else 0.0
    if name == "best_run":
        return predictive.probability_beats_run(x, best_run, runs, offset=offset)
    return float(predictive.probability_beats(x[None], point[None], offset=offset)[0])


def judge(
    predictive: Predictive,
    simulated: np.ndarray,
    evidence: Evidence,
    *,
    runs: np.ndarray,
    best_run: int,
    space: CandidateSpace,
    radius: float,
    region_on: bool,
    drive: str,
    drive_oof: float,
    min_spearman: float,
    min_probability: float,
    shrink: bool,
    next_step: str,
    judge_penalty: Penalty | None = None,
) -> Verdict:
    """The status of the simulated choice and the weights to emit (before rounding).

    radius: the trust radius (L1) the verdict judges by, the auto radius when the user opted
    out of the region (`region_on` False: candidates were not kept inside it)."""
    simulated = np.asarray(simulated, dtype=np.float64)
    distance = float(nearest_l1(simulated, runs)[0])
    weak: list[str] = []
    regressor_weak = not drive_oof >= min_spearman  # NaN too: a constant prediction ranks nothing
    if regressor_weak:
        weak.append(f"the driving {drive} ranks held-out runs poorly (out-of-fold Spearman {drive_oof:.2f} < {min_spearman})")
    for name in ("prior", "best_run"):
        p = evidence.probability[name]
        if p < min_probability:
            weak.append(f"P(beats the {name.replace('_', ' ')}) is {p:.0%} < {min_probability:.0%}")
    if distance > radius + 1e-9 and not region_on:
        why = (f"the chosen mixture is {distance:.2f} (L1) from the nearest run, beyond the trust radius {radius:.2f} "
               "(choice.trust_radius < 0 let it leave the region): a regression is no evidence there")
        more = f"; also {'; '.join(weak)}" if weak else ""
        line = (f"status: {Status.EXTRAPOLATES}: {why}{more}; next: train proxies near it "
                f"or drop choice.trust_radius=-1 to stay where the runs are ({next_step})")
        return Verdict(Status.EXTRAPOLATES, line, [why, *weak], simulated, distance)
    if not weak:
        return Verdict(Status.SUPPORTED, SUPPORTED_LINE, weak, simulated, distance)
    if not shrink:
        line = (f"status: {Status.WEAK}: emitted the simulated choice unshrunk (choice.shrink=false) although "
                f"{'; '.join(weak)}; next: {next_step}")
        return Verdict(Status.WEAK, line, weak, simulated, distance)
    supported = supported_point(predictive, runs, best_run, space.prior, space, radius)
    name, point = supported
    share = 0.0
    if not regressor_weak:
        for step in SHRINK_STEPS:
            blend = (1 - step) * point + step * simulated
            inside = nearest_l1(blend, runs)[0] <= radius + 1e-9
            if inside and _beats_point(predictive, blend, supported, runs, best_run, judge_penalty) >= min_probability:
                share = step
                break
    weights = (1 - share) * point + share * simulated
    weights = weights / weights.sum()
    status = Status.SHRUNK if share > 0 else Status.FALLBACK
    where = (f"{share:.0%} of the way from the {name.replace('_', ' ')} to the simulated choice" if share
             else f"the {name.replace('_', ' ')}")
    line = f"status: {status}: emitted {where} because {'; '.join(weak)}; next: {next_step}"
    return Verdict(status, line, weak, weights, float(nearest_l1(weights, runs)[0]))
