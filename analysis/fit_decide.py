"""The fit's decision stage: weigh the evidence for the simulated choice (how well the driver
ranks held-out runs, P(beats the prior / the best run) from the predictive distribution, the
trust region), let `analysis.verdict.judge` set the status (shrinking toward a supported point
when the evidence is weak), round the weights, and state the predictions."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from analysis.choice import nearest_l1
from analysis.config import FitAppConfig
from analysis.emit import round_weights
from analysis.fit_choose import Choice, judging_radius, trust_radius
from analysis.fit_load import LoadedRuns
from analysis.fit_model import Models
from analysis.paper_data import DATASET as PAPER_DATASET
from analysis.rounds import joined_name, sweep_names
from analysis.status import Status
from analysis.target import Target
from analysis.verdict import Evidence, Penalty, gather_evidence, judge
from regmix.mixture import Mixture


@dataclass
class Decision:
    """What the decision stage hands on: the mixture to emit and everything said about it."""

    status: Status
    status_line: str
    weak: list[str]
    """Why the evidence is weak (empty when supported)."""
    weights: dict[str, float]
    """The emitted weights, rounded to `weight_decimals` (they sum to 1)."""
    mixture: Mixture
    simulated_evidence: Evidence
    emitted_evidence: Evidence
    predicted: dict[str, float]
    """What the driver predicts for chosen, best_candidate, prior, uniform, best_run (and
    simulated_choice when the emitted mixture moved away from it): `Target.loss` units in the
    stage, the target's own units after `for_user` (as are intervals, best_run, cross_check)."""
    intervals: dict[str, tuple[float, float, float]]
    best_run: dict
    cross_check: dict[str, dict[str, float]]
    nearest: float
    """L1 distance from the emitted mixture to the nearest run."""
    trust: dict
    """The trust region the verdict judged by: radius_l1, whether candidates were kept in it
    (region), and whether the emitted mixture lies inside it."""

    def for_user(self, target: Target) -> "Decision":
        """The same decision with every predicted and observed value in the target's own units
        (the stages work in `Target.loss`: negated for a maximised target); probabilities keep."""
        if not target.maximize:
            return self
        value = target.user
        simulated = _evidence_for_user(self.simulated_evidence, target)
        return replace(
            self,
            predicted={k: value(v) for k, v in self.predicted.items()},
            intervals={k: _span_for_user(v, target) for k, v in self.intervals.items()},
            best_run={**self.best_run, "loss": value(self.best_run["loss"]), "predicted": value(self.best_run["predicted"]),
                      "predicted_unseen": value(self.best_run["predicted_unseen"])},
            cross_check={n: {k: value(v) for k, v in c.items()} for n, c in self.cross_check.items()},
            simulated_evidence=simulated,
            # `emitted is simulated` means the emitted mixture is the simulated choice: kept so.
            emitted_evidence=(simulated if self.emitted_evidence is self.simulated_evidence
                              else _evidence_for_user(self.emitted_evidence, target)),
        )


def _span_for_user(span: tuple[float, float, float], target: Target) -> tuple[float, float, float]:
    """(low, mean, high) in the user's units: a negation turns the high end into the low one."""
    low, mean, high = (float(target.user(v)) for v in span)
    return (high, mean, low) if target.maximize else (low, mean, high)


def _evidence_for_user(e: Evidence, target: Target) -> Evidence:
    return replace(e, difference={k: _span_for_user(v, target) for k, v in e.difference.items()})


def propose_hint(cfg: FitAppConfig) -> str:
    """The regmix-propose command that continues this fit's sweeps with a round of 32."""
    names = sweep_names(cfg.sweep)
    if cfg.source.kind == "csv" and cfg.source.dataset == PAPER_DATASET:  # the preset, not csv by hand
        return f"regmix-propose source=paper out={joined_name(names)}_next k=32"
    sweeps = f"sweep={names[0]}" if len(names) == 1 else f"'sweep=[{','.join(names)}]'"
    source = "" if cfg.source.kind == "local" else f" source={cfg.source.kind} (this fit's source.* settings)"
    return f"regmix-propose {sweeps} out={joined_name(names)}_next k=32{source}"


def decide_stage(cfg: FitAppConfig, runs: LoadedRuns, models: Models, choice: Choice, warnings: list[str]) -> Decision:
    """Status, emitted weights and predictions (pure: no file is written)."""
    c, space = cfg.choice, runs.space
    X = runs.X.to_numpy()
    best_pos = int(np.argmin(runs.y))
    simulated = choice.simulated
    others = {"prior": space.prior, "uniform": np.full(len(runs.domains), 1.0 / len(runs.domains)), "best_run": X[best_pos]}
    predictive = models.predictive

    def weigh(point: np.ndarray, judge_penalty: Penalty | None = None) -> Evidence:
        return gather_evidence(predictive, point, others, runs=X, best_run=best_pos, coverage=c.coverage,
                               judge_penalty=judge_penalty)

    simulated_evidence = weigh(simulated)
    # With a penalty toward the prior the user trades loss for closeness: judge by the penalised loss.
    penalty = Penalty(space.prior, c.l1_penalty, c.kl_penalty) if (c.l1_penalty or c.kl_penalty) else None
    judged = weigh(simulated, penalty) if penalty else simulated_evidence
    radius = judging_radius(cfg, X)
    region_on = trust_radius(cfg, X) is not None
    verdict = judge(
        predictive, simulated, judged, runs=X, best_run=best_pos, space=space, radius=radius, region_on=region_on,
        drive=models.drive, drive_oof=models.drive_oof, min_spearman=c.min_spearman,
        min_probability=c.min_probability, shrink=c.shrink, judge_penalty=penalty,
        next_step=f"train more proxy runs where the fit is unsure ({propose_hint(cfg)}), then fit again",
    )
    status = verdict.status
    weights = round_weights(dict(zip(runs.domains, verdict.weights)), cfg.weight_decimals, upper=space.upper)
    mixture = Mixture(weights, domains=runs.domains, tolerance=1e-6)
    vector = mixture.vector(runs.domains)
    emitted_evidence = weigh(vector) if status.moved else simulated_evidence
    predicted = _predictions(models.model, vector, simulated if status.moved else None, choice, others)
    nearest = float(nearest_l1(vector, X)[0])
    _check_outcome(predicted, runs.target, choice, nearest, warnings)
    return Decision(
        status, verdict.line, verdict.weak, weights, mixture, simulated_evidence, emitted_evidence, predicted,
        intervals=_intervals(models, {"chosen": vector, **others}, best_pos, X, c.coverage),
        best_run={"id": str(runs.X.index[best_pos]), "loss": float(runs.y[best_pos]), "predicted": predicted["best_run"],
                  "predicted_unseen": predictive.predict_run(best_pos, X),
                  "weights": dict(zip(runs.domains, map(float, X[best_pos])))},
        # Every compared regressor's view of the same mixtures: a choice that only the driving
        # regressor likes is an artefact of that model, not of the data.
        cross_check={name: {label: _predict(other, point) for label, point in
                            {"chosen": vector, "best_run": X[best_pos], "prior": space.prior}.items()}
                     for name, other in models.comparison.models.items()},
        nearest=nearest,
        trust={"radius_l1": radius, "region": region_on, "inside": bool(nearest <= radius + 1e-3)},
    )


def _predict(model, weights: np.ndarray) -> float:
    return float(model.predict(np.asarray(weights, dtype=np.float64)[None, :])[0])


def _predictions(model, vector: np.ndarray, simulated: np.ndarray | None, choice: Choice, others: dict) -> dict[str, float]:
    predicted = {
        "chosen": _predict(model, vector),
        "best_candidate": float(choice.sim.top_predicted[0]),
        **{name: _predict(model, others[name]) for name in ("prior", "uniform", "best_run")},
    }
    if simulated is not None:
        predicted["simulated_choice"] = _predict(model, simulated)
    return predicted


def _intervals(models: Models, points: dict[str, np.ndarray], best_pos: int, X: np.ndarray,
               coverage: float) -> dict[str, tuple[float, float, float]]:
    """Predictive (low, centre, high) target loss of a new run per mixture, at `coverage`; the
    best run's centre is the fold model's that never saw it (the full fit learned its lucky draw),
    with the residuals as that fold model measured them (no learning-curve scale)."""
    predictive = models.predictive
    centre = predictive.predict(np.stack(list(points.values())))
    best = list(points).index("best_run")
    centre[best] = predictive.predict_run(best_pos, X)
    low, high = predictive.interval(None, coverage, center=centre)
    low[best], high[best] = (v[0] for v in predictive.interval(None, coverage, center=centre[best:best + 1], scale=1.0))
    return {label: (float(low[i]), float(centre[i]), float(high[i])) for i, label in enumerate(points)}


def _check_outcome(predicted: dict, target: Target, choice: Choice, nearest: float, warnings: list[str]) -> None:
    if predicted["chosen"] >= predicted["best_run"]:  # losses: lower is better here
        chosen, best = target.user(predicted["chosen"]), target.user(predicted["best_run"])
        what, side = (f"predicted {target.label}", "above") if target.maximize else ("predicted loss", "below")
        warnings.append(
            f"the chosen mixture's {what} ({chosen:.4f}) is not {side} the best run's "
            f"({best:.4f}); the regressor sees no better mixture than one already trained"
        )
    stats = choice.sim.stats
    if stats.get("screened") and not stats.get("screen_converged"):
        warnings.append(
            "the screen did not settle: the top k still moved in the last re-scored block; raise "
            "simulation.screen_keep / screen_blocks, or set simulation.screen_keep=0 to score every candidate"
        )
    if nearest > 0.5:
        warnings.append(
            f"the chosen mixture is {nearest:.2f} (L1) from the nearest run: an extrapolation; "
            "consider training a few proxies near it before the target run"
        )
