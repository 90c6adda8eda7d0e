"""regmix-propose: active rounds written as sweeps; fits over several rounds; pool mode; bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from analysis.acquisition import select_batch
from analysis.errors import AnalysisError
from analysis.propose import run_propose
from analysis.propose_config import ProposeAppConfig, register_propose_configs
from tests.support.synthetic_runs import TARGET, draw_mixtures, interaction_loss, synthetic_records
from regmix.errors import RegmixError
from regmix.hydra_conf import CONF_PACKAGE
from regmix.run_record import write_record
from regmix.sweep.table import read_mixtures_table

BIN = Path(sys.executable).parent
DOMAINS = 5
#: Small members: the tests check the plumbing and the contract, not the regression's quality.
FAST = ["acquisition.n_bags=4", "regressor.lightgbm.n_estimators=100", "regressor.lightgbm.learning_rate=0.1",
        "n_candidates=2000"]


def compose_propose(overrides: list[str]) -> ProposeAppConfig:
    register_propose_configs()
    with initialize_config_module(config_module=CONF_PACKAGE, version_base="1.3"):
        cfg = compose(config_name="propose", overrides=overrides)
    return OmegaConf.to_object(cfg)


def write_round(runs_dir: Path, sweep: str, n: int, *, seed: int, status: str = "finished") -> list[dict]:
    records = synthetic_records(interaction_loss(DOMAINS, seed=1), n, seed=seed, noise=0.005, sweep=sweep)
    for rec in records:
        rec.status = status
        write_record(runs_dir / sweep / rec.run_name, rec)
    return records


@pytest.fixture
def project(tmp_path) -> Path:
    """runs/r0 with 24 finished runs of a known loss (interior optimum)."""
    write_round(tmp_path / "runs", "r0", 24, seed=0)
    return tmp_path


def overrides(root: Path, *extra: str) -> list[str]:
    return [f"runs_dir={root / 'runs'}", f"out_dir={root / 'sweeps'}", f"target={TARGET}", "sweep=r0", "out=r1",
            *FAST, *extra]


def pool_csv(path: Path, weights: np.ndarray, domains: list[str]) -> Path:
    frame = pd.DataFrame(weights, columns=domains)
    frame.insert(0, "index", np.arange(100, 100 + len(frame)))
    frame.to_csv(path, index=False)
    return path


def test_generator_round_is_a_sweep_with_its_parents(project):
    result = run_propose(compose_propose(overrides(project, "k=6")), command="regmix-propose ...")
    files = sorted(p.name for p in (project / "sweeps").iterdir())
    assert files == ["r1.mixtures.csv", "r1.sampler.json", "r1.yaml"]
    table = read_mixtures_table(project / "sweeps" / "r1.mixtures.csv")
    assert table["index"].tolist() == list(range(6))
    record = json.loads((project / "sweeps" / "r1.sampler.json").read_text())
    assert record["sweep"] == "r1" and record["n_mixtures"] == 6 and record["seed"] == 0
    assert record["parents"]["sweeps"] == ["r0"] and record["parents"]["n_runs"] == 24
    assert record["parents"]["runs_per_round"] == {"r0": 24}
    assert record["acquisition"]["kind"] == "thompson" and record["candidates"]["mode"] == "generator"
    assert record["table_sha256"] and record["target"] == TARGET
    # Never a trained mixture, never two alike.
    trained = {tuple(np.round(r, 6)) for r in result.runs.weights.to_numpy()}
    proposed = [tuple(np.round(r, 6)) for r in table.drop(columns="index").to_numpy()]
    assert not trained & set(proposed) and len(set(proposed)) == 6


def test_pool_mode_proposes_untrained_rows_of_the_table(project):
    domains = interaction_loss(DOMAINS, seed=1).domains
    records = [json.loads(p.read_text()) for p in sorted((project / "runs" / "r0").glob("*/result.json"))]
    trained = np.array([[r["mixture"][d] for d in domains] for r in records])
    fresh = draw_mixtures(30, domains, seed=7)
    pool = pool_csv(project / "pool.csv", np.vstack([trained[:10], fresh]), domains)
    result = run_propose(compose_propose(overrides(project, "k=12", f"candidates={pool}")))
    rows = pd.read_csv(pool).set_index("index")
    picked = result.predicted["pool_row"].to_numpy()
    assert len(set(picked)) == 12 and set(picked) <= set(rows.index[10:]), "proposals are untrained rows of the pool"
    table = result.table.set_index("index")
    np.testing.assert_allclose(table[domains].to_numpy(), rows.loc[picked, domains].to_numpy(), atol=1e-12)


def test_same_seed_and_runs_give_the_same_proposal(project):
    first = run_propose(compose_propose(overrides(project, "k=8")))
    again = run_propose(compose_propose(overrides(project, "k=8", "out=r1b")))
    other = run_propose(compose_propose(overrides(project, "k=8", "out=r1c", "seed=1")))
    pd.testing.assert_frame_equal(first.table, again.table)
    assert not first.table.equals(other.table)


def test_fit_reads_several_rounds_and_counts_each(project):
    from analysis.fit import run_fit
    from tests.test_analysis_fit import compose_fit

    write_round(project / "runs", "r1", 8, seed=5)
    cfg = compose_fit([f"runs_dir={project / 'runs'}", "sweep=[r0,r1]", f"target={TARGET}", "regressor=linear",
                       "simulation.n_candidates=5000", "simulation.top_k=20", "plots=false",
                       f"mixture_dir={project / 'mix'}", f"report_dir={project / 'rep'}"])
    result = run_fit(cfg, progress=False)
    assert len(result.table) == 32 and result.drops.rounds == {"r0": 24, "r1": 8}
    assert "by round: r0 24, r1 8" in "\n".join(result.drops.lines())
    assert result.emitted.name == "r0-r1_target.yaml"
    assert "by round: r0 24, r1 8" in (project / "rep" / "report.md").read_text()
    # The W&B analysis run's summary carries the same counts (one key per round, comparable in the UI).
    from analysis.tracking import summary_values

    summary = summary_values(result)
    assert (summary["runs/round/r0"], summary["runs/round/r1"], summary["runs/used"]) == (24, 8, 32)


def test_thompson_spreads_the_batch_and_lcb_takes_the_lowest_bound():
    rng = np.random.default_rng(0)
    weights = rng.dirichlet(np.ones(4), size=200)
    members = rng.normal(size=(6, 200)) * 0.1 + weights[:, 0][None, :]  # low loss where domain 0 is small
    lcb = select_batch(members, weights, 5, kind="lcb", kappa=1.0)
    score = members.mean(0) - members.std(0)
    assert set(lcb.picks) == set(np.argsort(score)[:5])
    spread = select_batch(members, weights, 10, kind="thompson", min_distance=0.3, seed=3)
    pairwise = np.abs(weights[spread.picks][:, None, :] - weights[spread.picks][None, :, :]).sum(-1)
    assert len(set(spread.picks)) == 10 and pairwise[np.triu_indices(10, 1)].min() > 0.3
    assert np.median(weights[spread.picks, 0]) < np.median(weights[:, 0]), "the batch goes where the loss is low"


def _no_files(root: Path) -> bool:
    return not (root / "sweeps").exists() or not any((root / "sweeps").iterdir())


@pytest.mark.parametrize(
    "case, match",
    [
        ("no finished runs", "none of the"),
        ("unknown sweep", "unknown"),
        ("k larger than the pool", "larger than the"),
        ("pool with other domains", "other domains"),
    ],
)
def test_bad_input_is_one_error_and_writes_nothing(tmp_path, case, match):
    extra = []
    if case == "no finished runs":
        write_round(tmp_path / "runs", "r0", 6, seed=0, status="failed")
    else:
        write_round(tmp_path / "runs", "r0", 12, seed=0)
    if case == "unknown sweep":
        extra = ["sweep=nope"]
    domains = interaction_loss(DOMAINS, seed=1).domains
    if case == "k larger than the pool":
        extra = ["k=9", f"candidates={pool_csv(tmp_path / 'pool.csv', draw_mixtures(8, domains, seed=2), domains)}"]
    if case == "pool with other domains":
        other = [*domains[:-1], "elsewhere"]
        extra = [f"candidates={pool_csv(tmp_path / 'pool.csv', draw_mixtures(20, domains, seed=2), other)}"]
    with pytest.raises(AnalysisError, match=match):
        run_propose(compose_propose(overrides(tmp_path, "k=4", *extra)))
    assert _no_files(tmp_path)


def test_an_existing_round_is_named_by_out(tmp_path):
    """The new sweep's name is typed as out=; the refusal to replace its table names that key."""
    write_round(tmp_path / "runs", "r0", 12, seed=0)
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "sweeps" / "r1.mixtures.csv").write_text("index\n")
    with pytest.raises(RegmixError, match=r"pass overwrite=true to replace it or pick another out= name"):
        run_propose(compose_propose(overrides(tmp_path, "k=4")))


def test_cli_error_is_one_line_exit_2(tmp_path):
    proc = subprocess.run([str(BIN / "regmix-propose"), "sweep=missing", "out=r1", "k=4"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "missing" in lines[0] and list(tmp_path.iterdir()) == []


def test_fit_hint_names_a_runnable_next_round():
    """regmix-fit's `next:` hint is a regmix-propose command with the required out= and the fit's sweeps."""
    from analysis.config import FitAppConfig
    from analysis.fit_decide import propose_hint

    cfg = FitAppConfig()
    cfg.sweep = ["r0", "r1"]
    assert propose_hint(cfg) == "regmix-propose 'sweep=[r0,r1]' out=r0-r1_next k=32"
    cfg.sweep, cfg.source.kind = "mine", "csv"
    assert propose_hint(cfg).startswith("regmix-propose sweep=mine out=mine_next k=32 source=csv")
    cfg.sweep, cfg.source.dataset = "paper", "regmix-paper"  # source=paper: the preset, as the README runs it
    assert propose_hint(cfg) == "regmix-propose source=paper out=paper_next k=32"


def test_rounds_from_wandb_groups_are_merged_and_counted(tmp_path, monkeypatch):
    """source=wandb with a list of groups (regmix-train logs each sweep's runs in group <sweep>):
    both rounds are read through the loopback W&B backend and counted per round."""
    from tests.fakes import DUMMY_API_KEY, FakeWandb

    with FakeWandb() as fake:
        monkeypatch.setenv("WANDB_BASE_URL", fake.url)
        monkeypatch.setenv("WANDB_API_KEY", DUMMY_API_KEY)
        for sweep, n, seed in (("r0", 20, 0), ("r1", 10, 1)):
            for rec in synthetic_records(interaction_loss(DOMAINS, seed=1), n, seed=seed, noise=0.005, sweep=sweep):
                config = {"mixture": {"index": rec.mixture_index, "weights": rec.mixture, "name": None},
                          "model": {"name": "tiny"}, "corpus": rec.corpus, "run_name": rec.run_name, "sweep": sweep}
                fake.add_run(config=config, summary={f"val/{TARGET}/loss": rec.val_loss[TARGET], "tokens": 1000},
                             group=sweep, job_type="proxy")
        fake.add_run(config={"run_name": "other", "sweep": "r9"}, summary={}, group="r9", job_type="proxy")
        cfg = compose_propose([
            "source=wandb", "source.wandb.entity=regmix-tests", "source.wandb.group=[r0,r1]", "source.wandb.retries=1",
            f"out_dir={tmp_path / 'sweeps'}", f"target={TARGET}", "sweep=[r0,r1]", "out=r2", *FAST, "k=4",
        ])
        result = run_propose(cfg)
    assert len(result.runs) == 30 and "by round: r0 20, r1 10" in "\n".join(result.drops.lines())
    record = json.loads((tmp_path / "sweeps" / "r2.sampler.json").read_text())
    assert record["parents"]["sweeps"] == ["r0", "r1"] and record["parents"]["runs_per_round"] == {"r0": 20, "r1": 10}
    assert record["parents"]["source"] == "wandb" and record["n_mixtures"] == 4
