"""regmix-fit results logged to W&B (analysis.tracking): offline, then `wandb sync`, and online,
with the real wandb client against the loopback fake backend (tests.fakes)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from analysis.config import FitAppConfig, register_fit_configs
from analysis.fit import run_fit
from tests.support.synthetic_runs import TARGET, linear_loss, synthetic_records
from analysis.tracking import TrackingError
from regmix.hydra_conf import CONF_PACKAGE
from regmix.run_record import write_record
from tests.fakes import DUMMY_API_KEY, FakeWandb

REPO = Path(__file__).resolve().parents[1]
FAST = ["regressor=quick", "simulation.n_candidates=20000", "simulation.top_k=20", "plots=false"]
SUMMARY_KEYS = {
    "drive", "target", "predicted/chosen", "predicted/prior", "predicted/uniform", "predicted/best_run",
    "best_run/observed", "oof_spearman/ridge", "oof_spearman/lightgbm", "oof_spearman/xgboost", "runs/used",
    "status", "status_line", "p_beats/prior", "p_beats/uniform", "p_beats/best_run", "interval/chosen/low",
    "interval/chosen/high",
}


def compose_fit(overrides: list[str]) -> FitAppConfig:
    register_fit_configs()
    with initialize_config_module(config_module=CONF_PACKAGE, version_base="1.3"):
        return OmegaConf.to_object(compose(config_name="fit", overrides=overrides))


@pytest.fixture
def wandb_home(tmp_path, monkeypatch) -> Path:
    """Every W&B folder of this test under tmp_path/wandb-home, for an in-process wandb too.

    wandb reads its environment once per process (its setup singleton) and ignores later
    changes; tearing the singleton down before and after makes this test's env the one used."""
    import wandb

    home = tmp_path / "wandb-home"
    for key, sub in (("WANDB_DIR", ""), ("WANDB_DATA_DIR", "data"), ("WANDB_CACHE_DIR", "cache"), ("WANDB_CONFIG_DIR", "config")):
        monkeypatch.setenv(key, str(home / sub))
    wandb.teardown()
    yield home
    wandb.teardown()


def files_under(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in root.rglob("*") if p.is_file()]


def assert_key_nowhere(roots: list[Path], texts: list[str] = ()) -> None:
    files = files_under(*roots)
    assert files, "nothing was written"
    leaked = [str(p) for p in files if DUMMY_API_KEY.encode() in p.read_bytes()]
    assert not leaked, f"the API key was written to {leaked}"
    assert not any(DUMMY_API_KEY in text for text in texts)


def md5_b64(data: bytes) -> str:
    import base64

    return base64.b64encode(hashlib.md5(data).digest()).decode()


def analysis_runs(fake: FakeWandb) -> list:
    return [run for run in fake.runs.values() if run.job_type == "analysis"]


def test_offline_fit_logs_a_finished_run_and_stages_the_mixture_then_syncs(tmp_path, wandb_home):
    root = tmp_path / "runs"
    for rec in synthetic_records(linear_loss(5, seed=3), 30, noise=0.01, sweep="syn"):
        write_record(root / rec.run_name, rec)
    cfg = compose_fit(["source=local", f"source.root={root}", f"target={TARGET}", f"mixture_dir={tmp_path / 'mix'}",
                       f"report_dir={tmp_path / 'rep'}", "out=syn_offline", "tracker=offline", *FAST])
    result = run_fit(cfg, progress=False)
    # wandb-core closes the offline log a few ms after finish() returns; shutting the service
    # down waits for it, as the end of a regmix-fit process does.
    import wandb

    wandb.teardown()

    tracked = result.tracked
    assert tracked.mode == "offline" and tracked.url is None and tracked.group == "syn"  # the proxies' group
    assert tracked.dir.parent == tmp_path / "rep" / "wandb" and tracked.dir.name.startswith("offline-run-")
    log = tracked.dir / f"run-{tracked.id}.wandb"
    data = log.read_bytes()
    assert len(data) > 4096  # more than a header: the flush at finish() wrote the whole run
    for needle in (b"analysis", b"regmix-fit", b"predicted/chosen", b"oof_spearman/ridge", b"pred_vs_actual/ridge"):
        assert needle in data, needle
    emitted = result.emitted.read_bytes()
    staged = files_under(wandb_home / "data" / "artifacts" / "staging")
    assert emitted in [p.read_bytes() for p in staged]  # the artifact's copy, staged for `wandb sync`
    assert f"wandb sync {tracked.dir}" in tracked.line()

    # What `wandb sync` uploads shows what the offline log holds: a finished analysis run, its
    # summary, and the mixture artifact with the emitted file's bytes.
    with FakeWandb() as fake:
        env = {**os.environ, "WANDB_BASE_URL": fake.url, "WANDB_API_KEY": DUMMY_API_KEY, "WANDB_MODE": "online"}
        done = subprocess.run([sys.executable, "-m", "wandb", "sync", "--entity", fake.entity, str(tracked.dir)],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        (run,) = analysis_runs(fake)
        assert (run.name, run.state, run.exitcode, run.group) == (tracked.id, "finished", 0, "syn")
        assert SUMMARY_KEYS <= set(run.summary) and run.summary["drive"] == result.drive
        (artifact,) = fake.artifacts.find("syn_offline")
        assert artifact.type == "mixture" and artifact.state == "COMMITTED" and artifact.run == tracked.id
        assert fake.artifacts.file_bytes(artifact, "syn_offline.yaml") == emitted
    assert_key_nowhere([tmp_path], [done.stdout, done.stderr])


def test_online_fit_from_a_wandb_sweep_logs_back_beside_its_proxies(tmp_path):
    """source=wandb + tracker=online through the CLI: the real client, the fake backend."""
    with FakeWandb() as fake:
        for rec in synthetic_records(linear_loss(4, seed=5), 30, noise=0.01, sweep="syn"):
            config = {"mixture": {"index": rec.mixture_index, "weights": rec.mixture, "name": None},
                      "model": {"name": "tiny"}, "corpus": rec.corpus, "run_name": rec.run_name, "sweep": "syn"}
            fake.add_run(config=config, summary={f"val/{TARGET}/loss": rec.val_loss[TARGET], "tokens": 1000},
                         sweep="swpfit01", group="syn", job_type="proxy")
        home = tmp_path / "wandb-home"
        env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_BASE_URL": fake.url, "WANDB_API_KEY": DUMMY_API_KEY,
               "WANDB_MODE": "online", "WANDB_DIR": str(home), "WANDB_DATA_DIR": str(home / "data"), "WANDB_CACHE_DIR": str(home / "cache"),
               "WANDB_CONFIG_DIR": str(home / "config")}
        args = ["source=wandb", "source.wandb.sweep=swpfit01", f"source.wandb.entity={fake.entity}", f"target={TARGET}",
                "mixture_dir=mix", "report_dir=rep", "out=from_sweep", "tracker=online", *FAST]

        def fit(*extra: str) -> subprocess.CompletedProcess:
            done = subprocess.run([sys.executable, "-m", "analysis.cli", *args, *extra], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr
            return done

        first = fit()
        (run,) = analysis_runs(fake)
        assert f"W&B:     {fake.url}/{fake.entity}/{fake.project}/runs/{run.name}" in first.stdout
        assert (run.state, run.exitcode, run.project, run.group) == ("finished", 0, fake.project, "syn")
        assert run.sweep is None  # linked by group and tag, never a trial of the sweep itself
        assert {"regmix-fit", "sweep-swpfit01"} <= set(run.tags)
        config = run.plain_config
        assert config["proxies"]["sweep_id"] == "swpfit01" and config["proxies"]["runs"] == 30
        assert config["chosen"]["name"] == "from_sweep" and config["fit"]["source"]["kind"] == "wandb"
        assert SUMMARY_KEYS <= set(run.summary)
        for key in ("comparison", "predictions", "mixture", "uncertainty", "pred_vs_actual/ridge_table", "domain_correlation_table"):
            assert run.summary[key]["_type"] == "table-file", key
        emitted = (tmp_path / "mix" / "from_sweep.yaml").read_bytes()
        (artifact,) = fake.artifacts.find("from_sweep")
        assert artifact.type == "mixture" and artifact.state == "COMMITTED" and artifact.aliases == ["latest"]
        assert artifact.metadata == yaml.safe_load(emitted)["provenance"]
        assert artifact.metadata["runs"]["sweep"] == "swpfit01"
        assert fake.artifacts.file_bytes(artifact, "from_sweep.yaml") == emitted
        assert artifact.files_md5["from_sweep.yaml"] == md5_b64(emitted)
        tables = {a.collection for a in fake.artifacts.versions.values() if a.type == "run_table"}
        assert f"run-{run.name}-comparison" in tables

        # A refit that replaces the mixture logs a new version of the same artifact.
        second = fit("overwrite=true", "simulation.top_k=10", "tracker.tags=[refit]")
        versions = fake.artifacts.find("from_sweep")
        assert [(a.version, a.aliases) for a in versions] == [(0, []), (1, ["latest"])]
        refits = [r for r in analysis_runs(fake) if r.name == versions[1].run]
        assert len(analysis_runs(fake)) == 2 and "refit" in refits[0].tags
        assert fake.unknown_requests == [] and fake.missing_fields == []
    assert_key_nowhere([tmp_path], [first.stdout, first.stderr, second.stdout, second.stderr])


def test_a_bad_tracker_mode_fails_before_any_fitting(tmp_path):
    root = tmp_path / "runs"
    for rec in synthetic_records(linear_loss(3, seed=1), 8, sweep="syn"):
        write_record(root / rec.run_name, rec)
    cfg = compose_fit(["source=local", f"source.root={root}", f"target={TARGET}", f"mixture_dir={tmp_path / 'mix'}",
                       f"report_dir={tmp_path / 'rep'}", "out=bad", "tracker.mode=cloud", *FAST])
    with pytest.raises(TrackingError, match=r"tracker.mode='cloud' .* tracker=offline\|online\|disabled"):
        run_fit(cfg, progress=False)
    assert not (tmp_path / "mix").exists() and not (tmp_path / "rep").exists()


def test_online_without_credentials_fails_in_one_line_before_any_fitting(tmp_path):
    root = tmp_path / "runs"
    for rec in synthetic_records(linear_loss(3, seed=1), 8, sweep="syn"):
        write_record(root / rec.run_name, rec)
    home = tmp_path / "home"  # no ~/.netrc, no W&B settings: no key anywhere
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_API_KEY", "NETRC")}
    env.update(HOME=str(home), WANDB_CONFIG_DIR=str(home / "config"), PYTHONPATH=str(REPO), WANDB_MODE="online")
    done = subprocess.run(
        [sys.executable, "-m", "analysis.cli", f"source.root={root}", f"target={TARGET}", "mixture_dir=mix",
         "report_dir=rep", "out=nokey", "tracker=online", *FAST],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: tracker=online: the W&B run could not start (No API key configured")
    assert "set WANDB_API_KEY or run `wandb login`" in done.stderr and "offline" in done.stderr  # the fixes
    assert not (tmp_path / "mix").exists()  # refused before fitting: nothing emitted


def test_wandb_mode_turns_the_fit_run_down_as_it_does_a_proxy_run(tmp_path, monkeypatch):
    """tracker=online with WANDB_MODE=disabled (W&B's convention for running a command by hand)
    fits without W&B: no key is asked for, nothing is logged; WANDB_MODE=offline logs offline."""
    root = tmp_path / "runs"
    for rec in synthetic_records(linear_loss(3, seed=1), 8, sweep="syn"):
        write_record(root / rec.run_name, rec)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    cfg = compose_fit(["source=local", f"source.root={root}", f"target={TARGET}", f"mixture_dir={tmp_path / 'mix'}",
                       f"report_dir={tmp_path / 'rep'}", "out=down", "tracker=online", *FAST])
    result = run_fit(cfg, progress=False)
    assert result.tracked is None and result.emitted.is_file()
    assert not (tmp_path / "rep" / "wandb").exists()
