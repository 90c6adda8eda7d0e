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
    assert any(p.parts[-3:-1] == ("reports", "sec_web_blend") for p in files)
    leaks = [str(p.relative_to(work)) for p in files if key.encode() in p.read_bytes() or header.encode() in p.read_bytes()]
    assert leaks == []
    assert not any(key in text or header in text for text in outputs)


#: A run of about a second on a CPU (10 steps of 16 x 128 tokens).
QUICK = ["train.tokens=20480", "eval.tokens_per_domain=4096"]


def agents_argv(spec: Path, index: int) -> list[str]:
    """The argv `wandb agent` builds from the spec's command for row `index` (`${env}` dropped:
    it is `/usr/bin/env`, which only execs the rest)."""
    import yaml

    macros = {"${interpreter}": sys.executable, "${args_no_hyphens}": f"mixture.index={index}"}
    return [macros.get(item, item) for item in yaml.safe_load(spec.read_text())["command"] if item != "${env}"]


def test_the_agents_command_run_by_hand_honours_wandb_mode_and_no_key_leaks(tmp_path):
    """The sweep command carries `tracker=online`; W&B's convention for running it locally is
    WANDB_MODE=offline|disabled, and without a key it must end in one line, not a traceback.
    Also: a mixture whose provenance reads `${oc.env:WANDB_API_KEY}` trains without resolving it."""
    import yaml

    from analysis.emit import emit_mixture
    from regmix.run_record import read_record

    key = secrets.token_hex(20)
    work = tmp_path / "project"
    work.mkdir()
    home = work / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_MODE", "WANDB_API_KEY", "NETRC")}
    env.update(HOME=str(home), WANDB_DIR=str(home / "wandb"), WANDB_CONFIG_DIR=str(home / "config"),
               WANDB_CACHE_DIR=str(home / "cache"), WANDB_DATA_DIR=str(home / "data"),
               WANDB_BASE_URL="http://127.0.0.1:9",  # nothing listens: a run that went online would fail
               PATH=str(BIN) + os.pathsep + os.environ.get("PATH", ""))
    outputs: list[str] = []
    data = [f"data.dir={work}/data/syn", "data.synthetic.train_scale=0.1", "data.synthetic.val_tokens=8192"]
    run([str(BIN / "regmix-prepare"), *data], cwd=work, env=env, outputs=outputs)
    run([str(BIN / "regmix-sample"), "sweep=hand", "n_mixtures=3", *data], cwd=work, env=env, outputs=outputs)
    spec = work / "sweeps" / "hand.yaml"
    assert "tracker=online" in agents_argv(spec, 0)
    keyed = {**env, "WANDB_API_KEY": key}

    done = run([*agents_argv(spec, 0), *QUICK], cwd=work, env={**keyed, "WANDB_MODE": "offline"}, outputs=outputs)
    assert "WANDB_MODE=offline: tracking offline (tracker=online)" in done.stderr
    record = read_record(work / "runs" / "hand" / "mix0000")
    assert record.status == "finished" and record.wandb["mode"] == "offline"
    assert list((work / "runs" / "hand" / "mix0000" / "wandb").glob("offline-run-*"))

    run([*agents_argv(spec, 1), *QUICK], cwd=work, env={**keyed, "WANDB_MODE": "disabled"}, outputs=outputs)
    record = read_record(work / "runs" / "hand" / "mix0001")
    assert record.status == "finished" and record.wandb is None
    assert not (work / "runs" / "hand" / "mix0001" / "wandb").exists()

    # No key, no WANDB_MODE: the agent's command as it is, on a machine that never logged in.
    done = subprocess.run([*agents_argv(spec, 2), *QUICK], cwd=work, env=env, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    outputs += [done.stdout, done.stderr]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "No API key" in errors[0] and "WANDB_API_KEY" in errors[0] and "WANDB_MODE=offline" in errors[0]

    emit_mixture(work / "conf" / "mixture" / "leak.yaml", name="leak", weights=record.mixture,
                 provenance={"runs": {"label": "${oc.env:WANDB_API_KEY}"}}, header=["a label that looks like a key"])
    run([str(BIN / "regmix-train"), f"hydra.searchpath=[file://{work / 'conf'}]", "mixture=leak", "sweep=hand",
         "tracker=offline", *data, *QUICK], cwd=work, env=keyed, outputs=outputs)
    (leaked,) = [p for p in (work / "runs" / "hand").iterdir() if p.name.startswith("leak")]
    assert read_record(leaked).config["mixture"]["provenance"]["runs"]["label"] == "${oc.env:WANDB_API_KEY}"

    files = [p for p in work.rglob("*") if p.is_file()]
    assert any(p.name.startswith("run-") and p.suffix == ".wandb" for p in files)  # the offline W&B logs were searched
    assert [str(p.relative_to(work)) for p in files if key.encode() in p.read_bytes()] == []
    assert not any(key in text for text in outputs)
    assert yaml.safe_load(spec.read_text())  # the spec itself is untouched and readable
