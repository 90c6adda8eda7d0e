"""Metrics to maximise, any key: `target=<key> target_goal=maximize` on a CSV swarm of accuracies
(higher is better) emits the mixture with the highest predicted accuracy, says so, and writes the
goal into the next round's W&B sweep spec."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf

from analysis.errors import AnalysisError
from analysis.fit import run_fit
from analysis.propose import run_propose
from analysis.report import summary_text
from analysis.round_target import resolve_target
from regmix.sweep.record import SweepRecord
from tests.support.synthetic_runs import draw_mixtures, linear_loss
from tests.test_analysis_fit import FAST, compose_fit
from tests.test_propose import compose_propose

DOMAINS = 5


def accuracy_swarm(root: Path, n: int = 40) -> tuple[list[str], np.ndarray]:
    """Mixtures and a downstream accuracy that rises with each domain's known gain, beside
    per-domain loss columns (`loss_<domain>`): the accuracy is a column, not a loss."""
    truth = linear_loss(DOMAINS, seed=3)
    weights = draw_mixtures(n, truth.domains, seed=0)
    rng = np.random.default_rng(0)
    accuracy = 0.2 + 0.5 * weights @ truth.gain + rng.normal(scale=0.001, size=n)
    index = pd.Index(np.arange(n), name="index")
    pd.DataFrame(weights, columns=truth.domains, index=index).to_csv(root / "mixtures.csv")
    losses = pd.DataFrame({f"loss_{d}": 3.0 - w for d, w in zip(truth.domains, weights.T)}, index=index)
    losses["accuracy"] = accuracy
    losses["notes"] = "run ok"  # a text column is no metric: it is left out, not an error
    losses.to_csv(root / "losses.csv")
    return truth.domains, truth.gain


def csv_source(root: Path) -> list[str]:
    return ["source=csv", f"source.mixtures={root / 'mixtures.csv'}", f"source.losses={root / 'losses.csv'}",
            "source.loss_prefix=loss_", "target=accuracy"]


def fit(root: Path, *items: str):
    # The driver's own top k, no trust region: "highest predicted" is then literal.
    overrides = [*csv_source(root), f"mixture_dir={root / 'mix'}", f"report_dir={root / 'rep'}", "overwrite=true",
                 *FAST, "regressor=linear", "choice.objective=driver", "choice.trust_radius=-1", *items]
    return run_fit(compose_fit(overrides), progress=False)


def test_a_maximised_accuracy_emits_the_mixture_with_the_highest_predicted_accuracy(tmp_path):
    domains, gain = accuracy_swarm(tmp_path)
    result = fit(tmp_path, "target_goal=maximize")
    assert result.target.maximize and result.target.weights == {"accuracy": 1.0}
    p = result.predicted  # in the user's units: accuracies
    assert p["chosen"] > max(p["prior"], p["uniform"], p["best_run"])
    assert result.best_run["loss"] == pytest.approx(result.details["y"].max())  # the best run is the most accurate
    chosen = result.mixture.vector(domains)
    assert np.argmax(chosen) == np.argmax(gain), "most weight on the domain that raises accuracy most"
    text = summary_text(result)
    assert "target: accuracy (maximize: higher is better)" in text and "predicted accuracy" in text
    report = (result.report_dir / "report.md").read_text()
    assert "**accuracy** (maximized: higher is better)" in report and "higher is better" in report
    emitted = OmegaConf.load(result.emitted)
    assert emitted.provenance.target.goal == "maximize"
    assert emitted.provenance.predicted_loss.chosen == pytest.approx(p["chosen"])
    assert result.emitted.read_text().splitlines()[1].startswith("# Maximises accuracy (higher is better)")
    # Minimising the same column goes the other way: the sign is applied, in one place.
    lowest = fit(tmp_path, "target_goal=minimize", "out=low")
    assert np.argmax(lowest.mixture.vector(domains)) == np.argmin(gain)
    assert lowest.predicted["chosen"] < np.median(lowest.details["y"]) < p["chosen"]


def test_a_maximised_round_writes_its_goal_into_the_sweep_spec(tmp_path):
    domains, _ = accuracy_swarm(tmp_path)
    prior = "{" + ", ".join(f"{d}: 1" for d in domains) + "}"
    cfg = compose_propose([*csv_source(tmp_path), "target_goal=maximize", f"out_dir={tmp_path / 'sweeps'}", "out=r1",
                           "k=4", "n_candidates=2000", "acquisition.n_bags=4", f"simulation.prior={prior}"])
    result = run_propose(cfg)
    spec = yaml.safe_load((tmp_path / "sweeps" / "r1.yaml").read_text())
    assert spec["metric"] == {"name": "accuracy", "goal": "maximize"}
    record = json.loads((tmp_path / "sweeps" / "r1.sampler.json").read_text())
    assert record["target"] == "accuracy" and record["target_goal"] == "maximize"
    assert record["predicted"]["best_observed"] == pytest.approx(result.runs.losses["accuracy"].max())


def test_a_goal_outside_wandbs_words_or_rounds_of_mixed_goals_are_refused(tmp_path):
    accuracy_swarm(tmp_path)
    with pytest.raises(AnalysisError, match=r"target_goal='max' is unknown; use one of \['minimize', 'maximize'\]"):
        fit(tmp_path, "target_goal=max")
    # One key, two goals: which way is better is the user's call, never the first round's.
    records = {"r0": SweepRecord(sweep="r0", target="accuracy", target_goal="maximize"),
               "r1": SweepRecord(sweep="r1", target="accuracy", target_goal="minimize")}
    with pytest.raises(AnalysisError, match=r"the rounds record different targets \(r0: accuracy \(maximize\); r1: accuracy\)"):
        resolve_target(None, records=records, available=["accuracy"])
    assert resolve_target(None, goal="maximize", records=records, available=["accuracy"]).maximize


def test_any_summary_key_is_a_target(tmp_path):
    """W&B summary keys beside the losses become metrics a fit can target (W&B's own '_' keys do not)."""
    from analysis.sources.wandb_api import record_from_run
    from regmix.run_record import write_record
    from tests.support.synthetic_runs import TARGET, synthetic_records

    common = dict(run_id="abc", display_name="x", state="finished", sweep_id="s", entity="e", project="p", url=None)
    config = {"mixture": {"index": 3, "weights": {"a": 0.25, "b": 0.75}}}
    record, _ = record_from_run(config=config, summary={"val/a/loss": 1.5, "eval/acc": 0.61, "_runtime": 9.0,
                                                         "note": "text"}, **common)
    assert record.metrics == {"eval/acc": 0.61} and record.val_loss == {"a": 1.5}

    truth = linear_loss(DOMAINS, seed=3)
    root = tmp_path / "runs"
    for rec in synthetic_records(truth, 24, noise=0.001, sweep="acc"):
        rec.metrics = {"eval/acc": 1.0 - rec.val_loss[TARGET] / 10}  # higher where the loss is lower
        write_record(root / rec.run_name, rec)
    result = run_fit(compose_fit([f"source.root={root}", "target=eval/acc", "target_goal=maximize", "regressor=linear",
                                  f"mixture_dir={tmp_path / 'mix'}", f"report_dir={tmp_path / 'rep'}", *FAST]),
                     progress=False)
    assert result.target.weights == {"eval/acc": 1.0} and result.predicted["chosen"] > result.predicted["prior"]
    assert np.argmax(result.mixture.vector(truth.domains)) == np.argmax(truth.gain)
