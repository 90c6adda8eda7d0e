"""Opt-in: the W&B source against the real W&B service (checks what the fake assumes).

Runs only with `-m online` or a plain run where both are set:
    WANDB_API_KEY=<key> REGMIX_WANDB_ONLINE_PROJECT=<entity/project> python -m pytest tests/test_wandb_online.py
It logs three tiny runs (two finished, one failed) in a fresh group of that project, pulls the
group through `load_wandb_runs`, and deletes the runs afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from analysis.sources.wandb_api import WandbSourceConfig, load_wandb_runs

PROJECT = os.environ.get("REGMIX_WANDB_ONLINE_PROJECT", "")

pytestmark = [
    pytest.mark.online,
    pytest.mark.skipif(
        not (os.environ.get("WANDB_API_KEY") and PROJECT),
        reason="needs WANDB_API_KEY and REGMIX_WANDB_ONLINE_PROJECT=<entity/project> (talks to real W&B)",
    ),
]

LOG_RUN = """
import json, sys, wandb
entity, project, group, index, exit_code = sys.argv[1] or None, sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
run = wandb.init(entity=entity, project=project, group=group, job_type="proxy",
                 config={"mixture": {"index": index, "weights": {"a": 0.25 * index, "b": 1 - 0.25 * index}},
                         "model": {"name": "tiny"}, "sweep": "online-test"})
run.log({"val/a/loss": 2.0 + index, "val/b/loss": 3.0 + index, "tokens": 1000}, step=1, commit=True)
run.summary.update({"val/a/loss": 2.0 + index, "val/b/loss": 3.0 + index, "tokens": 1000})
print(json.dumps({"id": run.id, "entity": run.entity}))
run.finish(exit_code=exit_code)
"""


def split_project(path: str) -> tuple[str | None, str]:
    entity, _, project = path.rpartition("/")
    return entity or None, project


@pytest.fixture
def online_group(tmp_path):
    entity, project = split_project(PROJECT)
    group = f"regmix-online-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "WANDB_MODE": "online", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true"}
    logged = []
    for index, exit_code in ((1, 0), (2, 0), (3, 1)):
        done = subprocess.run(
            [sys.executable, "-c", LOG_RUN, entity or "", project, group, str(index), str(exit_code)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        logged.append(json.loads(done.stdout.strip().splitlines()[-1]))
    yield entity or logged[0]["entity"], project, group
    import wandb

    api = wandb.Api(timeout=60)
    for run in logged:  # best effort: leave the user's project as it was
        try:
            api.run(f"{run['entity']}/{project}/{run['id']}").delete()
        except Exception:
            pass


def test_pull_by_group_from_real_wandb(online_group):
    entity, project, group = online_group
    records = load_wandb_runs(WandbSourceConfig(entity=entity, project=project, group=group, per_page=2))
    by_index = {rec.mixture_index: rec for rec in records}
    assert sorted(by_index) == [1, 2]  # the failed run (exit code 1) is left out by the server
    assert by_index[2].mixture == {"a": 0.5, "b": 0.5}
    assert by_index[2].val_loss == {"a": 4.0, "b": 5.0}
    assert by_index[1].model == "tiny" and by_index[1].wandb["entity"] == entity
    assert os.environ["WANDB_API_KEY"] not in json.dumps([r.to_dict() for r in records])
