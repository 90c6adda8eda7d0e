"""The W&B API key never lands in logs, run configs, run records, reports or emitted configs.

One whole online flow against the loopback fake with a fresh random key: prepare -> sample ->
regmix-sweep -> the real `wandb agent` (4 runs, wandb's console output on) -> regmix-fit
source=wandb (report + emitted mixture). Then every file under the project folder (runs,
sweeps, reports, conf, W&B and Hydra folders) and everything the commands printed is searched
for the key, and for the basic-auth header made from it.
"""

from __future__ import annotations

import base64
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes import FakeWandb

BIN = Path(sys.executable).parent


def run(argv: list[str], *, cwd: Path, env: dict[str, str], outputs: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    outputs += [done.stdout, done.stderr]
    assert done.returncode == 0, f"{argv[:2]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


def other_local_address() -> str | None:
    """A non-loopback address of this host (no packet is sent), or None when there is none."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


@pytest.mark.slow  # ~40 s: two agents with two runs each, about 10 s a run (wandb polls every 5 s)
def test_the_api_key_is_never_written_or_printed(tmp_path):
    key = secrets.token_hex(20)  # a fresh 40-hex key: any hit can only come from this flow
    header = base64.b64encode(f"api:{key}".encode()).decode()
    work = tmp_path / "project"
    work.mkdir()
    outputs: list[str] = []
    data = [f"data.dir={work}/data/syn", "data.synthetic.train_scale=0.1", "data.synthetic.val_tokens=8192"]
    with FakeWandb(api_key=key, entity="secrets") as fake:
        home = work / "wandb-home"
        env = {k: v for k, v in os.environ.items() if k not in ("WANDB_ENTITY", "WANDB_PROJECT")}
        env.update(
            WANDB_BASE_URL=fake.url,
            WANDB_API_KEY=key,
            WANDB_MODE="online",
            WANDB_SILENT="false",  # every console line wandb would show a user is searched too
            WANDB_DIR=str(home),
            WANDB_CONFIG_DIR=str(home / "config"),
            WANDB_CACHE_DIR=str(home / "cache"),
            WANDB_DATA_DIR=str(home / "data"),
            PATH=str(BIN) + os.pathsep + os.environ.get("PATH", ""),
        )
        run([str(BIN / "regmix-prepare"), *data], cwd=work, env=env, outputs=outputs)
        run([str(BIN / "regmix-sample"), "sweep=sec", "n_mixtures=4", *data], cwd=work, env=env, outputs=outputs)
        run(
            [str(BIN / "regmix-sweep"), "sweep=sec", 'fixed=["train.tokens=20480","eval.tokens_per_domain=4096"]'],
            cwd=work,
            env=env,
            outputs=outputs,
        )
        sweep_id = next(iter(fake.sweeps.values())).name
        # Two agents side by side (as on two GPUs), two runs each.
        agents = [
            subprocess.Popen(
                [str(BIN / "wandb"), "agent", "--count", "2", f"secrets/regmix/{sweep_id}"],
                cwd=work,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(2)
        ]
        for agent in agents:
            outputs.append(agent.communicate(timeout=300)[0])
            assert agent.returncode == 0, outputs[-1][-3000:]
        run(
            [
                str(BIN / "regmix-fit"),
                "source=wandb",
                f"source.wandb.sweep={sweep_id}",
                "source.wandb.entity=secrets",
                "sweep=sec",
                "target=web_blend",
                f"mixture_dir={work}/conf/mixture",
                "regressor.compare=[ridge]",
                "simulation.n_candidates=20000",
                "simulation.screen_keep=0",
                "plots=false",
            ],
            cwd=work,
            env=env,
            outputs=outputs,
        )
        bound = fake._server.socket.getsockname()[0]
        port = fake.server_address[1]
        elsewhere = other_local_address()
        if elsewhere:
            with pytest.raises(OSError):
                socket.create_connection((elsewhere, port), timeout=2).close()
        finished = [r for r in fake.runs.values() if r.state == "finished"]

    assert bound == "127.0.0.1"  # the fake is reachable from this host only
    assert len(finished) == 4
    files = [p for p in work.rglob("*") if p.is_file()]
    names = [p.name for p in files]
    # The search covered what it claims to: records, run configs, W&B logs, the report, the mixture.
    assert names.count("result.json") == 4 and names.count("config.yaml") >= 4
    assert "debug-internal.log" in names and "sec.wandb.json" in names
    assert any(p.parent.name == "mixture" and p.suffix == ".yaml" for p in files)
    assert any(p.parts[-3:-1] == ("reports", "sec") for p in files)
    leaks = [str(p.relative_to(work)) for p in files if key.encode() in p.read_bytes() or header.encode() in p.read_bytes()]
    assert leaks == []
    assert not any(key in text or header in text for text in outputs)
