"""Creating a sampled sweep on W&B, its record, and the commands that start its agents.

`launch_sweep` (behind `regmix-sweep`) checks what every agent host will run
(`regmix.sweep.check`), creates the sweep with `wandb.sweep`, writes
`sweeps/<sweep>.wandb.json` (id, entity, project, url, created_at, the spec as created, earlier
sweeps of the same spec) beside the spec, and prints the `wandb agent` commands: one agent,
one per GPU, a SLURM array. The API key comes from WANDB_API_KEY or `wandb login`; it is never
printed or stored.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import io
import json
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from regmix.atomic_file import write_text_atomic
from regmix.sweep.check import PreparedSweep, SweepSetupError, prepare_sweep
from regmix.sweep.files import WANDB_RECORD_SUFFIX, record_path, settings_path
from regmix.sweep.record import SweepRecord

RECORD_SCHEMA = 1
#: A compact SLURM throttle: at most this many array tasks (GPUs) at once by default.
SLURM_PARALLEL = 64


@dataclass
class CreatedSweep:
    """A sweep that exists on W&B, and where its record was written."""

    id: str
    entity: str
    project: str
    url: Optional[str]
    record: Path

    @property
    def path(self) -> str:
        """`entity/project/id`, what `wandb agent` and the W&B API take."""
        return f"{self.entity}/{self.project}/{self.id}"


# --------------------------------------------------------------------------------------
# W&B
# --------------------------------------------------------------------------------------


def check_api_key() -> None:
    """Raise `SweepSetupError` unless wandb finds an API key (env, netrc or settings).

    Never reads the key out: only whether one is configured for the server in use."""
    from wandb.errors import AuthenticationError

    try:
        from wandb.sdk import wandb_setup
        from wandb.sdk.lib.wbauth import authenticate_session
    except ImportError:  # another wandb layout: let wandb.sweep report it
        return
    host = os.environ.get("WANDB_BASE_URL") or wandb_setup.singleton().settings.base_url
    try:
        auth = authenticate_session(host=host, source="regmix-sweep", prompt=False, update_session=False)
    except AuthenticationError as exc:
        raise SweepSetupError(f"W&B credentials for {host} are unusable ({exc}); run `wandb login --relogin`") from None
    if auth is None:
        raise SweepSetupError(
            f"no W&B API key for {host}: run `wandb login` or set WANDB_API_KEY "
            "(or check it without W&B: regmix-sweep ... dry_run=true)"
        )


def create_sweep(prepared: PreparedSweep, *, spec_dir: str = "sweeps") -> CreatedSweep:
    """Create the W&B sweep (`wandb.sweep`) and write `<spec_dir>/<sweep>.wandb.json`."""
    check_api_key()
    import wandb
    from wandb.errors import Error as WandbError

    try:
        # wandb.sweep prints the id (we print the whole path) and exports WANDB_ENTITY/PROJECT.
        with contextlib.redirect_stdout(io.StringIO()), _environ_restored("WANDB_ENTITY", "WANDB_PROJECT"):
            sweep_id = wandb.sweep(dict(prepared.spec), entity=prepared.entity, project=prepared.project)
        api = wandb.Api()
        entity = prepared.entity or api.default_entity
        base_url = api.settings["base_url"]
    except WandbError as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SweepSetupError(
            f"W&B refused or did not answer ({message}); check `wandb login`, WANDB_BASE_URL and the "
            f"entity/project ({prepared.entity or '<default entity>'}/{prepared.project})"
        ) from None
    url = f"{wandb.Settings(base_url=base_url).app_url}/{entity}/{prepared.project}/sweeps/{sweep_id}"
    record_file = record_path(spec_dir, prepared.sweep)
    previous = _read_record(record_file)
    record = {
        "schema": RECORD_SCHEMA,
        "sweep": prepared.sweep,
        "id": sweep_id,
        "entity": entity,
        "project": prepared.project,
        "path": f"{entity}/{prepared.project}/{sweep_id}",
        "url": url,
        "n_runs": prepared.n_runs,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "spec": prepared.spec,
        "previous": _earlier_sweeps(previous),
    }
    write_text_atomic(record_file, json.dumps(record, indent=2) + "\n")
    return CreatedSweep(id=sweep_id, entity=entity, project=prepared.project, url=url, record=record_file)


@contextlib.contextmanager
def _environ_restored(*names: str):
    saved = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _earlier_sweeps(previous: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Sweeps created earlier from the same spec (oldest first): their runs stay pullable by id."""
    if not previous:
        return []
    last = {key: previous[key] for key in ("id", "entity", "project", "created_at") if key in previous}
    return list(previous.get("previous", [])) + [last]


def _read_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return record if isinstance(record, dict) and record.get("id") else {}


def agent_commands(path: str, *, n_runs: int) -> dict[str, str]:
    """The ways to start agents for the sweep at `path` (entity/project/id)."""
    quoted = shlex.quote(path)
    parallel = min(n_runs, SLURM_PARALLEL)
    return {
        "one agent": f"wandb agent {quoted}",
        "one agent per GPU": (
            "for i in $(nvidia-smi --query-gpu=index --format=csv,noheader); do "
            f"CUDA_VISIBLE_DEVICES=$i wandb agent {quoted} & done; wait"
        ),
        "SLURM array, one run per task": (
            f"sbatch --array=1-{n_runs}%{parallel} --gres=gpu:1 --wrap {shlex.quote(f'wandb agent --count 1 {quoted}')}"
        ),
    }


def _fit_command(created: CreatedSweep, target: list[str]) -> str:
    items = [
        "regmix-fit",
        "source=wandb",
        f"source.wandb.sweep={created.id}",
        f"source.wandb.entity={created.entity}",
        f"source.wandb.project={created.project}",
        f"sweep={created.record.name[: -len(WANDB_RECORD_SUFFIX)]}",
        *(target or ["target=<domain>"]),
    ]
    return shlex.join(items)


def _target_of(spec_dir: str | os.PathLike, sweep: str) -> list[str]:
    """The target the sweep recorded, as regmix-fit's `target=` (and `target_goal=`) items;
    empty when it recorded none."""
    record = SweepRecord.read(settings_path(spec_dir, sweep))
    target = record.target if record else None
    if not target:
        return []
    if isinstance(target, dict):  # a weighted target: Hydra's mapping syntax
        target = "{" + ", ".join(f"{key}: {weight:g}" for key, weight in target.items()) + "}"
    return [f"target={target}"] + (["target_goal=maximize"] if record.target_goal == "maximize" else [])


def launch_sweep(
    *,
    sweep: str,
    spec_dir: str = "sweeps",
    fixed: Sequence[str] = (),
    entity: str | None = None,
    project: str | None = None,
    dry_run: bool = False,
    log=print,
) -> CreatedSweep | None:
    """Check the sweep and (unless `dry_run`) create it on W&B; print what to run next.

    Returns the created sweep, or None for a dry run."""
    if not dry_run:
        check_api_key()  # before the checks: a missing key is the likeliest first failure
    prepared = prepare_sweep(sweep=sweep, spec_dir=spec_dir, fixed=fixed, entity=entity, project=project)
    for message in prepared.warnings:
        log(f"warning: {message}")
    log(f"checked {prepared.spec_file}: {prepared.n_runs} runs over {prepared.table}")
    log(f"first run: {shlex.join(prepared.first_argv)}")
    if dry_run:
        import yaml

        log("dry run: the spec W&B would get:")
        log(yaml.safe_dump(prepared.spec, sort_keys=False, width=100, default_flow_style=None).rstrip())
        path = f"{prepared.entity or '<entity>'}/{prepared.project}/<sweep id>"
        for what, command in agent_commands(path, n_runs=prepared.n_runs).items():
            log(f"{what}:  {command}")
        return None
    created = create_sweep(prepared, spec_dir=spec_dir)
    log(f"created W&B sweep {created.path}: {created.url}")
    log(f"wrote {created.record}")
    log("start agents in this folder (runs read the table and corpus at the paths above):")
    for what, command in agent_commands(created.path, n_runs=prepared.n_runs).items():
        log(f"  {what}:  {command}")
    log(f"then:  {_fit_command(created, _target_of(spec_dir, sweep))}")
    return created
