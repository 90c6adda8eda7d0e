"""Every file under conf/ composes: primaries, group entries, experiments and launchers.

Each config is composed the way its command composes it (the shipped `pkg://regmix.conf`) and
turned into its typed schema, so a typo or a stale key in any YAML fails here.
"""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from analysis.config import FitAppConfig, register_fit_configs
from analysis.propose_config import ProposeAppConfig, register_propose_configs
from regmix.config import SampleAppConfig, SweepAppConfig, TrainAppConfig, register_configs
from regmix.corpus.config import PrepareAppConfig
from regmix.demo.config import DemoConfig, register_demo_config
from regmix.hydra_conf import compose, shipped_conf_dir

PRIMARIES = {
    "train": TrainAppConfig,
    "sample": SampleAppConfig,
    "prepare": PrepareAppConfig,
    "sweep": SweepAppConfig,
    "fit": FitAppConfig,
    "demo": DemoConfig,
    "propose": ProposeAppConfig,
}
#: group folder -> (primary that composes it, how an entry is chosen)
GROUPS = {
    "model": ("train", "model={}"),
    "train": ("train", "train={}"),
    "data": ("train", "data={}"),
    "mixture": ("train", "mixture={}"),
    "tracker": ("train", "tracker={}"),
    "experiment": ("train", "+experiment={}"),
    "sampler": ("sample", "sampler={}"),
    "source": ("fit", "source={}"),
    "fit_source": ("fit", "source={}"),  # regmix-fit adds fit_source/<source> to source=<source>
    "regressor": ("fit", "regressor={}"),
    "hydra/launcher": ("train", "hydra/launcher={}"),
}
#: Files that are not chosen by a group: the primaries and the shared Hydra settings (every
#: primary includes it).
ROOT_FILES = {f"{name}.yaml" for name in PRIMARIES} | {"hydra_shared.yaml"}


def _register() -> None:
    register_configs()
    register_fit_configs()
    register_propose_configs()
    register_demo_config()


def _shipped() -> list[str]:
    root = shipped_conf_dir()
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.yaml"))


def _case(path: str) -> tuple[str, list[str]]:
    if path in ROOT_FILES:
        return (path[: -len(".yaml")] if path != "hydra_shared.yaml" else "train"), []
    group, _, file = path.rpartition("/")
    primary, pattern = GROUPS[group]
    return primary, [pattern.format(file[: -len(".yaml")])]


def test_every_file_is_covered():
    """A new group folder needs a line in GROUPS, so that its files are composed below."""
    files = _shipped()
    assert "train.yaml" in files and "model/tiny.yaml" in files
    uncovered = [f for f in files if f not in ROOT_FILES and f.rpartition("/")[0] not in GROUPS]
    assert uncovered == []


@pytest.mark.parametrize("path", _shipped())
def test_config_file_composes_into_its_schema(path):
    _register()
    primary, overrides = _case(path)
    cfg = compose(primary, overrides, return_hydra_config=path.startswith("hydra/"))
    if path.startswith("hydra/"):
        assert cfg.hydra.launcher._target_.startswith("hydra_plugins.")
        return
    assert OmegaConf.select(cfg, "hydra") is None
    app = OmegaConf.to_object(cfg)
    assert isinstance(app, PRIMARIES[primary])
    if path.startswith("model/"):
        assert app.model.name == path[len("model/") : -len(".yaml")]


def test_the_demo_composes_its_presets_from_conf():
    _register()
    demo = OmegaConf.to_object(compose("demo"))
    tiny = OmegaConf.to_object(compose("train", ["model=tiny", "train=tiny"]))
    small = OmegaConf.to_object(compose("train", ["model=small", "train=demo_target"]))
    assert (demo.proxy_model, demo.proxy_train) == (tiny.model, tiny.train)
    assert (demo.target_model, demo.target_train) == (small.model, small.train)
    assert demo.target_train.schedule == "cosine" and demo.proxy_model.name == "tiny"


def test_train_paper_is_the_schema_default():
    """train=paper restates nothing: the paper's recipe is TrainConfig's defaults."""
    from regmix.config import TrainConfig

    _register()
    app = OmegaConf.to_object(compose("train", ["train=paper"]))
    assert app.train == TrainConfig()
    assert app.train.tokens == 512 * 2048 * 1000 and app.train.lr == 4e-4


def test_the_working_directory_conf_is_on_the_search_path(tmp_path, monkeypatch):
    """An emitted mixture in ./conf/mixture of the directory a command runs in is composable,
    and regmix-fit's default mixture_dir is that folder (never the installed package)."""
    from analysis.emit import default_mixture_dir

    _register()
    monkeypatch.chdir(tmp_path)
    assert default_mixture_dir() == tmp_path.joinpath("conf", "mixture").relative_to(tmp_path)
    (tmp_path / "conf" / "mixture").mkdir(parents=True)
    (tmp_path / "conf" / "mixture" / "mine.yaml").write_text(
        "name: mine\nindex: null\ntable: null\nweights: {a: 0.25, b: 0.75}\n"
    )
    app = OmegaConf.to_object(compose("train", ["mixture=mine"]))
    assert app.mixture.name == "mine" and dict(app.mixture.weights) == {"a": 0.25, "b": 0.75}
    assert not (shipped_conf_dir() / "mixture" / "mine.yaml").exists()


@pytest.mark.parametrize("source", sorted(p.stem for p in (shipped_conf_dir() / "source").glob("*.yaml")))
def test_every_source_preset_serves_fit_and_propose(source):
    """regmix-propose composes every source preset regmix-fit does; fit-only settings (the paper's
    test set and recipe) reach regmix-fit alone, through fit_source/<source>."""
    _register()
    fit = OmegaConf.to_object(compose("fit", [f"source={source}"]))
    propose = OmegaConf.to_object(compose("propose", [f"source={source}"]))
    assert fit.source == propose.source and fit.target == propose.target
    if source == "paper":
        assert fit.test.mixtures == "test_mixture_1m.csv" and fit.choice.objective == "driver"
        assert propose.simulation.prior == fit.simulation.prior and propose.target == "pile_cc"
