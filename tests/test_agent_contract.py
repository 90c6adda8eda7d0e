"""Contract test 2: the real `wandb agent` CLI runs the real training app from regmix's sweep spec.

prepare -> sample -> regmix-sweep (creates the sweep on the loopback W&B fake) -> `wandb agent`,
which starts `python -m regmix.cli.train ... mixture.index=<i>` with the argv it builds from
the spec. Also what the agent sees when a run is preempted (SIGTERM: recorded `preempted`,
re-queued, resumed to the end) or killed (SIGKILL: never counted as finished).

Each agent waits ~5 s between runs (wandb's fixed poll interval), hence `slow`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from regmix.corpus.store import read_meta
from regmix.metrics import MEAN_VAL_LOSS_KEY, val_loss_key
from regmix.run_record import FINISHED, PREEMPTED, is_finished, read_record
from regmix.sweep.table import mixture_at
from tests.fakes import FakeWandb

BIN = Path(sys.executable).parent
SWEEP = "agent"
#: Small budgets so a run takes about a second on a CPU (10 steps of 16 x 128 tokens).
QUICK = ["train.tokens=20480", "eval.tokens_per_domain=4096"]
#: Long enough (50 steps) that a signal sent when training starts lands inside the loop.
LONGER = ["train.tokens=102400", "eval.tokens_per_domain=4096"]
STARTED = re.compile(r"\[regmix\] (?P<run_dir>\S+): \d+ steps x")

pytestmark = pytest.mark.slow


def cli(name: str, *args: str, cwd: Path, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    done = subprocess.run([str(BIN / name), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


def agent_env(fake: FakeWandb, work: Path) -> dict[str, str]:
    """The real client, pointed at the fake; `python` on PATH is this venv's (the agent runs `python`)."""
    home = work / "wandb-home"
    # WANDB_ENTITY/PROJECT left in the env by an in-process wandb.sweep elsewhere would redirect runs.
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_ENTITY", "WANDB_PROJECT")}
    env.update(
        WANDB_BASE_URL=fake.url,
        WANDB_API_KEY=fake._api_key,
        WANDB_MODE="online",
        WANDB_DIR=str(home),
        WANDB_CONFIG_DIR=str(home / "config"),
        WANDB_CACHE_DIR=str(home / "cache"),
        WANDB_DATA_DIR=str(home / "data"),
        PYTHONUNBUFFERED="1",  # the training app's "[regmix] ... steps" line arrives as it is printed
        PATH=str(BIN) + os.pathsep + env.get("PATH", ""),
    )
    return env


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A project folder: a small synthetic corpus and a sampled sweep of 3 mixtures."""
    root = tmp_path_factory.mktemp("agent")
    env = {**os.environ, "PATH": str(BIN) + os.pathsep + os.environ.get("PATH", "")}
    data = [f"data.dir={root}/data/syn", "data.synthetic.train_scale=0.1", "data.synthetic.val_tokens=8192"]
    cli("regmix-prepare", *data, cwd=root, env=env)
    cli("regmix-sample", f"sweep={SWEEP}", "n_mixtures=3", *data, cwd=root, env=env)
    return root


def create_sweep(work: Path, env: dict[str, str], fixed: list[str]) -> dict:
    """`regmix-sweep` online against the fake; returns the record it wrote beside the spec."""
    items = ",".join(json.dumps(item) for item in fixed)
    cli("regmix-sweep", f"sweep={SWEEP}", f"fixed=[{items}]", cwd=work, env=env)
    return json.loads((work / "sweeps" / f"{SWEEP}.wandb.json").read_text())


def run_agent(work: Path, env: dict[str, str], path: str, count: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "wandb"), "agent", "--count", str(count), path],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def train_children(agent_pid: int) -> list[int]:
    """Pids of the training processes the agent started (`/usr/bin/env` execs python: same pid)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
        if parent == agent_pid and "regmix.cli.train" in cmdline:
            found.append(int(proc.name))
    return found


def signal_first_run(work: Path, env: dict[str, str], path: str, signum: int) -> tuple[int, str, str]:
    """Start `wandb agent --count 1`, send `signum` to its run once training starts.

    Returns the agent's exit code, its output and the run folder the training app named."""
    agent = subprocess.Popen(
        [str(BIN / "wandb"), "agent", "--count", "1", path],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    started = threading.Event()
    run_dir: list[str] = []

    def read() -> None:
        for line in agent.stdout:
            lines.append(line)
            match = STARTED.search(line)
            if match and not started.is_set():
                run_dir.append(match["run_dir"])
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(180), "the training app never started:\n" + "".join(lines[-40:])
        (pid,) = train_children(agent.pid)
        os.kill(pid, signum)
        agent.wait(timeout=180)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    reader.join(timeout=10)
    return agent.returncode, "".join(lines), run_dir[0]


def test_wandb_agent_trains_two_runs_that_describe_themselves(work):
    meta = read_meta(work / "data" / "syn")
    with FakeWandb() as fake:
        env = agent_env(fake, work)
        sweep = create_sweep(work, env, QUICK)
        agent = run_agent(work, env, sweep["path"], count=2)
        assert agent.returncode == 0, agent.stdout[-2000:] + agent.stderr[-3000:]
        runs = sorted((r for r in fake.runs.values() if r.sweep == sweep["id"]), key=lambda r: r.seq)
        stored = fake.sweeps[(fake.entity, fake.project, sweep["id"])].config
        assert fake.unknown_requests == [] and fake.unknown_operations == [] and fake.missing_fields == []

    assert stored == sweep["spec"]  # what regmix-sweep recorded is what W&B got
    assert [r.state for r in runs] == ["finished", "finished"] and [r.exitcode for r in runs] == [0, 0]
    for run in runs:
        config = run.plain_config
        index = config["mixture.index"]  # the agent's flat parameter, beside the nested config
        weights = mixture_at(work / "sweeps" / f"{SWEEP}.mixtures.csv", index, meta.train_domains).to_dict()
        assert config["mixture"]["index"] == index and config["mixture"]["weights"] == weights
        assert config["model"]["name"] == "tiny" and config["train"]["tokens"] == 20480  # groups stay dicts
        assert config["tracker"]["mode"] == "online" and config["tracker"]["project"] == fake.project
        assert config["corpus"]["content_hash"] == meta.identity(str(work / "data" / "syn"))["content_hash"]

        record = read_record(work / "runs" / SWEEP / f"mix{index:04d}")
        assert record.status == FINISHED
        assert record.wandb["sweep_id"] == sweep["id"] and record.wandb["id"] == run.name
        losses = {d: run.summary.get(val_loss_key(d)) for d in meta.eval_domains}
        # Every domain's loss reached the summary, and it is the evaluated value, not a buffered one.
        assert losses == record.val_loss
        assert run.history[-1][MEAN_VAL_LOSS_KEY] == run.summary[MEAN_VAL_LOSS_KEY]
    assert sorted(r.plain_config["mixture.index"] for r in runs) == [0, 1]


def test_sigterm_under_the_agent_is_recorded_preempted_requeued_and_resumed(work):
    with FakeWandb() as fake:
        env = agent_env(fake, work)
        sweep = create_sweep(work, env, [*LONGER, "out_dir=runs/sigterm"])
        code, output, run_dir = signal_first_run(work, env, sweep["path"], signal.SIGTERM)
        assert code == 0, output[-3000:]
        (run,) = [r for r in fake.runs.values() if r.sweep == sweep["id"]]
        record = read_record(work / run_dir)
        state, exitcode, queue = run.state, run.exitcode, list(fake.sweeps[(fake.entity, fake.project, sweep["id"])].queue)

        resumed = run_agent(work, env, sweep["path"], count=1)  # W&B hands the re-queued run to the next agent
        assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
        runs = [r for r in fake.runs.values() if r.sweep == sweep["id"]]

    assert record.status == PREEMPTED and "SIGTERM" in record.error
    assert record.wandb["sweep_id"] == sweep["id"]
    assert (state, exitcode) == ("preempted", 128 + signal.SIGTERM)  # what the backend received
    assert queue == [run.name]
    assert [(r.name, r.state, r.exitcode) for r in runs] == [(run.name, "finished", 0)]  # the same W&B run, resumed
    final = read_record(work / run_dir)
    assert final.status == FINISHED and final.wandb["id"] == run.name


def test_a_sigkilled_run_never_counts_as_finished(work):
    from analysis.sources.local import load_local_runs
    from analysis.sources.wandb_api import WandbSourceConfig, pull_wandb_runs

    with FakeWandb() as fake:
        env = agent_env(fake, work)
        sweep = create_sweep(work, env, [*LONGER, "out_dir=runs/sigkill"])
        code, output, run_dir = signal_first_run(work, env, sweep["path"], signal.SIGKILL)
        assert code == 0, output[-3000:]
        (run,) = [r for r in fake.runs.values() if r.sweep == sweep["id"]]
        with fake.client_env():
            pulled = pull_wandb_runs(
                WandbSourceConfig(entity=fake.entity, project=fake.project, sweep=sweep["id"], progress=False),
                log=lambda _: None,
            )

    assert run.state != "finished" and run.exitcode is None  # it never reported an end
    assert not is_finished(work / run_dir) and read_record(work / run_dir) is None
    assert pulled.records == []  # the W&B source asks for state=finished only
    local = load_local_runs(str(work / "runs" / "sigkill"))
    assert len(local.runs) == 0  # no record, so no run for the local source either
