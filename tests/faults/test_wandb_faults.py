"""Faults on the W&B side: a backend that is unreachable, answers 5xx, GraphQL errors or 401;
sweep paths as `wandb agent` takes them; hints that name real keys; no litter in the temp dir.

Each drives `regmix-fit source=wandb` (a subprocess, the real wandb client) against the loopback
fake backend and asserts what users need: one `error:` line naming the fix, nothing written,
and a rerun that completes once the backend is healthy. The client's patience is cut to one
retry one second apart through the keys the source exposes (`source.wandb.retries` ...), so a
dead backend fails in about a second instead of minutes.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from analysis.config import register_fit_configs
from analysis.fit import run_fit
from analysis.sources.wandb_api import WandbSourceConfig, WandbSourceError, pull_wandb_runs
from tests.support.synthetic_runs import TARGET, linear_loss, synthetic_records
from regmix.hydra_conf import CONF_PACKAGE
from tests.fakes import DUMMY_API_KEY, FakeWandb

REPO = Path(__file__).resolve().parents[2]
SWEEP = "swpfault1"
FAST = ["regressor=quick", "simulation.n_candidates=5000", "simulation.top_k=20", "plots=false"]
#: One retry, one second apart, one pull attempt: the least patience the source allows.
IMPATIENT = ["source.wandb.retries=1", "source.wandb.retry_wait_s=1", "source.wandb.retry_wait_max_s=1",
             "source.wandb.timeout_s=5", "source.wandb.pull_attempts=1"]


def add_sweep_runs(fake: FakeWandb, n: int = 12) -> None:
    for rec in synthetic_records(linear_loss(4, seed=5), n, noise=0.01, sweep="syn"):
        config = {"mixture": {"index": rec.mixture_index, "weights": rec.mixture, "name": None},
                  "model": {"name": "tiny"}, "corpus": rec.corpus, "run_name": rec.run_name, "sweep": "syn"}
        fake.add_run(config=config, summary={f"val/{TARGET}/loss": rec.val_loss[TARGET], "tokens": 1000},
                     sweep=SWEEP, group="syn", job_type="proxy")


def stable(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """`done` with the fake's ephemeral port replaced by `<port>`, so the docs table is stable."""
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", done.stderr or "")
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout, text)


def closed_port_url() -> str:
    """A loopback URL nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def fit(tmp_path):
    """`fit(url, *overrides, key=...)`: regmix-fit source=wandb in a subprocess, in tmp_path."""
    home = tmp_path / "wandb-home"

    def run(url: str, *extra: str, key: str = DUMMY_API_KEY, out: str = "from_wandb") -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_BASE_URL": url, "WANDB_API_KEY": key,
               "WANDB_DIR": str(home), "WANDB_DATA_DIR": str(home / "data"), "WANDB_CACHE_DIR": str(home / "cache"),
               "WANDB_CONFIG_DIR": str(home / "config"), "WANDB_SILENT": "true"}
        args = ["source=wandb", f"source.wandb.sweep={SWEEP}", "source.wandb.entity=regmix-tests", f"target={TARGET}",
                "mixture_dir=mix", f"out={out}", *IMPATIENT, *FAST, *extra]
        return subprocess.run([sys.executable, "-m", "analysis.cli", *args], cwd=tmp_path, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)

    return run


def assert_nothing_written(tmp_path: Path) -> None:
    assert not (tmp_path / "mix").exists() and not (tmp_path / "reports").exists()


@pytest.fixture
def rerun(tmp_path, monkeypatch):
    """`rerun(fake, *overrides)`: the same fit in this process (seconds cheaper than a subprocess)
    once the backend is healthy; asserts it completes with every finished run used once."""

    def run(fake: FakeWandb, *extra: str) -> dict:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("WANDB_BASE_URL", fake.url)
        monkeypatch.setenv("WANDB_API_KEY", DUMMY_API_KEY)
        register_fit_configs()
        overrides = ["source=wandb", f"source.wandb.sweep={SWEEP}", "source.wandb.entity=regmix-tests",
                     f"target={TARGET}", "mixture_dir=mix", "out=from_wandb", *IMPATIENT, *FAST, *extra]
        with initialize_config_module(config_module=CONF_PACKAGE, version_base="1.3"):
            cfg = OmegaConf.to_object(compose(config_name="fit", overrides=overrides))
        run_fit(cfg, progress=False)
        emitted = yaml.safe_load((tmp_path / "mix" / "from_wandb.yaml").read_text())
        assert emitted["provenance"]["runs"]["count"] == 12  # every finished run, none twice
        assert (tmp_path / "reports" / "from_wandb" / "report.md").is_file()
        return emitted["provenance"]

    return run


def test_unreachable_backend_says_network_not_api_key_and_a_rerun_completes(fit, tmp_path, bad_input, rerun):
    url = closed_port_url()
    done = fit(url)
    line = bad_input("source=wandb, WANDB_BASE_URL of a server that is down", stable(done))
    assert done.returncode == 2
    assert "connection refused" in line and "WANDB_BASE_URL" in line and "source.wandb.retries" in line
    assert "API_KEY" not in line and "credentials" not in line  # the key is fine; the server is not there
    assert_nothing_written(tmp_path)
    with FakeWandb() as fake:
        add_sweep_runs(fake)
        rerun(fake)


def test_server_errors_exhaust_the_configured_retries_then_a_rerun_completes(fit, tmp_path, bad_input, rerun):
    with FakeWandb() as fake:
        add_sweep_runs(fake)
        fake.fail_next("Runs", 100, status=503)
        done = fit(fake.url)
        line = bad_input("source=wandb, the server answers HTTP 503", stable(done))
        assert "HTTP 503" in line and "source.wandb.retries" in line and "WANDB_BASE_URL" in line
        assert fake.request_counts["Runs"] == 2  # source.wandb.retries=1: the first try and one retry
        assert_nothing_written(tmp_path)
        fake.heal()
        rerun(fake)


def test_a_graphql_error_is_not_retried_and_names_the_selector_keys(fit, tmp_path, bad_input, rerun):
    with FakeWandb() as fake:
        add_sweep_runs(fake)
        fake.fail_next("Runs", 100, status=200, message="entity nobody not found")
        done = fit(fake.url, "source.wandb.pull_attempts=3")
        line = bad_input("source=wandb, the server answers a GraphQL error (unknown entity)", stable(done))
        assert "the server answered with an error: " in line and "entity nobody not found" in line
        assert "source.wandb.entity" in line and "network" not in line.lower()
        assert fake.request_counts["Runs"] == 1  # an answer, not an outage: asked once, never again
        assert_nothing_written(tmp_path)
        fake.heal()
        rerun(fake)


def test_a_rejected_api_key_is_one_line_that_never_shows_the_key(fit, tmp_path, bad_input, rerun):
    wrong = "f" * 40
    with FakeWandb() as fake:
        add_sweep_runs(fake)
        done = fit(fake.url, key=wrong)
        line = bad_input("source=wandb with an API key the server rejects (401)", stable(done))
        assert "WANDB_API_KEY" in line and "wandb login" in line
        assert wrong not in done.stdout + done.stderr and DUMMY_API_KEY not in done.stdout + done.stderr
        assert fake.auth_failures >= 1
        assert_nothing_written(tmp_path)
        rerun(fake)


def test_the_sweep_path_wandb_agent_takes_is_accepted(rerun):
    """`source.wandb.sweep=<entity>/<project>/<id>` (and the sweep URL) find the sweep's runs."""
    from analysis.sources.wandb_api import resolve_sweep_path

    with FakeWandb() as fake:
        add_sweep_runs(fake)
        path = f"{fake.entity}/{fake.project}/{SWEEP}"
        provenance = rerun(fake, f"source.wandb.sweep={path}", "source.wandb.entity=null", "source.wandb.project=other")
        assert provenance["runs"]["sweep"] == SWEEP
        assert provenance["runs"]["location"] == f"W&B {fake.entity}/{fake.project} sweep {SWEEP}"
    url = f"https://wandb.ai/{fake.entity}/{fake.project}/sweeps/{SWEEP}?workspace=user-x"
    assert resolve_sweep_path(WandbSourceConfig(sweep=url)) == WandbSourceConfig(
        entity=fake.entity, project=fake.project, sweep=SWEEP
    )
    with pytest.raises(WandbSourceError, match="names entity 'regmix-tests' but source.wandb.entity='someone'"):
        resolve_sweep_path(WandbSourceConfig(sweep=f"{fake.entity}/p/{SWEEP}", entity="someone"))


def test_every_key_an_error_names_is_a_real_key(fit, tmp_path, bad_input):
    """Hints name keys as typed on the command line (`source.wandb.*`), and typing them works."""
    done = fit("http://127.0.0.1:9", "source.wandb.sweep=null")
    line = bad_input("source=wandb without source.wandb.sweep / group / tags", stable(done))
    named = re.findall(r"(?<![\w.])([a-z_]+(?:\.[a-z_]+)+)=", line)
    assert named and all(key.startswith("source.wandb.") for key in named), line
    real = {f"source.wandb.{f.name}" for f in fields(WandbSourceConfig)}
    assert set(named) <= real, set(named) - real
    with pytest.raises(WandbSourceError, match=r"source.wandb.retries=0 is too small"):
        pull_wandb_runs(WandbSourceConfig(sweep=SWEEP, retries=0))


def test_a_pull_leaves_no_folders_in_the_temp_dir(tmp_path, monkeypatch):
    """wandb's public Run makes $WANDB_DIR/<entity>/<project>/<id> for every run it returns."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.delenv("WANDB_DIR", raising=False)
    with FakeWandb() as fake:
        add_sweep_runs(fake, 30)
        monkeypatch.setenv("WANDB_BASE_URL", fake.url)
        monkeypatch.setenv("WANDB_API_KEY", DUMMY_API_KEY)
        cfg = WandbSourceConfig(entity=fake.entity, sweep=SWEEP, retries=1, retry_wait_s=1, retry_wait_max_s=1)
        assert len(pull_wandb_runs(cfg, log=lambda line: None).records) == 30
    # wandb's own process-wide scratch folders (tmp*wandb-media, -artifacts) are its business.
    left = [p.relative_to(scratch) for p in scratch.rglob("*") if "wandb-" not in p.relative_to(scratch).parts[0]]
    assert left == []
    assert "WANDB_DIR" not in os.environ  # put back as it was


def test_an_outage_in_the_middle_of_a_paged_pull_loses_and_doubles_nothing(monkeypatch):
    """Page 2 of 3 fails past the client's retries: the pull starts again and returns every
    finished run exactly once (none lost with the failed page, none twice from page 1)."""
    with FakeWandb() as fake:
        add_sweep_runs(fake)
        fake.add_run(config={"mixture": {"weights": {"d00": 1.0}}}, summary={}, state="crashed", sweep=SWEEP)
        monkeypatch.setenv("WANDB_BASE_URL", fake.url)
        monkeypatch.setenv("WANDB_API_KEY", DUMMY_API_KEY)
        fake.fail_next("Runs", 2, status=502, after=1)  # page 1 answers, page 2 fails twice (retries=1)
        lines: list[str] = []
        cfg = WandbSourceConfig(entity=fake.entity, sweep=SWEEP, per_page=5, retries=1, retry_wait_s=1,
                                retry_wait_max_s=1, pull_attempts=2)
        pull = pull_wandb_runs(cfg, log=lines.append)
        ids = [record.wandb["id"] for record in pull.records]
        assert len(ids) == len(set(ids)) == 12
        assert "HTTP 502" in lines[0] and "starting it again (2/2)" in lines[0]
        assert fake.request_counts["Runs"] == 3 + 3  # 1 + 2 failed on the first try, 3 pages on the second
