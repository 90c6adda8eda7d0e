"""What W&B accepts in a sweep config: the keys its sweep-configuration reference documents.

W&B checks a sweep config on the server (`wandb sweep` prints what it rejects) with a JSON
schema that its `sweeps` package ships. That package pins numpy < 2, so regmix carries its own
check of the same rules instead of the package (docs/decisions.md): the top-level keys, the
search methods, a metric with a name and a goal, parameters that are each one of the documented
shapes (`value`, `values`, a `distribution` with its bounds, or nested `parameters`), grid
search over discrete parameters only, Bayesian search with a metric, and hyperband early
termination. `sweep_config_problems` returns one line per problem, the way W&B lists them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from numbers import Real
from typing import Any

METHODS = ("grid", "random", "bayes", "custom")
GOALS = ("minimize", "maximize")
#: Top-level keys of W&B's sweep configuration (the launch keys included); any other key is rejected.
TOP_LEVEL_KEYS = frozenset(
    {
        "apiVersion", "kind", "controller", "description", "program", "job", "image_uri", "entity",
        "project", "method", "command", "name", "run_cap", "metric", "metrics", "scheduler",
        "early_terminate", "parameters",
    }
)  # fmt: skip
METRIC_KEYS = frozenset({"name", "goal", "target", "impute", "impute_while_running"})
#: A parameter's name as the schema allows it (dots select nested config keys, e.g. mixture.index).
PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
#: Each distribution and the bounds it needs (required, optional).
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "constant": (("value",), ()),
    "categorical": (("values",), ()),
    "categorical_w_probabilities": (("values", "probabilities"), ()),
    "int_uniform": (("min", "max"), ()),
    "uniform": (("min", "max"), ()),
    "q_uniform": (("min", "max"), ("q",)),
    "log_uniform": (("min", "max"), ()),
    "log_uniform_values": (("min", "max"), ()),
    "q_log_uniform": (("min", "max"), ("q",)),
    "q_log_uniform_values": (("min", "max"), ("q",)),
    "inv_log_uniform": (("min", "max"), ()),
    "inv_log_uniform_values": (("min", "max"), ()),
    "normal": ((), ("mu", "sigma")),
    "q_normal": ((), ("mu", "sigma", "q")),
    "log_normal": ((), ("mu", "sigma")),
    "q_log_normal": ((), ("mu", "sigma", "q")),
    "beta": ((), ("a", "b")),
    "q_beta": ((), ("a", "b", "q")),
}
#: What grid search can enumerate; a continuous distribution has no grid.
GRID_DISTRIBUTIONS = frozenset({"constant", "categorical", "int_uniform", "q_uniform"})
HYPERBAND_KEYS = frozenset({"type", "max_iter", "min_iter", "s", "eta", "strict"})


def sweep_config_problems(config: Mapping[str, Any]) -> list[str]:
    """Every reason W&B would reject `config` as a sweep config; [] when it accepts it."""
    if not isinstance(config, Mapping):
        return [f"a sweep config is a mapping of keys, not {type(config).__name__}"]
    problems = [f"unknown key {key!r} (W&B's keys: {', '.join(sorted(TOP_LEVEL_KEYS))})" for key in config if key not in TOP_LEVEL_KEYS]
    method = config.get("method")
    if method is None:
        problems.append(f"'method' is required: one of {', '.join(METHODS)}")
    elif method not in METHODS:
        problems.append(f"method {method!r} is not one of {', '.join(METHODS)}")
    for key in ("name", "program", "description", "entity", "project", "job", "image_uri"):
        if key in config and not isinstance(config[key], str):
            problems.append(f"{key!r} must be a string, not {config[key]!r}")
    if "command" in config and not (isinstance(config["command"], list) and all(isinstance(i, str) for i in config["command"])):
        problems.append("'command' must be a list of strings")
    run_cap = config.get("run_cap")
    if run_cap is not None and (isinstance(run_cap, bool) or not isinstance(run_cap, int) or run_cap < 1):
        problems.append(f"run_cap {run_cap!r} must be a positive integer")
    if "metric" in config:
        problems += _metric_problems(config["metric"])
    elif method == "bayes":
        problems.append("method 'bayes' needs a 'metric' to model")
    if "metric" in config and "metrics" in config:
        problems.append("give 'metric' or 'metrics', not both")
    if "early_terminate" in config:
        problems += _hyperband_problems(config["early_terminate"])
    if "parameters" not in config:
        if method != "custom":
            problems.append("'parameters' is required: at least one parameter to sweep")
    else:
        problems += _parameters_problems(config["parameters"], grid=method == "grid", where="parameters")
    return problems


def _metric_problems(metric: Any) -> list[str]:
    if not isinstance(metric, Mapping):
        return [f"'metric' must be a mapping with a name and a goal, not {metric!r}"]
    out = [f"metric: unknown key {key!r}" for key in metric if key not in METRIC_KEYS]
    if not isinstance(metric.get("name"), str) or not metric.get("name"):
        out.append("metric: 'name' is required (the logged key to optimise)")
    if "goal" in metric and metric["goal"] not in GOALS:
        out.append(f"metric: goal {metric['goal']!r} is not one of {', '.join(GOALS)}")
    if "target" in metric and not _is_number(metric["target"]):
        out.append(f"metric: target {metric['target']!r} must be a number")
    return out


def _hyperband_problems(rule: Any) -> list[str]:
    if not isinstance(rule, Mapping) or rule.get("type") != "hyperband":
        return ["early_terminate: the only type W&B knows is 'hyperband'"]
    out = [f"early_terminate: unknown key {key!r}" for key in rule if key not in HYPERBAND_KEYS]
    if "min_iter" not in rule and not ("max_iter" in rule and "s" in rule):
        out.append("early_terminate: hyperband needs min_iter, or max_iter and s")
    return out


def _parameters_problems(parameters: Any, *, grid: bool, where: str) -> list[str]:
    if not isinstance(parameters, Mapping) or not parameters:
        return [f"{where}: a mapping of at least one parameter name to its values"]
    out: list[str] = []
    for name, param in parameters.items():
        label = f"{where}.{name}"
        if not isinstance(name, str) or not PARAMETER_NAME.match(name):
            out.append(f"{label}: a parameter name starts with a letter or _ and holds letters, digits, _ . -")
        out += _parameter_problems(param, grid=grid, where=label)
    return out


def _parameter_problems(param: Any, *, grid: bool, where: str) -> list[str]:
    if not isinstance(param, Mapping):
        return [f"{where}: give a mapping such as {{values: [...]}} or {{value: ...}}, not {param!r}"]
    if "parameters" in param:  # a nested group of parameters
        extra = sorted(set(param) - {"parameters"})
        out = [f"{where}: nested 'parameters' take no other keys (found {', '.join(extra)})"] if extra else []
        return out + _parameters_problems(param["parameters"], grid=grid, where=f"{where}.parameters")
    distribution = param.get("distribution") or _implied_distribution(param)
    if distribution is None:
        return [f"{where}: give 'values', 'value', 'min'/'max' or a 'distribution'"]
    if distribution not in DISTRIBUTIONS:
        return [f"{where}: distribution {distribution!r} is not one of {', '.join(DISTRIBUTIONS)}"]
    required, optional = DISTRIBUTIONS[distribution]
    out = [f"{where}: distribution {distribution!r} needs {key!r}" for key in required if key not in param]
    allowed = {"distribution", *required, *optional}
    out += [f"{where}: {key!r} does not belong to distribution {distribution!r}" for key in param if key not in allowed]
    if "values" in param and not (isinstance(param["values"], list) and param["values"]):
        out.append(f"{where}: 'values' must be a non-empty list")
    for key in ("min", "max", "q", "mu", "sigma", "a", "b"):
        if key in param and not _is_number(param[key]):
            out.append(f"{where}: {key!r} must be a number, not {param[key]!r}")
    if distribution == "int_uniform" and not all(isinstance(param.get(k), int) for k in ("min", "max")):
        out.append(f"{where}: int_uniform needs integer min and max")
    if grid and distribution not in GRID_DISTRIBUTIONS:
        out.append(
            f"{where}: grid search enumerates values; distribution {distribution!r} has none "
            "(use values, value, int_uniform or q_uniform, or method: random)"
        )
    return out


def _implied_distribution(param: Mapping[str, Any]) -> str | None:
    """The distribution W&B infers when none is named (values -> categorical, min/max -> uniform)."""
    if "values" in param:
        return "categorical_w_probabilities" if "probabilities" in param else "categorical"
    if "value" in param:
        return "constant"
    if "min" in param and "max" in param:
        both_int = all(isinstance(param[k], int) and not isinstance(param[k], bool) for k in ("min", "max"))
        return "int_uniform" if both_int else "uniform"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)
