"""The W&B sweep spec of a proxy sweep: `sweeps/<sweep>.yaml`.

One grid parameter, `mixture.index` (0..n-1), selects a row of `sweeps/<sweep>.mixtures.csv`;
everything else the train command needs is a literal item of `command:` so that every agent
run gets it unchanged. Why this shape (facts measured with wandb 0.31):

- `${args_no_hyphens}` gives plain `key=value`, what Hydra parses; `${args}` gives
  `--key=value`, which Hydra rejects;
- only a leaf key is swept: a parameter named like a config group (`model`) would replace the
  group's logged dict with a string when the agent locks `run.config`;
- values that break Hydra as literal items (the string 'None', unquoted commas that Hydra reads
  as a sweep, dicts) are refused here rather than failing on every agent host later;
- the local controller repeats a grid after 500 runs (wandb#5247), so larger grids get a warning.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from regmix.atomic_file import write_text_atomic
from regmix.metrics import METRIC_GOALS, val_loss_key
from regmix.errors import RegmixError
from regmix.sweep.wandb_schema import sweep_config_problems

#: The train entry point the agent runs (`python -m`, so no path to a script is needed).
TRAIN_MODULE = "regmix.cli.train"
SWEPT_KEY = "mixture.index"
#: Agents must log online: the controller only counts a run once its `wandb.init` reaches the
#: server, so offline children are re-queued and trained twice (wandb#3522, #9435).
TRACKER_ITEM = "tracker=online"
#: Grid size after which W&B's local controller starts repeating runs (wandb#5247).
GRID_REPEAT_LIMIT = 500


class SweepSpecError(RegmixError):
    """A sweep spec that W&B or Hydra would reject; the message names the item and the fix."""


def check_fixed_items(items: Iterable[str]) -> list[str]:
    """Validate fixed `key=value` train overrides with Hydra's own parser; return them as a list.

    Refused: anything Hydra cannot parse, sweeps (`a=x,y`, `range(...)`), dicts, the string
    'None' (write `null`), and keys the spec sets itself (`sweep`, `tracker`, `mixture.index`).
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    out: list[str] = []
    for item in items:
        item = str(item)
        try:
            (override,) = parser.parse_overrides([item])
        except HydraException as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SweepSpecError(f"fixed item {item!r} is not a Hydra `key=value` override ({first})") from None
        key = override.key_or_group
        if key in ("sweep", SWEPT_KEY, "tracker", "tracker.mode"):
            raise SweepSpecError(
                f"fixed item {item!r} sets {key!r}, which the sweep spec sets itself; drop it "
                "(the sweep name comes from sweep=, agents always log with tracker=online)"
            )
        if override.is_sweep_override():
            raise SweepSpecError(
                f"fixed item {item!r} is a Hydra sweep (commas or range()); give one value, "
                f"or quote a string that contains commas: {key}='a,b'"
            )
        value = override.value()
        if isinstance(value, dict):
            raise SweepSpecError(
                f"fixed item {item!r} is a dict; set its leaf keys one by one (e.g. {key}.<field>=...)"
            )
        if isinstance(value, str) and value == "None" and not override.get_value_element_as_str().startswith(("'", '"')):
            raise SweepSpecError(f"fixed item {item!r}: Hydra reads None as the string 'None'; write {key}=null")
        out.append(item)
    return out


def build_sweep_spec(
    *,
    sweep: str,
    n_mixtures: int,
    fixed: Sequence[str] = (),
    target: str | None = None,
    metric: str | None = None,
    goal: str = "minimize",
) -> dict[str, Any]:
    """The W&B sweep config dict (grid over `mixture.index`), validated against W&B's rules.

    Its metric is `metric` (a summary key), else `target`'s validation loss; `goal` is W&B's
    `metric.goal` ('minimize' or 'maximize'); no metric when neither is given."""
    if n_mixtures < 1:
        raise SweepSpecError(f"n_mixtures={n_mixtures} is invalid: a sweep needs at least 1 mixture")
    fixed_items = check_fixed_items(fixed)
    spec: dict[str, Any] = {
        "name": sweep,
        # Unused by our command (it runs `python -m`), but the agent reads command["program"].
        "program": TRAIN_MODULE.replace(".", "/") + ".py",
        "method": "grid",
    }
    if goal not in METRIC_GOALS:
        raise SweepSpecError(f"metric goal {goal!r} is unknown; use one of {list(METRIC_GOALS)}")
    if metric or target:
        spec["metric"] = {"name": metric or val_loss_key(target), "goal": goal}
    spec["parameters"] = {SWEPT_KEY: {"values": list(range(int(n_mixtures)))}}
    spec["command"] = [
        "${env}",
        "${interpreter}",
        "-m",
        TRAIN_MODULE,
        f"sweep={sweep}",
        *fixed_items,
        TRACKER_ITEM,
        "${args_no_hyphens}",
    ]
    validate_sweep_spec(spec)
    return spec


def validate_sweep_spec(spec: Mapping[str, Any]) -> None:
    """Raise `SweepSpecError` unless the spec follows W&B's sweep-config rules (`wandb_schema`)."""
    problems = sweep_config_problems(spec)
    if problems:
        raise SweepSpecError(f"W&B would reject the sweep spec: {'; '.join(problems)}")


def grid_warnings(spec: Mapping[str, Any]) -> list[str]:
    """Human-readable warnings about a valid spec (e.g. grids the local controller repeats)."""
    out = []
    for name, param in spec.get("parameters", {}).items():
        values = param.get("values", [])
        if len(values) > GRID_REPEAT_LIMIT:
            out.append(
                f"grid over {name} has {len(values)} values; W&B's local controller repeats runs after "
                f"{GRID_REPEAT_LIMIT} (wandb#5247). The hosted controller is fine; runs of one index "
                "are deduplicated by the analysis anyway"
            )
    return out


class _SpecDumper(yaml.SafeDumper):
    """Block style, except lists of plain numbers (the grid values) on one flowing line."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    numbers = bool(data) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=numbers)


_SpecDumper.add_representer(list, _represent_list)


def write_sweep_spec(path: str | os.PathLike, spec: Mapping[str, Any]) -> Path:
    """Validate and write `spec` as YAML (atomically); return the path."""
    validate_sweep_spec(spec)
    header = (
        "# W&B sweep spec written by regmix-sample (or regmix-propose): one proxy run per row of the mixtures table.\n"
        "# Create it with `wandb sweep <this file>` (or regmix-sweep), then run `wandb agent <id>` per GPU.\n"
    )
    text = header + yaml.dump(dict(spec), Dumper=_SpecDumper, sort_keys=False, width=100)
    return write_text_atomic(path, text)


def read_sweep_spec(path: str | os.PathLike) -> dict[str, Any]:
    """Load a spec written by `write_sweep_spec`."""
    with open(path) as fh:
        return yaml.safe_load(fh)


def agent_argv(spec: Mapping[str, Any], params: Mapping[str, Any], *, run_id: str = "run0") -> list[str]:
    """The argv `wandb agent` would start for one run of `spec` with these parameter values.

    Mirrors `wandb.wandb_agent.Agent._command_run` (wandb 0.31): `create_sweep_command`
    fills `${envvar:...}` macros, `create_sweep_command_args` formats the parameters, and each
    `${macro}` item is replaced by its list (unknown macros vanish, as in the agent).
    """
    from wandb.sdk.launch.sweeps import utils as sweep_utils

    # create_sweep_command edits its argument in place (and its default is a module global).
    template = list(spec.get("command") or sweep_utils.DEFAULT_SWEEP_COMMAND)
    sweep_command = sweep_utils.create_sweep_command(template)
    command = {
        "type": "run",
        "run_id": run_id,
        "program": spec.get("program"),
        "args": {key: {"value": value} for key, value in params.items()},
    }
    sweep_vars: dict[str, Any] = sweep_utils.create_sweep_command_args(command)
    sweep_vars["interpreter"] = ["python"]
    sweep_vars["program"] = [command["program"]]
    sweep_vars["args_json_file"] = [os.path.join("wandb", "sweep-<id>", f"config-{run_id}.json")]
    if platform.system() != "Windows":
        sweep_vars["env"] = ["/usr/bin/env"]
    argv: list[str] = []
    for item in sweep_command:
        item = str(item)
        if item.startswith("${") and item.endswith("}"):
            argv += sweep_vars.get(item[2:-1]) or []
        else:
            argv.append(item)
    return argv
