"""One target rule for regmix-fit and regmix-propose (analysis.round_target): a target, weighted
or not, is recorded in every round and read back; rounds that record different targets are
refused unless the user names one; a named round that contributes no run is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from analysis.errors import AnalysisError
from analysis.fit import run_fit
from analysis.propose import run_propose
from regmix.run_record import write_record
from regmix.sweep.record import SweepRecord
from tests.support.synthetic_runs import TARGET, interaction_loss, synthetic_records
from tests.test_analysis_fit import compose_fit
from tests.test_propose import DOMAINS, FAST, compose_propose

OTHER = "other"
WEIGHTED = {TARGET: 0.75, OTHER: 0.25}


def write_round(runs_dir: Path, sweep: str, n: int, *, seed: int, domains: int = DOMAINS) -> None:
    """Runs logging two losses (the target and another), so a weighted target has keys to weigh."""
    for rec in synthetic_records(interaction_loss(domains, seed=1), n, seed=seed, noise=0.005, sweep=sweep):
        rec.val_loss[OTHER] = 2.0 * rec.val_loss[TARGET] + 0.1
        write_record(runs_dir / sweep / rec.run_name, rec)


def propose(root: Path, *items: str):
    return run_propose(compose_propose([f"runs_dir={root / 'runs'}", f"out_dir={root / 'sweeps'}", *FAST, "k=4", *items]))


def fit(root: Path, *items: str):
    return run_fit(compose_fit([f"runs_dir={root / 'runs'}", f"sweeps_dir={root / 'sweeps'}", "regressor=linear",
                                "simulation.n_candidates=5000", "simulation.top_k=20", "plots=false",
                                f"mixture_dir={root / 'mix'}", f"report_dir={root / 'rep'}", *items]), progress=False)


def recorded(root: Path, sweep: str) -> dict:
    return json.loads((root / "sweeps" / f"{sweep}.sampler.json").read_text())


def test_a_weighted_target_survives_two_rounds(tmp_path):
    write_round(tmp_path / "runs", "r0", 24, seed=0)
    propose(tmp_path, "sweep=r0", "out=w1", f"target={{{TARGET}: 3, {OTHER}: 1}}")
    assert recorded(tmp_path, "w1")["target"] == WEIGHTED and recorded(tmp_path, "w1")["target_goal"] == "minimize"
    # W&B has no metric for a weighted target: the spec names none rather than a wrong one.
    assert "metric" not in yaml.safe_load((tmp_path / "sweeps" / "w1.yaml").read_text())
    write_round(tmp_path / "runs", "w1", 8, seed=3)
    # No target named: the next round reads it back, alone or beside a round that recorded none.
    second = propose(tmp_path, "sweep=[r0,w1]", "out=w2")
    assert second.target.weights == pytest.approx(WEIGHTED) and recorded(tmp_path, "w2")["target"] == WEIGHTED
    write_round(tmp_path / "runs", "w2", 4, seed=4)
    result = fit(tmp_path, "sweep=[r0,w1,w2]")
    assert result.target.weights == pytest.approx(WEIGHTED)
    assert result.drops.rounds == {"r0": 24, "w1": 8, "w2": 4}


def test_rounds_that_record_different_targets_are_refused_unless_one_is_named(tmp_path):
    write_round(tmp_path / "runs", "r0", 24, seed=0)
    propose(tmp_path, "sweep=r0", "out=w1", f"target={{{TARGET}: 3, {OTHER}: 1}}")
    write_round(tmp_path / "runs", "w1", 8, seed=3)
    SweepRecord(sweep="r0", target=TARGET, target_goal="minimize").write(tmp_path / "sweeps" / "r0.sampler.json")
    refusal = r"the rounds record different targets \(r0: target; w1: 0\.75\*target\+0\.25\*other\); name the one"
    with pytest.raises(AnalysisError, match=refusal):
        propose(tmp_path, "sweep=[r0,w1]", "out=w2")
    with pytest.raises(AnalysisError, match=refusal):
        fit(tmp_path, "sweep=[r0,w1]")
    assert not (tmp_path / "sweeps" / "w2.sampler.json").exists() and not (tmp_path / "mix").exists()
    named = propose(tmp_path, "sweep=[r0,w1]", "out=w2", f"target={OTHER}")
    assert named.target.weights == {OTHER: 1.0} and recorded(tmp_path, "w2")["target"] == OTHER
    assert fit(tmp_path, "sweep=[r0,w1]", f"target={TARGET}").target.weights == {TARGET: 1.0}


def test_a_round_that_contributes_no_run_is_refused(tmp_path):
    """A round whose runs all name other domains used to be dropped with one 'dropped' line."""
    write_round(tmp_path / "runs", "r0", 24, seed=0)
    write_round(tmp_path / "runs", "r1", 6, seed=1, domains=DOMAINS - 2)
    message = r"round r1 contributes no run: all 6 of its runs were dropped \(6 mixture names other domains"
    with pytest.raises(AnalysisError, match=message):
        fit(tmp_path, "sweep=[r0,r1]", f"target={TARGET}")
    with pytest.raises(AnalysisError, match=message):
        propose(tmp_path, "sweep=[r0,r1]", "out=r2", f"target={TARGET}")
