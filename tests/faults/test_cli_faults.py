"""Command-line edges: sizes without bound, commands printed for a shell."""

from __future__ import annotations

import shlex

from regmix.sweep.wandb_sweep import agent_commands

from .helpers import cli, small_corpus


def test_sample_refuses_an_unbounded_number_of_mixtures(tmp_path, bad_input):
    corpus = small_corpus(tmp_path / "c")
    done = cli("regmix-sample", "sweep=big", "n_mixtures=100000000", f"data.dir={corpus}", cwd=tmp_path, timeout=60)
    message = bad_input("regmix-sample n_mixtures=100000000", done)
    assert "100,000" in message and "n_mixtures" in message
    assert not (tmp_path / "sweeps").exists()


def test_printed_slurm_command_quotes_the_sweep_path():
    path = "my team/proj;echo pwned/abc123"
    command = agent_commands(path, n_runs=8)["SLURM array, one run per task"]
    argv = shlex.split(command)
    wrapped = shlex.split(argv[argv.index("--wrap") + 1])
    assert wrapped == ["wandb", "agent", "--count", "1", path]
