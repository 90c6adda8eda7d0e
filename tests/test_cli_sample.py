"""`regmix-sample` end to end (subprocess, as a user types it) and its plain function."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from regmix.hydra_conf import CONF_PACKAGE, shipped_conf_dir
from regmix.sweep.sample import sample_sweep
from regmix.config import SampleAppConfig, SamplerConfig, register_configs
from regmix.corpus.store import write_corpus
from regmix.sampler import SamplerError
from regmix.sweep.record import SweepTargetError
from regmix.sweep.table import read_mixtures_table
from regmix.sweep.wandb_schema import sweep_config_problems


TRAIN_TOKENS = {"web": 5000, "code": 3000, "math": 1500, "chat": 500}


@pytest.fixture()
def corpus(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    splits = {d: {"train": rng.integers(0, 256, n), "val": rng.integers(0, 256, 64)} for d, n in TRAIN_TOKENS.items()}
    splits["blend"] = {"train": np.zeros(0), "val": rng.integers(0, 256, 64)}
    path = tmp_path / "corpus"
    write_corpus(
        path,
        name="tiny",
        tokenizer={"kind": "bytes", "vocab_size": 256, "eos_id": 0, "id": "bytes"},
        splits=splits,
        roles={"blend": "target"},
    )
    return path


def run_cli(cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "regmix.cli.sample", *overrides],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        timeout=120,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, match: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert match in lines[0], lines[0]


def test_cli_writes_table_settings_and_spec(tmp_path, corpus):
    proc = run_cli(tmp_path, f"data.dir={corpus}", "sweep=t", "n_mixtures=8", 'fixed=["model=tiny"]')
    assert proc.returncode == 0, proc.stderr
    sweeps_dir = tmp_path / "sweeps"
    assert sorted(p.name for p in sweeps_dir.iterdir()) == ["t.mixtures.csv", "t.sampler.json", "t.yaml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "sweeps"], "Hydra left files behind"

    table = read_mixtures_table(sweeps_dir / "t.mixtures.csv", list(TRAIN_TOKENS))
    assert list(table.columns) == ["index", *TRAIN_TOKENS]  # train domains only, corpus order
    assert table["index"].tolist() == list(range(8))

    record = json.loads((sweeps_dir / "t.sampler.json").read_text())
    assert record["n_mixtures"] == 8 and record["seed"] == 42
    assert record["sampler"]["temperature"] == 0.5
    assert record["prior"] == {"web": 0.5, "code": 0.3, "math": 0.15, "chat": 0.05}
    assert record["corpus"]["name"] == "tiny" and record["corpus"]["content_hash"]
    assert record["stats"]["drawn"] == 800

    spec = yaml.safe_load((sweeps_dir / "t.yaml").read_text())
    assert sweep_config_problems(spec) == []
    assert spec["metric"]["name"] == "val/blend/loss"  # the corpus's one target domain
    assert spec["parameters"]["mixture.index"]["values"] == list(range(8))
    # The corpus choice travels with the agents' command, so proxies train on the sampled corpus.
    assert f"data.dir={corpus}" in spec["command"] and "model=tiny" in spec["command"]
    assert "regmix-train -m sweep=t 'mixture.index=range(0,8)'" in proc.stdout


def test_cli_refuses_to_overwrite_then_overwrites(tmp_path, corpus):
    assert run_cli(tmp_path, f"data.dir={corpus}", "sweep=t", "n_mixtures=8").returncode == 0
    table_file = tmp_path / "sweeps" / "t.mixtures.csv"
    before = table_file.read_text()
    assert_one_line_error(run_cli(tmp_path, f"data.dir={corpus}", "sweep=t", "n_mixtures=8"), "overwrite=true")
    assert table_file.read_text() == before

    proc = run_cli(tmp_path, f"data.dir={corpus}", "sweep=t", "n_mixtures=8", "overwrite=true", "sampler=paper_data")
    assert proc.returncode == 0, proc.stderr
    assert table_file.read_text() != before
    record = json.loads((tmp_path / "sweeps" / "t.sampler.json").read_text())
    assert record["sampler"]["temperature"] == 0.1 and record["sampler"]["n_strengths"] == 10


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["n_mixtures=0"], "n_mixtures=0"),
        (["n_mixtures=5000", "sampler.oversample=1"], "distinct mixtures survived"),
        (['fixed=["model=None"]'], "model=null"),
        (["sweep=a/b"], "sweep='a/b'"),
    ],
)
def test_cli_user_errors_exit_2(tmp_path, corpus, overrides, match):
    proc = run_cli(tmp_path, f"data.dir={corpus}", *overrides)
    assert_one_line_error(proc, match)
    assert not list(tmp_path.glob("sweeps/*.mixtures.csv")), "a failed sample must leave no table"


def test_cli_without_a_corpus_says_how_to_make_one(tmp_path):
    assert_one_line_error(run_cli(tmp_path, f"data.dir={tmp_path / 'none'}", "sweep=t"), "regmix-prepare")


def test_function_points_agents_at_a_table_outside_sweeps(tmp_path, corpus):
    out = sample_sweep(data_dir=str(corpus), sweep="x", n_mixtures=4, out_dir=str(tmp_path / "elsewhere"), target="web")
    spec = yaml.safe_load(out.spec.read_text())
    assert f"mixture.table={out.table.as_posix()}" in spec["command"]
    assert spec["metric"]["name"] == "val/web/loss"
    assert out.warnings == []
    with pytest.raises(SweepTargetError, match="target='nope'"):
        sample_sweep(data_dir=str(corpus), sweep="y", n_mixtures=4, out_dir=str(tmp_path), target="nope")


def test_prior_override_must_name_every_train_domain(tmp_path, corpus):
    settings = SamplerConfig(prior={"web": 1.0, "code": 1.0})
    with pytest.raises(SamplerError, match=r"lacks domain\(s\) \['math', 'chat'\]"):
        sample_sweep(data_dir=str(corpus), sweep="p", n_mixtures=4, out_dir=str(tmp_path), settings=settings)
    settings = SamplerConfig(prior={"web": 1.0, "code": 1.0, "math": 1.0, "chat": 0.0})
    out = sample_sweep(data_dir=str(corpus), sweep="p", n_mixtures=4, out_dir=str(tmp_path), settings=settings)
    assert (read_mixtures_table(out.table)["chat"] == 0).all()


@pytest.mark.parametrize("sampler", sorted(p.stem for p in (shipped_conf_dir() / "sampler").glob("*.yaml")))
def test_every_shipped_sampler_config_composes(sampler):
    register_configs()
    with initialize_config_module(config_module=CONF_PACKAGE, version_base="1.3"):
        cfg = compose("sample", overrides=[f"sampler={sampler}"])
    app = OmegaConf.to_object(cfg)
    assert isinstance(app, SampleAppConfig) and isinstance(app.sampler, SamplerConfig)
    if sampler == "regmix":
        assert app.sampler == SamplerConfig()
    if sampler == "paper_data":
        assert (app.sampler.temperature, app.sampler.min_strength, app.sampler.n_strengths) == (0.1, 1.0, 10)
