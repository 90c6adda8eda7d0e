"""The fake answers what online runs and the real `wandb agent` send (a tiny program, no torch).

Subprocesses keep each online run's wandb state out of the test process. The training app's
own agent test (contract test 2) builds on this.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.fakes import FakeWandb

PROGRAM = textwrap.dedent(
    """
    import os, sys
    import wandb

    args = dict(arg.split("=", 1) for arg in sys.argv[1:])  # ${args_no_hyphens}: key=value
    index = int(args["mixture.index"])
    run = wandb.init(config={"mixture": {"index": index, "weights": {"a": 0.25, "b": 0.75}}})
    run.log({"train/loss": 1.0}, step=1, commit=True)
    marker = os.path.join(os.environ["MARKER_DIR"], f"attempt-{index}")
    if index == 1 and not os.path.exists(marker):  # first attempt of mixture 1 is preempted
        open(marker, "w").close()
        run.mark_preempting()
        run.finish(exit_code=143)
        sys.exit(143)
    run.summary["val/a/loss"] = 2.0 + index
    run.finish()
    """
)


def client_env(fake: FakeWandb, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        WANDB_BASE_URL=fake.url,
        WANDB_API_KEY=fake._api_key,
        WANDB_MODE="online",
        WANDB_DIR=str(tmp_path),
        MARKER_DIR=str(tmp_path),
        # The agent starts `python` from PATH: make it this interpreter.
        PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
    )
    return env


def test_online_run_reports_config_summary_and_preemption(tmp_path):
    (tmp_path / "train.py").write_text(PROGRAM)
    with FakeWandb() as fake:
        env = client_env(fake, tmp_path)
        for index in (0, 1):
            subprocess.run(
                [sys.executable, "train.py", f"mixture.index={index}"], cwd=tmp_path, env=env, timeout=120, check=False
            )
        finished, preempted = sorted(fake.runs.values(), key=lambda r: r.seq)
    assert finished.state == "finished" and finished.exitcode == 0
    assert finished.plain_config["mixture"] == {"index": 0, "weights": {"a": 0.25, "b": 0.75}}
    assert finished.summary["val/a/loss"] == 2.0 and finished.history[0]["train/loss"] == 1.0
    assert preempted.state == "preempted" and preempted.exitcode == 143
    assert fake.missing_fields == []


@pytest.mark.slow  # ~20 s: the agent polls every 5 s (wandb's fixed POLL_INTERVAL) between two runs
def test_wandb_agent_runs_the_sweep_and_requeues_a_preempted_run(tmp_path):
    (tmp_path / "train.py").write_text(PROGRAM)
    spec = {
        "program": "train.py",
        "method": "grid",
        "parameters": {"mixture.index": {"values": [1]}},
        "command": ["${env}", "${interpreter}", "${program}", "${args_no_hyphens}"],
    }
    with FakeWandb() as fake:
        sweep_id = fake.add_sweep(spec)
        wandb_cli = os.path.join(os.path.dirname(sys.executable), "wandb")
        agent = subprocess.run(
            [wandb_cli, "agent", "--count", "2", f"{fake.entity}/{fake.project}/{sweep_id}"],
            cwd=tmp_path,
            env=client_env(fake, tmp_path),
            timeout=240,
            capture_output=True,
            text=True,
        )
        assert agent.returncode == 0, agent.stderr[-2000:]
        runs = list(fake.runs.values())
        counts = dict(fake.request_counts)
    # One grid point; its first attempt was preempted, W&B re-queued it, the resume finished it.
    assert (tmp_path / "attempt-1").exists()  # the first attempt ran and was preempted
    assert len(runs) == 1
    (run,) = runs
    assert run.sweep == sweep_id and run.state == "finished" and run.exitcode == 0
    assert run.plain_config["mixture"]["weights"] == {"a": 0.25, "b": 0.75}
    assert run.plain_config["mixture.index"] == 1  # the agent's flat key, next to the nested config
    assert counts["CreateAgent"] == 1 and counts["Heartbeat"] >= 2 and counts["SweepWithRuns"] == 1


def test_unknown_http_path_is_recorded():
    with pytest.raises(AssertionError, match="HTTP GET /api/v9/nothing"):
        with FakeWandb() as fake:
            with pytest.raises(urllib.error.HTTPError):
                urllib.request.urlopen(fake.url + "/api/v9/nothing", timeout=5)
