"""The verdict on known answers: a choice that stays where the evidence is, and a status that says
so when it does not (analysis.verdict, analysis.candidates.around_runs, the fit's stages)."""

from __future__ import annotations

import numpy as np
from omegaconf import OmegaConf

from analysis.candidates import around_runs, candidate_space
from analysis.choice import auto_radius, nearest_l1
from analysis.fit import run_fit
from analysis.tracking import summary_values
from regmix.config import SamplerConfig
from regmix.run_record import RunRecord, write_record
from tests.support.synthetic_runs import TARGET, linear_loss
from tests.test_analysis_fit import compose_fit

FAST = ["simulation.n_candidates=20000", "simulation.top_k=20", "plots=false"]


def interior_runs(root, loss, n: int, *, noise: float, seed: int = 0, concentration: float = 40.0):
    """`n` run records with mixtures near uniform (Dirichlet(concentration)): no run comes near a
    corner of the simplex, where a linear truth has its optimum."""
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(len(loss.domains), concentration), size=n)
    values = loss(weights) + noise * rng.normal(size=n)
    for i, (w, v) in enumerate(zip(weights, values)):
        record = RunRecord.from_dict({
            "status": "finished", "run_name": f"run{i:05d}", "sweep": "interior", "mixture_index": i,
            "mixture": dict(zip(loss.domains, map(float, w))), "val_loss": {TARGET: float(v)}, "tokens": 1000,
            "model": "tiny", "seed": 0, "wandb": None,
            "corpus": {"name": "synthetic", "content_hash": "feedbeef", "train_tokens": {d: 1000 for d in loss.domains}},
        })
        write_record(root / record.run_name, record)
    return root, weights


def _overrides(tmp_path, root, *extra):
    return ["source=local", f"source.root={root}", f"target={TARGET}", f"mixture_dir={tmp_path / 'mix'}",
            f"report_dir={tmp_path / 'report'}", "out=interior", "overwrite=true", *FAST, *extra]


def test_interior_runs_far_corner_optimum_emit_inside_the_trust_region(tmp_path):
    """Known answer (a): 24 runs near uniform, a linear truth whose optimum is a corner of the
    simplex. The ridge driver's argmax runs to that corner; the emitted mixture stays inside the
    trust region the report prints, and a status of `supported` only ever comes with it inside."""
    loss = linear_loss(5, seed=3)
    root, X = interior_runs(tmp_path / "runs", loss, 24, noise=0.01)
    result = run_fit(compose_fit(_overrides(tmp_path, root, "regressor=linear")), progress=False)
    trust = result.evidence["trust"]
    emitted = result.mixture.vector(result.table.domains)
    nearest = float(nearest_l1(emitted, X)[0])
    assert trust["region"] and abs(trust["radius_l1"] - auto_radius(X, 2.0)) < 1e-9
    assert nearest <= trust["radius_l1"] + 1e-3 and trust["inside"]
    assert result.evidence["choice"]["in_trust_region"] >= 1
    # Moving toward the corner inside the region is what the evidence backs: better than the best run.
    assert loss(emitted[None])[0] < loss(X).min()
    report = (result.report_dir / "report.md").read_text()
    assert f"Trust region: L1 <= {trust['radius_l1']:.3f}" in report and ": inside." in report


def test_linear_truth_ridge_far_from_the_data_says_it_extrapolates(tmp_path):
    """Known answer (c): the same interior runs with the region turned off (choice.trust_radius=-1,
    as the paper preset does): ridge emits a mixture far beyond every run. The fold models of a
    linear model agree there, so P(beats) is high, yet the status says it extrapolates, never
    `supported`, in the result, the provenance and the report."""
    loss = linear_loss(5, seed=3)
    root, X = interior_runs(tmp_path / "runs", loss, 24, noise=0.01)
    result = run_fit(compose_fit(_overrides(tmp_path, root, "regressor=linear", "choice.trust_radius=-1")), progress=False)
    emitted = result.mixture.vector(result.table.domains)
    assert float(nearest_l1(emitted, X)[0]) > auto_radius(X, 2.0)
    assert result.status == "extrapolates" and "supported" not in result.status_line
    assert "trust radius" in result.status_line and not result.evidence["trust"]["inside"]
    provenance = OmegaConf.load(result.emitted).provenance
    assert provenance.uncertainty.status == "extrapolates"
    assert ": OUTSIDE." in (result.report_dir / "report.md").read_text()
    # The calibration figures travel beside the probabilities: provenance, report, W&B summary.
    summary = summary_values(result)
    assert summary["trust/inside"] is False and 0 <= summary["calibration/coverage@80"] <= 1
    assert {"coverage@50", "coverage@80", "coverage@95", "ece", "brier"} <= set(provenance.uncertainty.calibration)
    assert "Calibration on 24 out of fold runs" in (result.report_dir / "report.md").read_text()


def test_candidates_around_runs_fill_the_region_and_meet_the_bounds():
    """Draws around the best runs start with the runs themselves (distance 0), meet minimums and
    caps, and nearly all lie within the auto trust radius."""
    rng = np.random.default_rng(0)
    domains = [f"d{i}" for i in range(6)]
    runs = rng.dirichlet(np.full(6, 5.0), size=40)
    losses = rng.normal(size=40)
    space = candidate_space(domains, {d: 1.0 for d in domains}, SamplerConfig(), minimums={"d0": 0.05}, caps={"d1": 0.3})
    drawn = around_runs(space, runs, losses, 500, seed=1)
    assert len(drawn) >= 450 and np.allclose(drawn.sum(axis=1), 1.0)
    assert np.all(drawn[:, 0] >= 0.05 - 1e-9) and np.all(drawn[:, 1] <= 0.3 + 1e-9)
    assert nearest_l1(drawn[:1], runs)[0] < 1e-9 or drawn[0, 0] == 0.05  # a centre (clipped only by the minimum)
    assert np.mean(nearest_l1(drawn, runs) <= auto_radius(runs, 2.0)) >= 0.9
