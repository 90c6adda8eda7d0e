"""The W&B sweep spec: valid by W&B's rules, and the argv the agent builds is what Hydra wants."""

from __future__ import annotations

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from regmix.sweep.spec import (
    GRID_REPEAT_LIMIT,
    SweepSpecError,
    agent_argv,
    build_sweep_spec,
    check_fixed_items,
    grid_warnings,
    read_sweep_spec,
    validate_sweep_spec,
    write_sweep_spec,
)
from regmix.sweep.files import spec_path
from regmix.sweep.wandb_schema import sweep_config_problems

@pytest.fixture()
def spec():
    return build_sweep_spec(sweep="demo", n_mixtures=16, fixed=["model=1m", "train.tokens=65536"], target="pile_cc")


def test_spec_shape_and_validation(spec):
    assert spec["method"] == "grid"
    assert spec["name"] == "demo"
    assert spec["parameters"] == {"mixture.index": {"values": list(range(16))}}
    assert spec["metric"] == {"name": "val/pile_cc/loss", "goal": "minimize"}
    assert spec["command"] == [
        "${env}", "${interpreter}", "-m", "regmix.cli.train", "sweep=demo",
        "model=1m", "train.tokens=65536", "tracker=online", "${args_no_hyphens}",
    ]  # fmt: skip
    assert sweep_config_problems(spec) == []


def test_no_target_no_metric():
    spec = build_sweep_spec(sweep="demo", n_mixtures=4)
    assert "metric" not in spec
    assert sweep_config_problems(spec) == []


#: Sweep configs W&B rejects, and a phrase of the problem our check names.
REJECTED = [
    ({"method": "grd", "parameters": {"x": {"values": [1]}}}, "method 'grd'"),
    ({"parameters": {"x": {"values": [1]}}}, "'method' is required"),
    ({"method": "grid"}, "'parameters' is required"),
    ({"method": "grid", "parameters": {}}, "at least one parameter"),
    ({"method": "grid", "parameters": {"x": {"values": []}}}, "non-empty list"),
    ({"method": "grid", "parameters": {"x": 3}}, "give a mapping"),
    ({"method": "grid", "parameters": {"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}}}, "grid search enumerates"),
    ({"method": "random", "parameters": {"x": {"distribution": "uniform", "min": 0.0}}}, "needs 'max'"),
    ({"method": "random", "parameters": {"x": {"distribution": "gaussian"}}}, "distribution 'gaussian'"),
    ({"method": "random", "parameters": {"x": {"values": [1], "min": 0}}}, "'min' does not belong"),
    ({"method": "random", "parameters": {"1x": {"value": 1}}}, "parameter name"),
    ({"method": "bayes", "parameters": {"x": {"values": [1, 2]}}}, "needs a 'metric'"),
    ({"method": "grid", "metric": {"goal": "minimize"}, "parameters": {"x": {"value": 1}}}, "'name' is required"),
    ({"method": "grid", "metric": {"name": "loss", "goal": "lowest"}, "parameters": {"x": {"value": 1}}}, "goal 'lowest'"),
    ({"method": "grid", "parameters": {"x": {"value": 1}}, "run_cap": 0}, "run_cap 0"),
    ({"method": "grid", "parameters": {"x": {"value": 1}}, "command": "python train.py"}, "list of strings"),
    ({"method": "grid", "parameters": {"x": {"value": 1}}, "early_terminate": {"type": "median"}}, "hyperband"),
    ({"method": "grid", "parameters": {"x": {"value": 1}}, "early_terminate": {"type": "hyperband"}}, "min_iter"),
    ({"method": "grid", "parameters": {"x": {"value": 1}}, "metrc": {"name": "loss"}}, "unknown key 'metrc'"),
]
#: Sweep configs W&B accepts (beside the specs regmix writes).
ACCEPTED = [
    {"method": "random", "parameters": {"lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2}}},
    {"method": "grid", "parameters": {"n": {"min": 1, "max": 4}, "opt": {"parameters": {"b": {"values": [1, 2]}}}}},
    {"method": "bayes", "metric": {"name": "val/loss", "goal": "minimize"}, "run_cap": 8,
     "parameters": {"lr": {"min": 0.001, "max": 0.1}, "x": {"distribution": "normal", "mu": 0, "sigma": 1}}},
    {"method": "grid", "parameters": {"x": {"values": [1]}},
     "early_terminate": {"type": "hyperband", "min_iter": 3, "eta": 2}, "command": ["${env}", "${args}"]},
]  # fmt: skip


@pytest.mark.parametrize("config, phrase", REJECTED)
def test_what_wandb_rejects_is_refused(config, phrase):
    problems = sweep_config_problems(config)
    assert any(phrase in p for p in problems), problems
    with pytest.raises(SweepSpecError, match="W&B would reject"):
        validate_sweep_spec(config)


@pytest.mark.parametrize("config", ACCEPTED)
def test_what_wandb_accepts_passes(config):
    assert sweep_config_problems(config) == []


def test_same_verdict_as_wandbs_engine_where_installed():
    """Where W&B's `sweeps` engine is installed (it needs numpy < 2), it gives the same verdicts.

    The engine rejects in two places: its schema lists violations, and its first suggestion
    raises for what the schema lets through (a grid over a continuous distribution, bayes
    without a metric) or for a parameter that is not a mapping.
    """
    engine = pytest.importorskip("sweeps")
    if not hasattr(engine, "next_run"):  # the checkout's own sweeps/ folder (specs, no engine)
        pytest.skip("W&B's sweeps engine is not installed")
    specs = [build_sweep_spec(sweep="demo", n_mixtures=16, fixed=["model=1m"], target="pile_cc")]
    for config in [c for c, _ in REJECTED] + ACCEPTED + specs:
        try:
            rejected = bool(engine.schema_violations_from_proposed_config(dict(config)))
            if not rejected:
                engine.next_run(dict(config), [])
        except ValueError:
            rejected = True
        assert bool(sweep_config_problems(config)) == rejected, config


def test_agent_argv_is_plain_hydra_overrides(spec):
    argv = agent_argv(spec, {"mixture.index": 7})
    assert argv[:4] == ["/usr/bin/env", "python", "-m", "regmix.cli.train"]
    assert argv[4:] == ["sweep=demo", "model=1m", "train.tokens=65536", "tracker=online", "mixture.index=7"]
    overrides = OverridesParser.create().parse_overrides(argv[4:])
    assert not any(o.is_sweep_override() for o in overrides)
    assert {o.key_or_group: o.value() for o in overrides}["mixture.index"] == 7


def test_args_macro_would_give_flags_hydra_rejects(spec):
    # Why the spec uses ${args_no_hyphens}: ${args} gives --key=value.
    hyphens = {**spec, "command": [*spec["command"][:-1], "${args}"]}
    assert agent_argv(hyphens, {"mixture.index": 7})[-1] == "--mixture.index=7"


def test_agent_argv_composes_with_the_train_config(spec):
    from regmix.config import register_configs
    from regmix.hydra_conf import compose

    register_configs()
    argv = agent_argv(spec, {"mixture.index": 7})
    cfg = compose("train", overrides=argv[4:])
    assert cfg.sweep == "demo"
    assert cfg.mixture.index == 7
    assert cfg.tracker.mode == "online"
    assert cfg.model.name == "1m"


@pytest.mark.parametrize(
    "item, match",
    [
        ("model=None", "write model=null"),
        ("data.paths=a,b", "Hydra sweep"),
        ("train.lr=range(1,3)", "Hydra sweep"),
        ("model={d_model:64}", "is a dict"),
        ("--model=1m", "not a Hydra `key=value`"),
        ("sweep=other", "sets 'sweep'"),
        ("mixture.index=3", "sets 'mixture.index'"),
        ("tracker=offline", "sets 'tracker'"),
        ("tracker.mode=offline", "sets 'tracker.mode'"),
    ],
)
def test_fixed_items_that_would_break_hydra(item, match):
    with pytest.raises(SweepSpecError, match=match):
        build_sweep_spec(sweep="demo", n_mixtures=4, fixed=[item])


def test_fixed_items_hydra_accepts():
    items = ["model=1m", "train.lr=1e-3", "tracker.project=pile", "data.dir='/a b/c,d'", "model.vocab_size=null", "x='None'"]
    assert check_fixed_items(items) == items


def test_large_grids_warn():
    assert grid_warnings(build_sweep_spec(sweep="demo", n_mixtures=GRID_REPEAT_LIMIT)) == []
    (message,) = grid_warnings(build_sweep_spec(sweep="demo", n_mixtures=512))
    assert "512 values" in message and "500" in message


def test_invalid_specs_are_refused():
    with pytest.raises(SweepSpecError, match="grd"):
        validate_sweep_spec({"method": "grd", "parameters": {"x": {"values": [1]}}})
    with pytest.raises(SweepSpecError, match="n_mixtures=0"):
        build_sweep_spec(sweep="demo", n_mixtures=0)


def test_written_spec_reads_back_and_validates(tmp_path, spec):
    path = write_sweep_spec(spec_path(tmp_path, "demo"), spec)
    assert path.name == "demo.yaml"
    text = path.read_text()
    assert text.startswith("# W&B sweep spec")
    assert "values: [0, 1, 2," in text  # the grid on one line, the command one item a line
    back = read_sweep_spec(path)
    assert back == spec
    assert sweep_config_problems(back) == []
    assert agent_argv(back, {"mixture.index": 3})[-1] == "mixture.index=3"
