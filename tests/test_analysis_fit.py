"""regmix-fit end to end: shipped configs, run_fit on local records and on the paper's data,
the emitted Hydra mixture, the CLI's output and error contract, and the torch-free import."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from analysis.config import FitAppConfig, register_fit_configs
from analysis.emit import mixture_path, round_weights
from analysis.errors import AnalysisError
from analysis.fit import run_fit
from tests.support.synthetic_runs import TARGET, linear_loss, synthetic_records
from regmix.hydra_conf import CONF_PACKAGE
from regmix.config import MixtureConfig
from regmix.mixture import Mixture
from regmix.run_record import write_record

REPO = Path(__file__).resolve().parents[1]
PAPER = Path(os.environ.get("REGMIX_PAPER_DATA", REPO / "../shared/data/regmix-paper"))
FAST = ["regressor=quick", "simulation.n_candidates=20000", "simulation.top_k=20", "plots=false"]


def compose_fit(overrides: list[str]) -> FitAppConfig:
    register_fit_configs()
    with initialize_config_module(config_module=CONF_PACKAGE, version_base="1.3"):
        cfg = compose(config_name="fit", overrides=overrides)
    return OmegaConf.to_object(cfg)


@pytest.fixture
def local_runs(tmp_path) -> Path:
    root = tmp_path / "runs"
    for rec in synthetic_records(linear_loss(5, seed=3), 40, noise=0.01, sweep="syn"):
        write_record(root / rec.run_name, rec)
    return root


def local_overrides(tmp_path: Path, root: Path) -> list[str]:
    return ["source=local", f"source.root={root}", f"target={TARGET}", f"mixture_dir={tmp_path / 'mix'}",
            f"report_dir={tmp_path / 'report'}", "out=syn", *FAST]


@pytest.mark.parametrize("source", ["local", "csv", "wandb", "paper"])
@pytest.mark.parametrize("regressor", ["default", "quick", "linear"])
def test_every_shipped_config_composes(source, regressor):
    cfg = compose_fit([f"source={source}", f"regressor={regressor}", "sweep=demo"])
    assert isinstance(cfg, FitAppConfig) and cfg.source.kind == {"paper": "csv"}.get(source, source)
    assert cfg.report_dir is None  # reports/<emitted name>/ at fit time: one folder per target
    if source == "local":
        assert cfg.source.root is None and cfg.name == "demo" and cfg.test.kind == "none"
    if source == "paper":
        assert cfg.target == "pile_cc" and cfg.test.kind == "csv" and cfg.test.mixtures.endswith("test_mixture_1m.csv")
        assert len(cfg.simulation.prior) == 17


def test_targets_and_mappings_compose_from_the_command_line():
    assert compose_fit(["target=pile_cc"]).target == "pile_cc"
    assert compose_fit(["target={a: 1, b: 3}"]).target == {"a": 1, "b": 3}
    cfg = compose_fit(["simulation.caps={a: 0.5}", "simulation.minimums={b: 0.1}", "simulation.prior={a: 3, b: 1}",
                       "source.rename={old: new}"])
    assert cfg.simulation.caps == {"a": 0.5} and cfg.simulation.minimums == {"b": 0.1}
    assert cfg.simulation.prior == {"a": 3, "b": 1} and cfg.source.rename == {"old": "new"}


def test_run_fit_on_local_records_emits_a_mixture_regmix_train_composes(tmp_path, local_runs):
    result = run_fit(compose_fit(local_overrides(tmp_path, local_runs)), command="regmix-fit ...", progress=False)
    # A linear loss: ridge ranks held-out runs best, so the evidence lets it drive.
    assert result.drive == "ridge" and "highest out-of-fold Spearman on these 40 runs" in result.drive_reason
    assert result.status == "supported" and result.evidence["emitted"]["probability_beats"]["prior"] >= 0.7
    assert result.emitted == tmp_path / "mix" / "syn.yaml"
    text = result.emitted.read_text()
    assert text.startswith("# Mixture 'syn', emitted by regmix-fit") and "regmix-train mixture=syn" in text

    merged = OmegaConf.merge(OmegaConf.structured(MixtureConfig), OmegaConf.load(result.emitted))
    assert merged.name == "syn" and merged.index is None and merged.table is None
    domains = [f"d{i:02d}" for i in range(5)]
    mixture = Mixture(dict(merged.weights), domains=domains, tolerance=1e-6)
    assert abs(sum(mixture.values()) - 1.0) <= 1e-6 and mixture.to_dict() == result.mixture.to_dict()
    provenance = merged.provenance
    assert provenance.runs.count == 40 and provenance.runs.source == "local" and len(provenance.runs.table_sha256) == 64
    assert provenance.target.label == TARGET and provenance.regressor.name == "ridge"
    assert provenance.regressor.oof.spearman > 0.95 and provenance.simulation.n_candidates == 20000
    assert provenance.simulation.sampler.cap_multiplier == 15.0 and provenance.command == "regmix-fit ..."

    # The known answer of a linear loss: all weight on the domain with the largest gain (caps are 1 here).
    loss = linear_loss(5, seed=3)
    best_domain = domains[int(np.argmax(loss.gain))]
    assert mixture[best_domain] > 0.95
    assert result.predicted["chosen"] < min(result.predicted["best_run"], result.predicted["prior"], result.predicted["uniform"])
    for name in ("report.md", "comparison.csv", "runs.csv", "mixture.csv", "top_candidates.csv", "predictions.csv"):
        assert (tmp_path / "report" / name).is_file(), name
    assert "| ridge" in (tmp_path / "report" / "report.md").read_text()


def test_existing_mixture_is_kept_unless_overwrite(tmp_path, local_runs):
    overrides = local_overrides(tmp_path, local_runs)
    target = mixture_path("syn", tmp_path / "mix")
    target.parent.mkdir(parents=True)
    target.write_text("name: syn\n# hand-made, a run trained on it\n")
    with pytest.raises(AnalysisError, match=r"syn.yaml already exists .* pass overwrite=true .* or out=<another name>"):
        run_fit(compose_fit(overrides), progress=False)
    assert target.read_text() == "name: syn\n# hand-made, a run trained on it\n"
    run_fit(compose_fit([*overrides, "overwrite=true"]), progress=False)
    assert "emitted by regmix-fit" in target.read_text()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("regressor.drive=svm", r"regressor.drive='svm': use auto, best_oof, rule or one of"),
        ("regressor.compare=[ridge,svm]", r"regressor.compare=\['ridge', 'svm'\]: use some of"),
        ("simulation.aggregate=mode", r"simulation.aggregate='mode' is unknown"),
        ("simulation.top_k=0", r"simulation.top_k=0 must be between 1 and"),
        ("simulation.caps={nope: 0.5}", r"simulation.caps names unknown domain\(s\) \['nope'\]"),
        ("simulation.minimums={d00: 0.7, d01: 0.7}", r"simulation.minimums sum to 1.4"),
        ("target=nope", r"target names key\(s\) \['nope'\] that no run logged"),
        ("out=a/b", r"out='a/b' is not a usable mixture name"),
    ],
)
def test_bad_settings_fail_before_any_fitting(tmp_path, local_runs, override, message):
    cfg = compose_fit([*local_overrides(tmp_path, local_runs), override])
    with pytest.raises(ValueError, match=message):
        run_fit(cfg, progress=False)
    assert not (tmp_path / "mix").exists() and not (tmp_path / "report").exists()


def test_test_source_with_other_domains_is_refused(tmp_path, local_runs):
    other = tmp_path / "other"
    for rec in synthetic_records(linear_loss(4, seed=3), 10, sweep="other"):
        write_record(other / rec.run_name, rec)
    overrides = [*local_overrides(tmp_path, local_runs), "test.kind=local", f"test.root={other}"]
    with pytest.raises(AnalysisError, match=r"test runs name other domains .* only in training \['d04'\]"):
        run_fit(compose_fit(overrides), progress=False)
    same = [*local_overrides(tmp_path, local_runs), "test.kind=local", f"test.root={local_runs}"]
    with pytest.raises(AnalysisError, match=r"the test source is the training source"):
        run_fit(compose_fit(same), progress=False)


def test_plots_and_a_weighted_target(tmp_path, local_runs):
    overrides = [o for o in local_overrides(tmp_path, local_runs) if o != "plots=false" and not o.startswith("target=")]
    # the records log one loss; a list of one domain is a valid (equal-weight) target
    result = run_fit(compose_fit([*overrides, f"target=[{TARGET}]", "plots=true"]), progress=False)
    for name in ("pred_vs_actual.png", "domain_correlation.png", "mixture_vs_prior.png", "intervals.png"):
        assert (result.report_dir / name).stat().st_size > 1000, name


def test_weak_evidence_falls_back_to_a_supported_point_and_says_so(tmp_path):
    """Known answer: noise far above the signal; no regressor can rank the runs, so the fit emits
    the best supported point (the best run or the prior), not an argmax, and says why and what next."""
    root = tmp_path / "noisy"
    records = synthetic_records(linear_loss(5, seed=3), 24, noise=5.0, sweep="noisy")  # noise >> signal
    for rec in records:
        rec.val_loss[TARGET] += 20.0  # a cross-entropy is >= 0: shift the noisy losses clear of 0
        write_record(root / rec.run_name, rec)
    result = run_fit(compose_fit(local_overrides(tmp_path, root)), progress=False)
    assert result.status == "fallback"
    assert "ranks held-out runs poorly" in result.status_line and "regmix-propose" in result.status_line
    domains = result.table.domains
    emitted = result.mixture.vector(domains)
    best = np.array([result.best_run["weights"][d] for d in domains])
    prior = np.full(len(domains), 1 / len(domains))  # these records carry a uniform token prior
    assert min(np.abs(emitted - best).sum(), np.abs(emitted - prior).sum()) < 2e-3
    provenance = OmegaConf.load(result.emitted).provenance
    assert provenance.uncertainty.status == "fallback" and provenance.uncertainty.status_line == result.status_line
    report = (result.report_dir / "report.md").read_text()
    assert result.status_line in report and "P(chosen beats)" in report


def test_regmix_fit_pulls_runs_from_wandb(tmp_path, monkeypatch):
    """source=wandb end to end, against the loopback fake of the W&B backend (tests.fakes)."""
    from tests.fakes import DUMMY_API_KEY, FakeWandb

    loss = linear_loss(4, seed=5)
    with FakeWandb() as fake:
        monkeypatch.setenv("WANDB_BASE_URL", fake.url)
        monkeypatch.setenv("WANDB_API_KEY", DUMMY_API_KEY)
        for rec in synthetic_records(loss, 30, noise=0.01):
            config = {"mixture": {"index": rec.mixture_index, "weights": rec.mixture, "name": None},
                      "model": {"name": "tiny"}, "corpus": rec.corpus, "run_name": rec.run_name, "sweep": "syn"}
            summary = {f"val/{TARGET}/loss": rec.val_loss[TARGET], "tokens": 1000}
            fake.add_run(config=config, summary=summary, sweep="swpfit01")
        fake.add_run(config={"run_name": "crashed"}, summary={}, state="crashed", sweep="swpfit01")
        cfg = compose_fit([
            "source=wandb", "source.wandb.sweep=swpfit01", "source.wandb.entity=regmix-tests", "source.wandb.retries=1",
            "source.wandb.retry_wait_s=1", "source.wandb.retry_wait_max_s=1", f"target={TARGET}",
            f"mixture_dir={tmp_path}", f"report_dir={tmp_path / 'report'}", "out=from_wandb", *FAST,
        ])
        result = run_fit(cfg, progress=False)
    assert len(result.table) == 30 and result.drops.total == 30  # the crashed run is never pulled
    assert result.table.prior == {d: 1000.0 for d in loss.domains}  # the corpus token counts the runs logged
    provenance = OmegaConf.load(result.emitted).provenance
    assert provenance.runs.source == "wandb" and provenance.runs.sweep == "swpfit01"
    assert result.mixture[loss.domains[int(np.argmax(loss.gain))]] > 0.95


def test_round_weights_sum_to_one_and_respect_caps():
    weights = {"a": 0.33333333, "b": 0.33333333, "c": 0.33333334, "z": 0.0}
    rounded = round_weights(weights, 4)
    assert abs(sum(rounded.values()) - 1.0) < 1e-9 and rounded["z"] == 0.0
    assert sorted(rounded.values()) == [0.0, 0.3333, 0.3333, 0.3334]
    capped = round_weights({"a": 0.49996, "b": 0.50004}, 4, upper=[0.4999, 1.0])
    assert capped["a"] <= 0.4999 + 1e-12 and abs(sum(capped.values()) - 1) < 1e-9
    with pytest.raises(AnalysisError, match="is not a usable mixture name"):
        mixture_path("a b", None)


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "analysis.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_cli_prints_where_everything_went_and_errors_in_one_line(tmp_path, local_runs):
    args = [f"source.root={local_runs}", f"target={TARGET}", "mixture_dir=mix", "report_dir=rep", "out=cli", *FAST]
    done = _cli(args, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "emitted: mix/cli.yaml" in done.stdout and "report:  rep/report.md" in done.stdout
    assert "| ridge" in done.stdout and (tmp_path / "mix" / "cli.yaml").is_file()
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "rep" / ".hydra").exists()

    again = _cli(args, tmp_path)
    assert again.returncode == 2 and again.stderr.strip().count("\n") == 0
    assert again.stderr.startswith("error: mix/cli.yaml already exists")
    empty = _cli([f"source.root={tmp_path / 'none'}", f"target={TARGET}", "mixture_dir=mix"], tmp_path)
    assert empty.returncode == 2 and empty.stderr.startswith("error: source 'local' has no runs")


def test_analysis_imports_without_torch():
    code = (
        "import sys\n"
        "import analysis, analysis.cli, analysis.fit, analysis.plots, analysis.report\n"
        "import analysis.sources.local, analysis.sources.csv_tables, analysis.sources.wandb_api\n"
        "assert 'torch' not in sys.modules, 'analysis imported torch'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(not PAPER.is_dir(), reason="the paper's data (../shared/data/regmix-paper) is absent")
def test_paper_data_acceptance(tmp_path, monkeypatch):
    """Fit on the 512 training runs, score on the 256 test runs, target Pile-CC (200k candidates
    here; the README command and benchmarks/fit_speed.py use 1M)."""
    monkeypatch.setenv("REGMIX_PAPER_DATA", str(PAPER))  # the local copy: nothing is downloaded
    cfg = compose_fit([
        "source=paper", f"mixture_dir={tmp_path}", f"report_dir={tmp_path / 'report'}", "plots=false",
        "simulation.n_candidates=200000",
    ])
    result = run_fit(cfg, progress=False)
    table = result.comparison
    assert table.loc["lightgbm", "test_spearman"] >= 0.985
    assert table.loc["ridge", "test_spearman"] >= 0.895
    assert np.isfinite(table.loc["xgboost", "test_spearman"]) and table.loc["xgboost", "test_spearman"] > 0.98
    assert table["oof_spearman"].notna().all()
    assert len(result.table) == 512 and len(result.test_table) == 256
    assert result.drive == "lightgbm"
    assert result.mixture["pile_cc"] >= 0.8
    assert result.predicted["chosen"] < result.predicted["prior"]
    # The mean of the top 100 ties the best of 512 runs (it can land in worse leaves than the
    # candidates it averages); the status line says so, the recipe is emitted as published.
    assert result.predicted["chosen"] < result.predicted["best_run"] + 0.01
    # The paper's recipe by default: the emitted mixture is the mean of the driver's top 100.
    top = result.details["top"]
    assert top.shape == (100, 17) and result.simulation["aggregate"] == "mean"
    mean = dict(zip(result.table.domains, top.mean(axis=0) / top.mean(axis=0).sum()))
    assert max(abs(result.mixture[d] - w) for d, w in mean.items()) <= 1e-4
    assert set(result.evidence["emitted"]["probability_beats"]) == {"prior", "uniform", "best_run"}
    assert result.evidence["emitted"]["probability_beats"]["prior"] >= 0.9  # the recipe's mixture, never shrunk here
    # The paper's runs are noisier at high loss: measured and reported, not used unless asked.
    noise = result.evidence["noise_by_level"]
    assert noise["trend"] and noise["slope"] > 0 and noise["ratio"] > 2 and noise["applied"] is False
    assert result.predictive.noise.flat
    assert "Intervals and P(beats) still use one spread" in (tmp_path / "report" / "report.md").read_text()


@pytest.mark.skipif(not PAPER.is_dir(), reason="the paper's data (../shared/data/regmix-paper) is absent")
def test_noise_by_level_is_one_override_away(tmp_path, monkeypatch):
    """choice.noise_by_level=true: the same recipe's mixture, intervals sized by level (wider at
    the prior's higher predicted loss than at the chosen mixture's), and the report says so."""
    monkeypatch.setenv("REGMIX_PAPER_DATA", str(PAPER))
    base = ["source=paper", f"mixture_dir={tmp_path}", f"report_dir={tmp_path / 'report'}", "plots=false",
            "simulation.n_candidates=50000", "overwrite=true"]
    off = run_fit(compose_fit(base), progress=False)
    on = run_fit(compose_fit([*base, "choice.noise_by_level=true"]), progress=False)
    assert on.mixture.to_dict() == off.mixture.to_dict()
    assert on.evidence["noise_by_level"]["applied"] is True and not on.predictive.noise.flat
    width = {name: {k: v[2] - v[0] for k, v in r.intervals.items()} for name, r in (("on", on), ("off", off))}
    assert width["off"]["chosen"] == pytest.approx(width["off"]["prior"])
    # The best run's centre is the fold model's that never saw it: its residuals as measured, unscaled.
    coverage = off.evidence["emitted"]["coverage"]
    assert off.predictive.scale < 1
    assert width["off"]["chosen"] == pytest.approx(2 * off.predictive.half_width(coverage))
    assert width["off"]["best_run"] == pytest.approx(2 * off.predictive.half_width(coverage) / off.predictive.scale)
    assert width["on"]["chosen"] < width["off"]["chosen"] and width["on"]["prior"] > 1.2 * width["on"]["chosen"]
    assert "use the spread at each mixture's own predicted level" in (tmp_path / "report" / "report.md").read_text()


def test_evidence_line_says_when_no_member_tells_two_mixtures_apart():
    """Emitting the best run itself gives P(beats it) = 50% by 'ties half'; the line says why
    instead of printing what would read as a coin flip."""
    from analysis.verdict import Evidence

    line = Evidence({"prior": 0.75, "best_run": 0.5}, {"prior": (-0.2, -0.1, 0.01), "best_run": (0.0, 0.0, 0.0)}, 0.8,
                    "of new runs").line()
    assert "prior 75% (loss diff -0.100 [-0.200, +0.010])" in line
    assert "best_run: no member tells them apart (loss diff 0)" in line and "best_run 50%" not in line


@pytest.mark.parametrize("value, why", [(-0.5, "negative, and a cross-entropy loss never is"),
                                        (1e300, "beyond 1e\\+15 in size")])
def test_an_impossible_loss_is_refused_naming_run_and_key(tmp_path, value, why):
    """A negative cross-entropy was fitted as if real; 1e300 crashed XGBoost ('Label contains NaN')."""
    root = tmp_path / "runs"
    records = synthetic_records(linear_loss(5, seed=3), 12, noise=0.01, sweep="syn")
    records[3].val_loss[TARGET] = value
    for rec in records:
        write_record(root / rec.run_name, rec)
    shown = re.escape(f"logged {TARGET} = {value:g}: ")
    with pytest.raises(AnalysisError, match=rf"run {records[3].run_name} of .* {shown}{why}"):
        run_fit(compose_fit(local_overrides(tmp_path, root)), progress=False)
    assert not (tmp_path / "mix").exists()


def test_the_report_says_when_the_mixture_was_not_written(tmp_path, local_runs, monkeypatch):
    import analysis.fit_emit

    def full_disk(path, **_):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(analysis.fit_emit, "emit_mixture", full_disk)
    with pytest.raises(OSError, match="No space left"):
        run_fit(compose_fit(local_overrides(tmp_path, local_runs)), progress=False)
    report = (tmp_path / "report" / "report.md").read_text()
    assert "Emitted:" not in report and "The mixture was **not written** to" in report and "No space left" in report
    monkeypatch.undo()
    result = run_fit(compose_fit(local_overrides(tmp_path, local_runs)), progress=False)
    assert f"Emitted: `{result.emitted}`" in (tmp_path / "report" / "report.md").read_text()


def test_extrapolation_note_describes_the_driver_rule_in_force():
    """drive=auto follows the best out-of-fold Spearman; the run-count rule is only drive=rule."""
    from analysis.report import extrapolation_note

    text = "\n".join(extrapolation_note(0.7))
    assert "out-of-fold Spearman" in text and "min_runs_for_trees" not in text


@pytest.mark.parametrize("key", ["report_dir", "mixture_dir"])
def test_a_file_where_an_output_folder_goes_is_refused_before_fitting(tmp_path, local_runs, key):
    """It was a FileExistsError traceback after the whole fit."""
    (tmp_path / "taken").write_text("not a folder")
    overrides = [o for o in local_overrides(tmp_path, local_runs) if not o.startswith(f"{key}=")]
    with pytest.raises(AnalysisError, match=rf"{key}: .*taken is a file, not a folder; set {key}=<a folder>"):
        run_fit(compose_fit([*overrides, f"{key}={tmp_path / 'taken'}"]), progress=False)
