"""The W&B sweep spec: valid for W&B's own engine, and the argv the agent builds is what Hydra wants."""

from __future__ import annotations

import warnings

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

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import sweeps

@pytest.fixture()
def spec():
    return build_sweep_spec(sweep="demo", n_mixtures=16, fixed=["model=1m", "train.tokens=65536"], target="pile_cc")


def test_spec_shape_and_sweeps_validation(spec):
    assert spec["method"] == "grid"
    assert spec["name"] == "demo"
    assert spec["parameters"] == {"mixture.index": {"values": list(range(16))}}
    assert spec["metric"] == {"name": "val/pile_cc/loss", "goal": "minimize"}
    assert spec["command"] == [
        "${env}", "${interpreter}", "-m", "regmix.cli.train", "sweep=demo",
        "model=1m", "train.tokens=65536", "tracker=online", "${args_no_hyphens}",
    ]  # fmt: skip
    assert sweeps.schema_violations_from_proposed_config(dict(spec)) == []
    assert sweeps.SweepConfig(dict(spec))


def test_no_target_no_metric():
    spec = build_sweep_spec(sweep="demo", n_mixtures=4)
    assert "metric" not in spec
    assert sweeps.schema_violations_from_proposed_config(dict(spec)) == []


def test_the_engine_enumerates_every_index_once():
    spec = build_sweep_spec(sweep="demo", n_mixtures=12)
    runs: list = []
    while (run := sweeps.next_run(spec, runs)) is not None:
        run.state = sweeps.RunState.finished
        runs.append(run)
    assert sorted(r.config["mixture.index"]["value"] for r in runs) == list(range(12))


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
    assert sweeps.schema_violations_from_proposed_config(back) == []
    assert agent_argv(back, {"mixture.index": 3})[-1] == "mixture.index=3"
