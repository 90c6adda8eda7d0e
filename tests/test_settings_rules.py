"""Every enum-like and ranged setting of every command is checked when the config is composed.

The big table composes each command's config with one wrong value (as the command line would
give it) and runs the command's rules on it: each row must fail with one line naming the key,
in well under 2 s. tests/faults/test_settings_faults.py runs a handful of the same through the
real commands (exit 2, nothing written).
"""

from __future__ import annotations

import dataclasses
import time
import typing

import pytest
from hydra import initialize_config_module

from regmix.errors import SettingsError
from regmix.hydra_conf import CONF_PACKAGE, VERSION_BASE, compose
from regmix.settings_check import OneOf, Range, Relation, check, load_rules, problems

#: command -> (its primary config's rule table, its schema)
APPS = {
    "train": "regmix.settings_rules.TRAIN_APP",
    "prepare": "regmix.settings_rules.PREPARE_APP",
    "sample": "regmix.settings_rules.SAMPLE_APP",
    "sweep": "regmix.settings_rules.SWEEP_APP",
    "fit": "analysis.settings_rules.FIT_APP",
    "propose": "analysis.settings_rules.PROPOSE_APP",
    "demo": "regmix.demo.settings_rules.DEMO_APP",
}


def _schemas():
    from analysis.config import FitAppConfig
    from analysis.propose_config import ProposeAppConfig
    from regmix.config import SampleAppConfig, SweepAppConfig, TrainAppConfig
    from regmix.corpus.config import PrepareAppConfig
    from regmix.demo.config import DemoConfig

    return {"train": TrainAppConfig, "prepare": PrepareAppConfig, "sample": SampleAppConfig,
            "sweep": SweepAppConfig, "fit": FitAppConfig, "propose": ProposeAppConfig, "demo": DemoConfig}


@pytest.fixture(scope="module")
def hydra():
    from analysis.config import register_fit_configs
    from analysis.propose_config import register_propose_configs
    from regmix.demo.config import register_demo_config

    register_demo_config()
    register_fit_configs()
    register_propose_configs()
    with initialize_config_module(config_module=CONF_PACKAGE, version_base=VERSION_BASE):
        yield


def _bad_values(rule) -> list[str]:
    """Command-line values that break `rule` (one per broken edge)."""
    if isinstance(rule, OneOf):
        return ["[nonsense]" if rule.key.endswith(".compare") else "nonsense"]
    if isinstance(rule, Range):
        out = []
        if rule.low is not None:
            out.append(str(rule.low if rule.low_open else rule.low - 1))
        if rule.high is not None:
            out.append(str(rule.high if rule.high_open else rule.high + 1))
        return out
    return ["gpu"]  # Matches: the device rule


#: Where the demo mounts the settings of the commands it runs.
_DEMO_MOUNTS = {"proxy_train.": "train.", "target_train.": "train.", "proxy_model.": "model.",
                "target_model.": "model.", "fit.": ""}


def _shared_key(app: str, key: str) -> str:
    if app == "demo":
        for mount, plain in _DEMO_MOUNTS.items():
            if key.startswith(mount):
                return plain + key[len(mount):]
    return key


def _table_rows():
    """(command, override) for every single-key rule. A section that several commands share
    (the fit's regressors in regmix-propose, the trainer's settings in the demo) is tried in
    the first command that has it: the same rule objects check it in the others, and the
    relation rows below try the demo's mounts."""
    seen: set[tuple[str, str]] = set()
    rows = []
    for app, path in APPS.items():
        for rule in load_rules(path):
            if isinstance(rule, Relation):
                continue
            for value in _bad_values(rule):
                shared = (_shared_key(app, rule.key), value)
                if shared in seen:
                    continue
                seen.add(shared)
                rows.append(pytest.param(app, f"{rule.key}={value}", id=f"{app}:{rule.key}={value}"))
    return rows


#: Rules over several settings, one breaking override set each.
RELATION_ROWS = [
    ("train", ["train.tokens=100", "train.batch_size=8", "train.seq_len=64"], "train.tokens"),
    ("train", ["train.batch_size=8", "train.micro_batch_size=3"], "train.batch_size"),
    ("train", ["model.d_model=66", "model.n_heads=4"], "model.d_model"),
    ("train", ["train.seq_len=4096", "model.max_seq_len=2048"], "train.seq_len"),
    ("train", ["eval.seq_len=4096", "model.max_seq_len=2048"], "eval.seq_len"),
    ("sample", ["sampler.min_strength=2", "sampler.max_strength=1"], "sampler.min_strength"),
    ("sample", ["sampler.grid=0.3"], "sampler.grid"),
    ("fit", ["simulation.top_k=10", "simulation.n_candidates=5"], "simulation.top_k"),
    ("fit", ["regressor.compare=[]"], "regressor.compare"),
    ("fit", ["regressor.compare=[ridge]", "regressor.drive=lightgbm"], "regressor.drive"),
    ("fit", ["regressor.ridge.alpha_min=10", "regressor.ridge.alpha_max=1"], "regressor.ridge.alpha_min"),
    ("fit", ["source.wandb.retry_wait_s=10", "source.wandb.retry_wait_max_s=1"], "source.wandb.retry_wait_s"),
    ("propose", ["k=40", "n_candidates=20"], "k=40"),
    ("demo", ["proxy_train.batch_size=8", "proxy_train.micro_batch_size=3"], "proxy_train.batch_size"),
    ("demo", ["fit.simulation.top_k=10", "fit.simulation.n_candidates=5"], "fit.simulation.top_k"),
]


def _fails_fast(app: str, overrides: list[str], key: str) -> str:
    start = time.perf_counter()
    cfg = compose(app, overrides)
    with pytest.raises(SettingsError) as info:
        check(cfg, load_rules(APPS[app]))
    wall = time.perf_counter() - start
    line = str(info.value)
    assert "\n" not in line
    assert key in line, line
    assert wall < 2.0, f"{overrides}: {wall:.2f} s"
    return line


@pytest.mark.parametrize(("app", "override"), _table_rows())
def test_a_wrong_value_of_every_setting_fails_in_one_line_within_2s(hydra, app, override):
    key, _, value = override.partition("=")
    line = _fails_fast(app, [override], f"{key}=")
    assert "use" in line  # names what is valid


@pytest.mark.parametrize(("app", "overrides", "key"), RELATION_ROWS, ids=[" ".join(r[1]) for r in RELATION_ROWS])
def test_settings_that_do_not_fit_together_fail_in_one_line_within_2s(hydra, app, overrides, key):
    _fails_fast(app, overrides, key)


def test_the_bad_values_the_issue_names_are_refused_with_the_valid_ones(hydra):
    cases = {
        ("train", "train.schedule=cosin"): "use one of: constant, cosine",
        ("train", "train.precision=fp16"): "use one of: auto, fp32, bf16",
        ("train", "train.log_every=0"): ">= 1",
        ("train", "train.batch_size=0"): ">= 1",
        ("train", "eval.batch_size=0"): ">= 1",
        ("train", "train.device=gpu"): "cuda:<n>",
        ("train", "train.threads=-1"): ">= 0",
        ("fit", "simulation.n_candidates=-5"): "simulation.n_candidates=-5 is out of range; use a number >= 1 (the paper: 1,000,000)",
        ("propose", "simulation.n_candidates=-5"): "simulation.n_candidates=-5 is out of range",
    }
    for (app, override), expected in cases.items():
        line = _fails_fast(app, [override], override.split("=")[0])
        assert expected in line, override
        assert "more bad setting" not in line, line  # a relation with top_k does not echo it


@pytest.mark.parametrize("app", list(APPS))
def test_the_shipped_configs_pass_their_rules(hydra, app):
    assert problems(compose(app, []), load_rules(APPS[app])) == []


@pytest.mark.parametrize(
    ("app", "overrides"),
    [("train", ["train=paper", "model=1b"]), ("train", ["+experiment=paper_1m"]), ("train", ["+experiment=paper_60m"]),
     ("train", ["train=target", "model=60m"]), ("train", ["data=text"]), ("sample", ["sampler=paper_data"]),
     ("fit", ["source=paper"]), ("fit", ["regressor=quick"]), ("fit", ["regressor=linear", "tracker=offline"]),
     ("propose", ["source=csv"])],
)
def test_the_shipped_presets_pass_their_rules(hydra, app, overrides):
    assert problems(compose(app, overrides), load_rules(APPS[app])) == []


#: Leaf settings of the schemas that take any value of their type (names, paths, free text,
#: or numbers without a range), each with why; every other int, float or str leaf has a rule.
FREE = {
    "name", "dir", "path", "eos_token", "file", "text_field", "domain_field", "table", "project", "entity",
    "group", "job_type", "sweep", "out_dir", "run_name", "spec_dir", "label", "root", "mixtures", "losses",
    "index", "weight_prefix", "weight_suffix", "loss_prefix", "loss_suffix", "model", "corpus", "runs_dir",
    "out", "mixture_dir", "report_dir", "candidates", "candidates_prefix", "base_url", "target", "sweeps_dir",
    "domains_dir",
    # choice.trust_radius: any number; a negative one turns the trust region off.
    "trust_radius",
    # data.seed of a corpus is hashed into its structure (any int); the run seed has a rule.
}


def _settings(schema, prefix=""):
    """Every leaf setting of a config schema: (dotted key, field name, its type without Optional)."""
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        kind = hints[f.name]
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        base = args[0] if typing.get_origin(kind) is typing.Union and len(args) == 1 else kind
        if dataclasses.is_dataclass(base):
            yield from _settings(base, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f.name, base


def _leaves(schema):
    """The numbers and choices of a schema: (dotted key, field name)."""
    return [(key, name) for key, name, base in _settings(schema) if base in (int, float, str)]


@pytest.mark.parametrize("app", list(APPS))
def test_every_number_and_choice_of_every_command_has_a_rule(app):
    ruled = set()
    for rule in load_rules(APPS[app]):
        ruled.update(rule.keys if isinstance(rule, Relation) else [rule.key])
    missing = [key for key, name in _leaves(_schemas()[app]) if key not in ruled and name not in FREE]
    missing = [k for k in missing if not (k.endswith("data.seed") or k == "data.seed")]
    assert missing == [], f"{app}: settings without a rule (add one to its table, or to FREE with why): {missing}"


@pytest.mark.parametrize("app", list(APPS))
def test_every_rule_names_a_setting_of_its_command(app):
    """A rule whose setting was renamed or removed would check nothing: refuse it here."""
    keys = {key for key, _, _ in _settings(_schemas()[app])}
    named = [k for rule in load_rules(APPS[app]) for k in (rule.keys if isinstance(rule, Relation) else [rule.key])]
    assert [k for k in named if k not in keys] == []


def test_the_rules_spell_the_names_as_the_code_does():
    from analysis import settings_rules as rules
    from analysis.acquisition import ACQUISITIONS
    from analysis.fit_load import OBJECTIVES
    from analysis.regressors import REGRESSORS
    from analysis.simulate import AGGREGATES
    from analysis.sources import KINDS
    from regmix.corpus.prepare import SOURCES
    from regmix.settings_rules import DATA
    from regmix.tracking import MODES

    assert set(rules.REGRESSOR_NAMES) == set(REGRESSORS)
    assert set(rules.OBJECTIVES) == set(OBJECTIVES)
    assert set(rules.AGGREGATES) == set(AGGREGATES)
    assert set(rules.ACQUISITIONS) == set(ACQUISITIONS)
    assert set(rules.SOURCE_KINDS) == set(KINDS)
    assert set(rules.TRACKER_MODES) == set(MODES)
    assert set(next(r.values for r in DATA if r.key == "source")) == set(SOURCES)


def test_a_swept_value_is_checked_before_the_multirun_starts():
    from regmix.settings_check import check_value

    rules = load_rules(APPS["train"])
    check_value("train.lr", 0.001, rules)
    with pytest.raises(SettingsError, match=r"train.lr=-1 is out of range"):
        check_value("train.lr", -1, rules)
