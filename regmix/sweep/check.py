"""What every `wandb agent` host will run for a sampled sweep, checked before W&B sees it.

`prepare_sweep` reads `sweeps/<sweep>.yaml` (written by regmix-sample), adds fixed choices to
its command and checks the wandb 0.31 pitfalls (see docs/facts) on the spec as it will be
created:

- the command passes the swept values as `${args_no_hyphens}` (Hydra rejects `--key=value`);
- only leaf keys are swept: a parameter named like a config group (`model`) would be logged
  as a string in place of the group's dict once the agent locks `run.config`; swept values
  are plain (no None, commas or dicts, which Hydra would misread);
- fixed choices are literal command items, and the train command composes with them for the
  first and last grid points (a typo fails here, not on every agent host); agents log online;
- every grid index is a row of the mixtures table; grids over 500 runs get a warning (W&B's
  local controller repeats after 500, wandb#5247; the analysis deduplicates by mixture anyway).
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, ListConfig, OmegaConf

from regmix.config import TrackerConfig, register_configs
from regmix.hydra_conf import compose
from regmix.sweep.files import settings_path, spec_path
from regmix.sweep.record import SweepRecord
from regmix.sweep.spec import (
    SWEPT_KEY,
    SweepSpecError,
    agent_argv,
    check_fixed_items,
    grid_warnings,
    read_sweep_spec,
    validate_sweep_spec,
)
from regmix.sweep.table import read_mixtures_table
from regmix.errors import RegmixError

#: Sweep-command macros that format parameters in ways Hydra cannot parse (`--key=value`, JSON).
HYDRA_HOSTILE_MACROS = ("${args}", "${args_no_boolean_flags}", "${args_no_equals}", "${args_json}")
#: Overrides the spec itself owns; a fixed item may not set them (see check_fixed_items).
OWN_KEYS = ("sweep", "tracker", "tracker.mode")


class SweepSetupError(RegmixError):
    """A sweep that cannot be created as asked; the message names the bad value and the fix."""


@dataclass
class PreparedSweep:
    """A checked spec, ready for `wandb.sweep`."""

    sweep: str
    spec: dict[str, Any]
    spec_file: Path
    table: Path
    n_runs: int
    entity: Optional[str]
    project: str
    first_argv: list[str]
    """What the agent starts for the first grid point."""
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------
# The spec's command
# --------------------------------------------------------------------------------------


def _override_key(item: str) -> str:
    """The key an override item sets (`+experiment=x` -> 'experiment', `model=1m` -> 'model')."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        (override,) = OverridesParser.create().parse_overrides([item])
    except HydraException:
        raise SweepSetupError(f"command item {item!r} is not a Hydra `key=value` override; fix or drop it") from None
    return override.key_or_group


def _is_override(item: Any) -> bool:
    text = str(item)
    return "=" in text and not text.startswith(("$", "-"))


def merge_fixed(command: Sequence[Any], fixed: Sequence[str]) -> list[str]:
    """`command` with each fixed item replacing the item of the same key, else added before
    the spec's `tracker=...` item (or before the swept `${args_no_hyphens}`)."""
    command = [str(c) for c in command]
    keys = {i: _override_key(c) for i, c in enumerate(command) if _is_override(c)}
    extra: list[str] = []
    for item in fixed:
        key = _override_key(item)
        same = [i for i, k in keys.items() if k == key]
        if same:
            command[same[0]] = item
        else:
            extra.append(item)
    anchors = [i for i, k in keys.items() if k == "tracker"] + [
        i for i, c in enumerate(command) if c == "${args_no_hyphens}"
    ]
    at = min(anchors) if anchors else len(command)
    return command[:at] + extra + command[at:]


def _check_command(command: Sequence[str], *, sweep: str, spec_file: Path) -> None:
    macros = [c for c in command if c.startswith("${")]
    hostile = [m for m in macros if m in HYDRA_HOSTILE_MACROS]
    if hostile:
        raise SweepSetupError(
            f"{spec_file}: command uses {hostile[0]}, which passes `--key=value` (Hydra rejects it); "
            "use ${args_no_hyphens}"
        )
    if "${args_no_hyphens}" not in macros:
        raise SweepSetupError(
            f"{spec_file}: command lacks ${{args_no_hyphens}}, so agents would not pass {SWEPT_KEY}; "
            "add it as the last item (or regenerate the spec with regmix-sample)"
        )
    own: dict[str, str] = {}
    fixed = []
    for item in (c for c in command if _is_override(c)):
        key = _override_key(item)
        if key in OWN_KEYS:
            own[key] = item.split("=", 1)[1]
        else:
            fixed.append(item)
    try:
        check_fixed_items(fixed)
    except SweepSpecError as exc:
        raise SweepSetupError(f"{spec_file}: {exc}") from None
    if own.get("sweep") != sweep:
        raise SweepSetupError(
            f"{spec_file}: command item sweep={own.get('sweep')} is not sweep={sweep}, so agents would "
            f"train on another table; regenerate the spec with `regmix-sample sweep={sweep}`"
        )
    mode = own.get("tracker.mode", own.get("tracker"))
    if mode != "online":
        raise SweepSetupError(
            f"{spec_file}: command logs with tracker={mode}; agents need tracker=online (the controller "
            "re-queues offline runs and trains them twice, wandb#3522)"
        )


# --------------------------------------------------------------------------------------
# The swept parameters
# --------------------------------------------------------------------------------------


def _check_parameters(spec: Mapping[str, Any], spec_file: Path) -> dict[str, list[Any]]:
    """name -> grid values; refuses nested parameters and values Hydra cannot take."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    params = spec.get("parameters") or {}
    if SWEPT_KEY not in params or "values" not in (params[SWEPT_KEY] or {}):
        raise SweepSetupError(
            f"{spec_file}: no grid over {SWEPT_KEY} (parameters.{SWEPT_KEY}.values); "
            "regenerate the spec with regmix-sample"
        )
    grid: dict[str, list[Any]] = {}
    for name, param in params.items():
        param = param or {}
        if "parameters" in param:
            raise SweepSetupError(
                f"{spec_file}: parameter {name!r} nests parameters, which the agent passes as a dict; "
                f"sweep the leaf keys by their dotted names (e.g. {name}.<field>)"
            )
        values = param.get("values", [param["value"]] if "value" in param else None)
        if values is None:
            raise SweepSetupError(
                f"{spec_file}: parameter {name!r} has no values; give `values: [...]` "
                "(distributions have no fixed run count and are not supported)"
            )
        for value in values:
            item = f"{name}={value}"  # how the agent formats it (create_sweep_command_args)
            if value is None or isinstance(value, (dict, list)):
                raise SweepSetupError(
                    f"{spec_file}: parameter {name!r} value {value!r} reaches Hydra as {item!r}; "
                    "sweep plain numbers or strings only (write nothing for null)"
                )
            try:
                (override,) = parser.parse_overrides([item])
            except HydraException:
                raise SweepSetupError(
                    f"{spec_file}: parameter {name!r} value {value!r} is not a Hydra value; "
                    "use plain numbers or simple strings"
                ) from None
            if override.is_sweep_override():
                raise SweepSetupError(
                    f"{spec_file}: parameter {name!r} value {value!r} contains a comma, which Hydra "
                    "reads as a sweep; drop the comma"
                )
        grid[name] = list(values)
    return grid


def _check_leaf_keys(cfg: DictConfig, grid: Mapping[str, Sequence[Any]], spec_file: Path) -> None:
    for name in grid:
        node = OmegaConf.select(cfg, name, throw_on_missing=False)
        if isinstance(node, (DictConfig, ListConfig)):
            raise SweepSetupError(
                f"{spec_file}: parameter {name!r} is a config group or mapping; W&B would log it as "
                f"a string in place of the group's dict. Sweep a leaf key (e.g. {name}.<field>) "
                f"or fix the choice with fixed=[{name}=<choice>]"
            )


# --------------------------------------------------------------------------------------
# What the agent will run
# --------------------------------------------------------------------------------------


def compose_train(overrides: Sequence[str]) -> DictConfig:
    """The train command's config for these overrides (Hydra's own composition), resolved."""
    register_configs()
    cfg = compose("train", overrides)
    OmegaConf.resolve(cfg)
    return cfg


def _train_overrides(argv: Sequence[str]) -> list[str]:
    """The Hydra overrides in an agent argv (everything after the program)."""
    return [a for a in argv if _is_override(a)]


def _compose_or_explain(argv: Sequence[str], spec_file: Path) -> DictConfig:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        cfg = compose_train(_train_overrides(argv))
        OmegaConf.to_object(cfg)  # type-checks every value against the schema
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SweepSetupError(
            f"the agent's command for {spec_file} does not compose: {first}; fix that fixed item "
            f"(agents would run: {shlex.join(argv)})"
        ) from None
    return cfg


def _check_table(cfg: DictConfig, grid_index: Sequence[Any], spec_file: Path, spec_dir: Path, sweep: str) -> tuple[Path, list[str]]:
    table = Path(str(cfg.mixture.table))
    if not table.is_file():
        raise SweepSetupError(
            f"no mixtures table at {table} (mixture.table of {spec_file}); run "
            f"`regmix-sample sweep={sweep}` here, or fix mixture.table (agents read it relative to their folder)"
        )
    rows = read_mixtures_table(table)
    indices = {int(i) for i in rows["index"]}
    wanted = {int(i) for i in grid_index}
    missing = sorted(wanted - indices)
    if missing:
        raise SweepSetupError(
            f"{spec_file} grids {SWEPT_KEY} over {len(wanted)} values but {table} has {len(indices)} rows "
            f"(no row for {missing[:5]}); regenerate both with `regmix-sample sweep={sweep} overwrite=true`"
        )
    notes = []
    if len(indices) > len(wanted):
        notes.append(f"the grid covers {len(wanted)} of the {len(indices)} rows of {table}")
    settings = settings_path(spec_dir, sweep)
    record = SweepRecord.read(settings)
    if record and record.table_sha256 and record.table_sha256 != hashlib.sha256(table.read_bytes()).hexdigest():
        notes.append(f"{table} changed since regmix-sample wrote it ({settings.name} has another hash)")
    data_dir = Path(str(cfg.data.dir))
    if not (data_dir / "meta.json").is_file():
        notes.append(f"no prepared corpus at data.dir={data_dir} here; every agent host must have one at that path")
    return table, notes


def prepare_sweep(
    *,
    sweep: str,
    spec_dir: str = "sweeps",
    fixed: Sequence[str] = (),
    entity: str | None = None,
    project: str | None = None,
) -> PreparedSweep:
    """Read `<spec_dir>/<sweep>.yaml`, add the fixed items, and check what agents will run.

    Raises `SweepSetupError` (or the table reader's `ValueError`) naming the problem and the fix.
    """
    spec_file = spec_path(spec_dir, sweep)
    if not spec_file.is_file():
        raise SweepSetupError(f"no sweep spec at {spec_file}; run `regmix-sample sweep={sweep}` first")
    spec = read_sweep_spec(spec_file)
    if not isinstance(spec, dict) or not isinstance(spec.get("command"), list):
        raise SweepSetupError(f"{spec_file} is not a W&B sweep spec with a command; regenerate it with regmix-sample")
    try:
        fixed = check_fixed_items(fixed)
    except SweepSpecError as exc:
        raise SweepSetupError(str(exc)) from None
    command = merge_fixed(spec["command"], fixed)
    project = _agree("project", project, _item_value(command, "tracker.project")) or _default_project()
    entity = _agree("entity", entity, _item_value(command, "tracker.entity"))
    # The run config then names where the run really lives (W&B ignores init's project under a sweep).
    command = merge_fixed(command, [f"tracker.project={project}"] + ([f"tracker.entity={entity}"] if entity else []))
    spec = {**spec, "command": command}
    _check_command(command, sweep=sweep, spec_file=spec_file)
    grid = _check_parameters(spec, spec_file)
    try:
        validate_sweep_spec(spec)
    except SweepSpecError as exc:
        raise SweepSetupError(f"{spec_file}: {exc}") from None

    first = agent_argv(spec, {name: values[0] for name, values in grid.items()})
    last = agent_argv(spec, {name: values[-1] for name, values in grid.items()})
    cfg = _compose_or_explain(first, spec_file)
    _compose_or_explain(last, spec_file)
    _check_leaf_keys(cfg, grid, spec_file)
    table, notes = _check_table(cfg, grid[SWEPT_KEY], spec_file, Path(spec_dir), sweep)

    n_runs = 1
    for values in grid.values():
        n_runs *= len(values)
    if spec.get("method") != "grid":
        notes.append(f"method={spec.get('method')!r} draws grid points at random: some mixtures repeat, some never run")
    return PreparedSweep(
        sweep=sweep,
        spec=spec,
        spec_file=spec_file,
        table=table,
        n_runs=n_runs,
        entity=entity,
        project=project,
        first_argv=first,
        warnings=grid_warnings(spec) + notes,
    )


def _item_value(command: Sequence[str], key: str) -> str | None:
    """The value a `key=value` item of `command` sets, or None."""
    values = [c.split("=", 1)[1] for c in command if _is_override(c) and _override_key(c) == key]
    return values[-1] if values else None


def _agree(name: str, given: str | None, in_command: str | None) -> str | None:
    """The W&B entity/project: the one given, else the command's tracker.<name> item."""
    if given and in_command and given != in_command:
        raise SweepSetupError(
            f"{name}={given} but the command sets tracker.{name}={in_command}: runs would say another "
            f"{name} than the sweep's; drop one of them"
        )
    return given or in_command


def _default_project() -> str:
    return TrackerConfig().project
