"""A sweep's files: the mixtures table, its settings record and the W&B sweep spec.

`regmix-sample` writes a sampled table through `write_sweep`; `regmix-propose` writes each active
round through it too, so a round is a sweep like any other (regmix-train -m, regmix-sweep and
`wandb agent` run it unchanged):

    <sweep>.mixtures.csv   index, then one weight column per train domain
    <sweep>.sampler.json   what made the table (settings, seed, prior, corpus, parents...), its hash
    <sweep>.yaml           W&B sweep spec: grid over mixture.index
"""

from __future__ import annotations

import datetime as _dt
import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from regmix.atomic_file import write_text_atomic
from regmix.sampler import SamplerError
from regmix.sweep.files import DEFAULT_DIR as DEFAULT_OUT_DIR
from regmix.sweep.files import SWEEP_NAME, settings_path, spec_path, table_path
from regmix.sweep.record import SCHEMA as SETTINGS_SCHEMA
from regmix.sweep.spec import build_sweep_spec, grid_warnings, write_sweep_spec
from regmix.sweep.table import write_mixtures_table


@dataclass
class SampleOutputs:
    """What `write_sweep` wrote, and the commands that use it."""

    table: Path
    settings: Path
    spec: Path
    n_mixtures: int
    stats: dict
    warnings: list[str] = field(default_factory=list)
    local_command: str = ""
    wandb_command: str = ""


def check_sweep_name(sweep: str, *, key: str = "sweep") -> str:
    """`sweep` if it is usable as file names and a Hydra value; else a `SamplerError`.

    `key` is the setting the user typed the name as (regmix-propose names its new sweep `out=`).
    """
    if not isinstance(sweep, str) or not SWEEP_NAME.match(sweep):
        raise SamplerError(f"{key}={sweep!r} is not a usable name; use letters, digits, '_', '-', '.' (e.g. {key}=pile_1m)")
    return sweep


def check_table_free(out_dir: str, sweep: str, overwrite: bool, *, key: str = "sweep") -> Path:
    """The table path of `sweep`; a `SamplerError` if a table is there and not `overwrite`."""
    table_file = table_path(Path(out_dir), sweep)
    if table_file.exists() and not overwrite:
        raise SamplerError(
            f"{table_file} already exists and runs may depend on it; pass overwrite=true to replace it "
            f"or pick another {key}= name"
        )
    return table_file


def fixed_with_table(fixed: Sequence[str], out_dir: str, table_file: Path) -> list[str]:
    """The fixed items of the sweep's command, pointing regmix-train at a table outside sweeps/."""
    fixed = list(fixed)
    if Path(out_dir) != Path(DEFAULT_OUT_DIR) and not any(f.split("=", 1)[0] == "mixture.table" for f in fixed):
        # regmix-train reads sweeps/<sweep>.mixtures.csv by default: point it at this table.
        fixed.append(f"mixture.table={table_file.as_posix()}")
    return fixed


def write_sweep(
    table: pd.DataFrame,
    *,
    sweep: str,
    record: dict,
    out_dir: str = DEFAULT_OUT_DIR,
    fixed: Sequence[str] = (),
    target: str | Mapping[str, float] | None = None,
    target_goal: str = "minimize",
    metric: str | None = None,
    overwrite: bool = False,
    stats: dict | None = None,
    key: str = "sweep",
    runs_dir: str = "runs",
) -> SampleOutputs:
    """Write a mixtures table as sweep `sweep`: the table, its settings record and the W&B spec.

    `table` has the `index` column, then one weight column per train domain. `record` holds what
    made the table (sampler settings, seed, prior, corpus, parents...); the sweep's name, size,
    target, file names, table hash and time are added here. Everything is checked (name, free
    table name, fixed items, spec) before the first file is written.

    `target` is a domain (or metric key) or {key: weight} for a weighted target; the spec's
    metric is `metric` when given, else the domain's validation loss key, with `target_goal`
    (W&B has no metric for a weighted target: the record keeps it). `key` is the setting that
    named the sweep (`out` for regmix-propose), for the messages. Replacing a table whose sweep
    has finished runs under `runs_dir` (regmix-train's runs/<sweep>/) warns, naming them.
    """
    check_sweep_name(sweep, key=key)
    table_file = check_table_free(out_dir, sweep, overwrite, key=key)
    settings_file, spec_file = settings_path(Path(out_dir), sweep), spec_path(out_dir, sweep)
    fixed = fixed_with_table(fixed, out_dir, table_file)
    n_mixtures = len(table)
    single = isinstance(target, str) and target
    spec = build_sweep_spec(sweep=sweep, n_mixtures=n_mixtures, fixed=fixed, target=target if single else None,
                            metric=metric, goal=target_goal)

    replaced = table_file.exists()
    table_sha = write_mixtures_table(table_file, table)
    full = {"schema": SETTINGS_SCHEMA, "sweep": sweep, "n_mixtures": int(n_mixtures), **record}
    full.update(
        target=dict(target) if isinstance(target, Mapping) else target,
        target_goal=target_goal if target else None,
        stats=dict(stats or {}),
        table=table_file.name,
        table_sha256=table_sha,
        spec=spec_file.name,
        created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    write_text_atomic(settings_file, json.dumps(full, indent=2) + "\n")
    write_sweep_spec(spec_file, spec)

    local = ["regmix-train", "-m", f"sweep={sweep}", f"mixture.index=range(0,{n_mixtures})", *fixed]
    return SampleOutputs(
        table=table_file,
        settings=settings_file,
        spec=spec_file,
        n_mixtures=int(n_mixtures),
        stats=dict(stats or {}),
        warnings=grid_warnings(spec) + (_orphan_warnings(table_file, Path(runs_dir) / sweep) if replaced else []),
        local_command=shlex.join(local),
        wandb_command=shlex.join(["wandb", "sweep", spec_file.as_posix()]),
    )




def _orphan_warnings(table_file: Path, runs: Path) -> list[str]:
    """A warning naming the finished runs of a sweep whose table was just replaced: they trained
    on rows of the old table, and regmix-train skips (or refuses) a finished run folder, so the
    new rows of the same index would never be trained there."""
    from regmix.run_record import iter_records

    if not runs.is_dir():
        return []
    names = [path.parent.relative_to(runs).as_posix() for path, record in iter_records(runs)
             if record is not None and record.finished]
    if not names:
        return []
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return [
        f"overwrote {table_file}, but {runs} holds {len(names)} finished run(s) of the old table ({shown}); "
        f"they trained on the old mixtures and a rerun will not retrain them: move {runs} away "
        "(or use another sweep= name) before training the new table"
    ]
