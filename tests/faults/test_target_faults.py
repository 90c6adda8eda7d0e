"""Faults of the target and its rounds, through the real command: an impossible loss, rounds that
record different targets, a named round none of whose runs can be used. Each is one line naming
the run, key or round and the fix, and nothing is written."""

from __future__ import annotations

from pathlib import Path

from regmix.run_record import write_record
from regmix.sweep.record import SweepRecord
from tests.faults.test_fit_faults import FAST, run_cli
from tests.support.synthetic_runs import TARGET, linear_loss, synthetic_records


def write_round(runs: Path, sweep: str, n: int, *, domains: int = 4, seed: int = 0, huge: bool = False) -> None:
    for rec in synthetic_records(linear_loss(domains, seed=3), n, noise=0.01, seed=seed, sweep=sweep):
        rec.val_loss["other"] = 5.0 - rec.val_loss[TARGET]
        if huge and rec.mixture_index == 2:
            rec.val_loss[TARGET] = 1e300  # a logging error; XGBoost crashed on it ('Label contains NaN')
        write_record(runs / sweep / rec.run_name, rec)


def test_a_huge_loss_is_refused_naming_run_and_key(tmp_path, bad_input):
    write_round(tmp_path / "runs", "r0", 12, huge=True)
    done = run_cli("analysis.cli", ["sweep=r0", f"target={TARGET}", "mixture_dir=mix", *FAST], tmp_path)
    line = bad_input("regmix-fit on a run record whose target loss is 1e300", done)
    assert "run run00002 of runs/r0/**/result.json logged target = 1e+300" in line
    assert not (tmp_path / "mix").exists()


def test_rounds_that_record_different_targets_are_refused(tmp_path, bad_input):
    for seed, (sweep, target) in enumerate((("r0", TARGET), ("r1", {TARGET: 0.5, "other": 0.5}))):
        write_round(tmp_path / "runs", sweep, 8, seed=seed)
        SweepRecord(sweep=sweep, target=target, target_goal="minimize").write(tmp_path / "sweeps" / f"{sweep}.sampler.json")
    done = run_cli("analysis.cli_propose", ["sweep=[r0,r1]", "out=r2", "k=4", "n_candidates=500"], tmp_path)
    line = bad_input("regmix-propose over rounds that recorded different targets, none named", done)
    assert "the rounds record different targets (r0: target; r1: 0.5*target+0.5*other)" in line
    assert not (tmp_path / "sweeps" / "r2.sampler.json").exists()


def test_a_round_whose_runs_all_drop_is_refused(tmp_path, bad_input):
    write_round(tmp_path / "runs", "r0", 12)
    write_round(tmp_path / "runs", "r1", 4, domains=3, seed=1)  # other domains: every run drops
    done = run_cli("analysis.cli", ["sweep=[r0,r1]", f"target={TARGET}", "mixture_dir=mix", *FAST], tmp_path)
    line = bad_input("regmix-fit 'sweep=[r0,r1]' where every run of r1 names other domains", done)
    assert "round r1 contributes no run: all 4 of its runs were dropped" in line and "leave r1 out" in line
    assert not (tmp_path / "mix").exists()
