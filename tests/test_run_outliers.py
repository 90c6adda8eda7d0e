"""Runs the fit cannot explain: a proxy whose logged target is far off what its mixture predicts is
named (warning, report, provenance, W&B summary) and kept in the fit; ordinary noise names nobody."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from analysis.run_outliers import MIN_RUNS, READINGS, Z_LIMIT, run_outliers
from analysis.tracking import _media, summary_values
from tests.support.synthetic_runs import draw_mixtures, linear_loss
from tests.test_target_goal import csv_source, fit

DOMAINS = 5


def test_only_the_run_far_off_its_prediction_is_named_and_its_sign_says_worse():
    rng = np.random.default_rng(0)
    oof = rng.normal(3.0, 0.2, 300)
    y = oof + rng.normal(0.0, 0.01, 300)  # Gaussian run noise: nobody is 5 robust s.d. out
    assert run_outliers(range(300), y, oof) == []
    y[17] += 0.2  # 20 s.d. worse than its mixture predicts
    y[40] -= 0.08  # 8 s.d. better (a run that logged another checkpoint, say)
    named = run_outliers(range(300), y, oof)
    assert [o.run for o in named] == ["17", "40"], "largest |z| first"
    assert named[0].z > Z_LIMIT and named[1].z < -Z_LIMIT
    assert named[0].observed == y[17] and named[0].predicted == oof[17]


def test_too_few_runs_or_no_spread_is_not_checked_rather_than_clean():
    rng = np.random.default_rng(2)
    y = np.r_[rng.normal(0.0, 0.01, MIN_RUNS), 1.0]  # one run 100 s.d. off among noisy ones
    assert [o.run for o in run_outliers(range(len(y)), y, np.zeros(len(y)))] == [str(MIN_RUNS)]
    assert run_outliers(range(MIN_RUNS - 1), y[-(MIN_RUNS - 1):], np.zeros(MIN_RUNS - 1)) is None  # too few runs
    y = np.r_[np.zeros(40), 9.0]
    assert run_outliers(range(len(y)), y, np.zeros(len(y))) is None  # a perfect fit has no spread to scale by


def broken_accuracy_swarm(root: Path, n: int = 60, broken: int | None = 23) -> None:
    """Accuracies linear in the weights with some run noise, and one proxy (index `broken`) that
    logged a near-chance accuracy (as a diverged run would); `broken=None`: every run sound."""
    truth = linear_loss(DOMAINS, seed=3)
    weights = draw_mixtures(n, truth.domains, seed=0)
    accuracy = 0.2 + 0.5 * weights @ truth.gain + np.random.default_rng(0).normal(scale=0.01, size=n)
    if broken is not None:
        accuracy[broken] = 0.02
    index = pd.Index(np.arange(n), name="index")
    pd.DataFrame(weights, columns=truth.domains, index=index).to_csv(root / "mixtures.csv")
    losses = pd.DataFrame({f"loss_{d}": 3.0 - w for d, w in zip(truth.domains, weights.T)}, index=index)
    losses["accuracy"] = accuracy
    losses.to_csv(root / "losses.csv")


def test_a_diverged_proxy_is_named_everywhere_the_fit_reports_and_stays_in_the_fit(tmp_path):
    broken_accuracy_swarm(tmp_path)
    assert csv_source(tmp_path)[-1] == "target=accuracy"
    result = fit(tmp_path, "target_goal=maximize", "plots=true")  # the driver's panel rings the run
    assert [o.run for o in result.outliers] == ["23"]
    assert (result.report_dir / "pred_vs_actual.png").stat().st_size > 0
    outlier = result.outliers[0]
    assert outlier.z > Z_LIMIT, "worse than its mixture predicts: the fit minimises the negated accuracy"
    assert len(result.table) == 60, "named, not dropped"
    assert any(w.startswith("1 of 60 runs lie more than") and "23 (+" in w for w in result.warnings)
    report = (result.report_dir / "report.md").read_text()
    assert "**1 run(s) the fit cannot explain**" in report and "| 23  | 0.0200 " in report
    assert READINGS in report and READINGS in result.warnings[-1], "both readings, neither asserted"
    record = OmegaConf.to_container(OmegaConf.load(result.emitted).provenance.runs)
    assert [o["run"] for o in record["outliers"]] == ["23"]
    assert record["outliers"][0]["observed"] == 0.02, "in the user's units: the accuracy as logged"
    summary = summary_values(result)
    assert summary["runs/outliers"] == 1 and summary["runs/outlier_ids"] == "23"
    table = _media(result)["outliers"]  # a table in the W&B analysis run
    assert table.columns == ["run", "observed", "predicted_oof", "robust_z"] and len(table.data) == 1
    assert table.data[0][:2] == ["23", 0.02]


def test_a_clean_swarm_says_no_run_is_off(tmp_path):
    broken_accuracy_swarm(tmp_path, broken=None)
    result = fit(tmp_path, "target_goal=maximize")
    assert result.outliers == []
    assert not any("robust s.d." in w for w in result.warnings)
    assert f"- no run lies more than {Z_LIMIT:g} robust s.d." in (result.report_dir / "report.md").read_text()
    assert summary_values(result)["runs/outliers"] == 0 and "outliers" not in _media(result)


def test_the_warning_counts_every_run_beyond_the_limit_and_names_the_worst(tmp_path):
    from analysis.run_outliers import MAX_NAMED, outlier_warning

    rng = np.random.default_rng(1)
    oof = rng.normal(3.0, 0.2, 400)
    y = oof + rng.normal(0.0, 0.01, 400)
    y[:MAX_NAMED + 3] += 0.1 + 0.05 * np.arange(MAX_NAMED + 3)  # 13 runs far worse, run 12 the worst
    named = run_outliers(range(400), y, oof)
    assert len(named) == MAX_NAMED + 3 and named[0].run == str(MAX_NAMED + 2)
    warning = outlier_warning(named, 400)
    assert warning.startswith(f"{MAX_NAMED + 3} of 400 runs lie more than")
    assert "and 3 more (the report lists them)" in warning and ", 2 (" not in warning  # the 3 mildest unnamed


def test_a_sweep_too_small_to_check_says_so_instead_of_clean(tmp_path):
    broken_accuracy_swarm(tmp_path, n=12, broken=3)
    result = fit(tmp_path, "target_goal=maximize")
    assert result.outliers is None
    report = (result.report_dir / "report.md").read_text()
    assert f"- runs the fit cannot explain: not checked (fewer than {MIN_RUNS} runs" in report
    assert "no run lies more than" not in report
    assert OmegaConf.load(result.emitted).provenance.runs.outliers is None
    assert "runs/outliers" not in summary_values(result) and "outliers" not in _media(result)
