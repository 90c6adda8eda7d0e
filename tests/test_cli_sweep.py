"""`regmix-sweep`: the checks on what agents will run, the W&B sweep it creates (loopback fake), its errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from regmix.sweep.sample import sample_sweep
from regmix.sweep.files import record_path
from regmix.sweep.wandb_sweep import agent_commands, launch_sweep
from regmix.corpus.store import write_corpus
from regmix.sweep.table import write_mixtures_table
from regmix.sweep.check import SweepSetupError, compose_train, merge_fixed, prepare_sweep
from regmix.sweep.files import spec_path
from regmix.sweep.spec import build_sweep_spec, write_sweep_spec
from tests.fakes import DUMMY_API_KEY, FakeWandb

BIN = Path(sys.executable).parent
DOMAINS = {"web": 5000, "code": 3000, "math": 1500}


@pytest.fixture()
def project(tmp_path, monkeypatch) -> Path:
    """A project folder (the cwd, as for a user): a tiny corpus and sweep `s` of 4 mixtures."""
    rng = np.random.default_rng(0)
    splits = {d: {"train": rng.integers(0, 256, n), "val": rng.integers(0, 256, 64)} for d, n in DOMAINS.items()}
    write_corpus(
        tmp_path / "corpus",
        name="tiny",
        tokenizer={"kind": "bytes", "vocab_size": 256, "eos_id": 0, "id": "bytes"},
        splits=splits,
    )
    monkeypatch.chdir(tmp_path)
    sample_sweep(data_dir=str(tmp_path / "corpus"), sweep="s", n_mixtures=4, fixed=[f"data.dir={tmp_path / 'corpus'}"])
    return tmp_path


def edit_spec(project: Path, **changes) -> None:
    path = spec_path(project / "sweeps", "s")
    spec = yaml.safe_load(path.read_text())
    spec.update(changes)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))


def test_dry_run_checks_what_agents_will_run_and_creates_nothing(project):
    lines: list[str] = []
    assert launch_sweep(sweep="s", fixed=["train.tokens=20480", "model.d_model=32"], dry_run=True, log=lines.append) is None
    assert not record_path("sweeps", "s").exists()
    (first,) = [line for line in lines if line.startswith("first run: ")]
    argv = first.removeprefix("first run: ").split()
    assert argv[:4] == ["/usr/bin/env", "python", "-m", "regmix.cli.train"] and argv[-1] == "mixture.index=0"
    # The argv composes into the config the run will have: fixed items applied, tracking online.
    cfg = compose_train([a for a in argv if "=" in a])
    assert (cfg.train.tokens, cfg.model.d_model, cfg.mixture.index) == (20480, 32, 0)
    assert (cfg.tracker.mode, cfg.tracker.project, cfg.sweep) == ("online", "regmix", "s")
    assert cfg.data.dir == str(project / "corpus") and cfg.mixture.table == "sweeps/s.mixtures.csv"
    assert any("wandb agent --count 1" in line and "<entity>/regmix/<sweep id>" in line for line in lines)


def test_fixed_items_replace_the_specs_own_and_go_before_tracking():
    command = ["${env}", "${interpreter}", "-m", "regmix.cli.train", "sweep=s", "data.dir=a", "tracker=online", "${args_no_hyphens}"]
    merged = merge_fixed(command, ["data.dir=b", "+experiment=paper_1m", "model=1m"])
    assert merged == [
        "${env}", "${interpreter}", "-m", "regmix.cli.train", "sweep=s", "data.dir=b",
        "+experiment=paper_1m", "model=1m", "tracker=online", "${args_no_hyphens}",
    ]  # fmt: skip


def test_project_and_entity_are_written_into_the_runs_config(project):
    prepared = prepare_sweep(sweep="s", fixed=["tracker.entity=team"], project="mixes")
    assert (prepared.entity, prepared.project) == ("team", "mixes")
    assert "tracker.project=mixes" in prepared.spec["command"] and "tracker.entity=team" in prepared.spec["command"]
    with pytest.raises(SweepSetupError, match="entity=other but the command sets tracker.entity=team"):
        prepare_sweep(sweep="s", fixed=["tracker.entity=team"], entity="other")


@pytest.mark.parametrize(
    "fixed, match",
    [
        (["model=tiny,small"], "is a Hydra sweep"),
        (["train.tokens=None"], "write train.tokens=null"),
        (["tracker=offline"], "sets 'tracker'"),
        (["train.tokenz=5"], "does not compose: .*tokenz"),
        (["train.tokens=lots"], "does not compose"),
        (["model=nope"], "does not compose: .*model/nope"),
        (["data.dir"], "not a Hydra `key=value` override"),
    ],
)
def test_bad_fixed_items_fail_before_anything_reaches_wandb(project, fixed, match):
    with pytest.raises(SweepSetupError, match=match):
        prepare_sweep(sweep="s", fixed=fixed)


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"command": ["${env}", "${interpreter}", "-m", "regmix.cli.train", "sweep=s", "tracker=online", "${args}"]}, r"\$\{args\}.*Hydra rejects"),
        ({"command": ["${env}", "${interpreter}", "-m", "regmix.cli.train", "sweep=s", "tracker=online"]}, "lacks"),
        ({"command": ["${env}", "${interpreter}", "-m", "regmix.cli.train", "sweep=s", "tracker=offline", "${args_no_hyphens}"]}, "need tracker=online"),
        ({"command": ["${env}", "${interpreter}", "-m", "regmix.cli.train", "sweep=t", "tracker=online", "${args_no_hyphens}"]}, "sweep=t is not sweep=s"),
        ({"parameters": {"mixture.index": {"values": [0, 1]}, "model": {"values": ["tiny", "small"]}}}, "'model' is a config group"),
        ({"parameters": {"mixture.index": {"values": [0, 1]}, "train": {"parameters": {"lr": {"values": [1]}}}}}, "nests parameters"),
        ({"parameters": {"mixture.index": {"values": [0, 1]}, "seed": {"values": [0, None]}}}, "value None"),
        ({"parameters": {"mixture.index": {"values": [0, 1]}, "model.name": {"values": ["a,b"]}}}, "contains a comma"),
        ({"parameters": {"seed": {"values": [0, 1]}}}, "no grid over mixture.index"),
        ({"parameters": {"mixture.index": {"values": [0, 1, 2, 3, 4, 5]}}}, r"no row for \[4, 5\]"),
    ],
)
def test_specs_that_agents_would_run_wrongly_are_refused(project, changes, match):
    edit_spec(project, **changes)
    with pytest.raises(SweepSetupError, match=match):
        prepare_sweep(sweep="s")


def test_missing_spec_or_table_names_the_command_that_makes_them(project):
    with pytest.raises(SweepSetupError, match=r"no sweep spec at sweeps/other.yaml; run `regmix-sample sweep=other`"):
        prepare_sweep(sweep="other")
    (project / "sweeps" / "s.mixtures.csv").unlink()
    with pytest.raises(SweepSetupError, match=r"no mixtures table at sweeps/s.mixtures.csv .*regmix-sample sweep=s"):
        prepare_sweep(sweep="s")


def test_subset_grid_edited_table_and_missing_corpus_are_warnings(project):
    edit_spec(project, parameters={"mixture.index": {"values": [0, 1]}})
    table = project / "sweeps" / "s.mixtures.csv"
    table.write_bytes(table.read_bytes() + b"\n")  # same rows, other bytes
    prepared = prepare_sweep(sweep="s", fixed=["data.dir=elsewhere"])
    assert prepared.n_runs == 2
    text = "\n".join(prepared.warnings)
    assert "covers 2 of the 4 rows" in text and "changed since regmix-sample wrote it" in text
    assert "no prepared corpus at data.dir=elsewhere" in text


def test_grids_over_500_runs_warn_that_the_local_controller_repeats(project):
    n = 501
    write_mixtures_table(
        project / "sweeps" / "big.mixtures.csv",
        pd.DataFrame({"index": range(n), "web": 0.5, "code": 0.5, "math": 0.0}),
    )
    write_sweep_spec(spec_path(project / "sweeps", "big"), build_sweep_spec(sweep="big", n_mixtures=n, fixed=[f"data.dir={project / 'corpus'}"]))
    prepared = prepare_sweep(sweep="big")
    assert prepared.n_runs == n
    assert any("repeats runs after 500" in w for w in prepared.warnings)
    assert "--array=1-501%64" in agent_commands("e/p/x", n_runs=n)["SLURM array, one run per task"]


def test_online_creates_the_sweep_and_records_its_id_beside_the_spec(project, monkeypatch):
    with FakeWandb(entity="me", project="mixes") as fake:
        monkeypatch.setenv("WANDB_BASE_URL", fake.url)
        monkeypatch.setenv("WANDB_API_KEY", DUMMY_API_KEY)
        monkeypatch.setenv("WANDB_MODE", "online")
        for name in ("WANDB_ENTITY", "WANDB_PROJECT"):  # the key's default entity comes from the API
            monkeypatch.delenv(name, raising=False)
        lines: list[str] = []
        created = launch_sweep(sweep="s", project="mixes", fixed=["train.tokens=20480"], log=lines.append)
        assert "WANDB_PROJECT" not in os.environ  # wandb.sweep exports it; launch_sweep puts it back
        again = launch_sweep(sweep="s", project="mixes", log=lambda _: None)
        stored = fake.sweeps[("me", "mixes", created.id)]
        counts = dict(fake.request_counts)
    record = json.loads(record_path("sweeps", "s").read_text())
    assert (record["id"], record["entity"], record["project"]) == (again.id, "me", "mixes")
    assert record["path"] == f"me/mixes/{again.id}" and record["url"].endswith(f"/me/mixes/sweeps/{again.id}")
    assert record["previous"][0]["id"] == created.id and record["n_runs"] == 4 and record["created_at"]
    assert stored.config["command"][-3:] == ["tracker.project=mixes", "tracker=online", "${args_no_hyphens}"]
    assert "train.tokens=20480" in stored.config["command"] and stored.config["parameters"]["mixture.index"]["values"] == [0, 1, 2, 3]
    assert counts["UpsertSweep"] == 2
    assert f"  one agent:  wandb agent me/mixes/{created.id}" in lines
    assert any(line.startswith(f"  one agent per GPU:  ") and f"CUDA_VISIBLE_DEVICES=$i wandb agent me/mixes/{created.id}" in line for line in lines)
    assert any(f"source.wandb.sweep={created.id}" in line for line in lines)
    assert DUMMY_API_KEY not in record_path("sweeps", "s").read_text() + "\n".join(lines)


def run_cli(cwd: Path, env: dict[str, str], *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "regmix-sweep"), *overrides], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_without_an_api_key_says_how_to_log_in(project):
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE")}
    # No netrc either; the server is never contacted (a closed loopback port).
    env.update(HOME=str(project), NETRC=str(project / "no-netrc"), WANDB_BASE_URL="http://127.0.0.1:9")
    done = run_cli(project, env, "sweep=s")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: no W&B API key for http://127.0.0.1:9: run `wandb login` or set WANDB_API_KEY "
        "(or check it without W&B: regmix-sweep ... dry_run=true)"
    ]
    assert not record_path(project / "sweeps", "s").exists()


def test_cli_dry_run_and_one_line_errors(project):
    env = dict(os.environ)
    done = run_cli(project, env, "sweep=s", "dry_run=true", 'fixed=["train.tokens=20480"]')
    assert done.returncode == 0, done.stderr
    assert "checked sweeps/s.yaml: 4 runs over sweeps/s.mixtures.csv" in done.stdout
    assert "train.tokens=20480" in done.stdout
    bad = run_cli(project, env, "sweep=s", "dry_run=true", 'fixed=["train.tokenz=1"]')
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    (line,) = bad.stderr.strip().splitlines()
    assert line.startswith("error: the agent's command for sweeps/s.yaml does not compose") and "tokenz" in line
