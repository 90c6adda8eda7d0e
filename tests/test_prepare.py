"""`regmix-prepare`: overwrite rules, the CLI end to end, and every shipped data config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from regmix.hydra_conf import CONF_PACKAGE, shipped_conf_dir
from regmix.config import register_configs as register_prepare_config
from regmix.corpus.config import DataConfig, PrepareAppConfig, SyntheticConfig, TokenizerConfig
from regmix.corpus.prepare import PrepareError, format_domain_table, prepare_corpus, resolve_data_config
from regmix.corpus.store import read_meta

SMALL = SyntheticConfig(train_scale=0.02, val_tokens=4096)
DATA_CONFIGS = sorted(p.stem for p in (shipped_conf_dir() / "data").glob("*.yaml"))


def _cfg(path, **kwargs) -> DataConfig:
    return DataConfig(dir=str(path), synthetic=kwargs.pop("synthetic", SMALL), **kwargs)


def test_same_settings_is_a_no_op(tmp_path, caplog):
    first = prepare_corpus(_cfg(tmp_path))
    meta_file = tmp_path / "meta.json"
    before = meta_file.stat().st_mtime_ns
    with caplog.at_level("INFO"):
        again = prepare_corpus(_cfg(tmp_path))
    assert again.content_hash == first.content_hash
    assert meta_file.stat().st_mtime_ns == before  # nothing rewritten
    assert "nothing to do" in caplog.text


def test_other_settings_are_refused_unless_overwrite(tmp_path):
    first = prepare_corpus(_cfg(tmp_path, seed=0))
    with pytest.raises(PrepareError, match=r"differ in: seed.*data.overwrite=true"):
        prepare_corpus(_cfg(tmp_path, seed=1))
    assert read_meta(tmp_path).content_hash == first.content_hash  # untouched
    rebuilt = prepare_corpus(_cfg(tmp_path, seed=1, overwrite=True))
    assert rebuilt.content_hash != first.content_hash
    assert read_meta(tmp_path).source["seed"] == 1


def test_overwrite_removes_domains_of_the_old_corpus(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("alpha\n\nbeta\n\ngamma\n\ndelta")
    corpus = tmp_path / "corpus"
    text_cfg = DataConfig(
        dir=str(corpus), source="text", paths={"prose": [str(tmp_path / "docs")]}, txt_documents="blank_line"
    )
    prepare_corpus(text_cfg)
    assert (corpus / "prose").is_dir()
    prepare_corpus(_cfg(corpus, overwrite=True))
    assert not (corpus / "prose").exists()
    assert "prose" not in read_meta(corpus).domains


def test_a_folder_that_is_not_a_corpus_is_not_written_into(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(PrepareError, match="not a finished corpus"):
        prepare_corpus(_cfg(tmp_path))
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_damaged_shard_is_rebuilt_only_with_overwrite(tmp_path):
    prepare_corpus(_cfg(tmp_path))
    (tmp_path / "zipf" / "train.bin").write_bytes(b"\x01\x00")
    with pytest.raises(PrepareError, match="overwrite"):
        prepare_corpus(_cfg(tmp_path))
    meta = prepare_corpus(_cfg(tmp_path, overwrite=True))
    assert (tmp_path / "zipf" / "train.bin").stat().st_size == meta.domains["zipf"].train_tokens * 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"source": "web"}, "unknown data.source='web'"),
        ({"tokenizer": TokenizerConfig(kind="bpe")}, "synthetic corpus is byte-level"),
        ({"tokenizer": TokenizerConfig(kind="sentencepiece")}, "unknown tokenizer kind"),
        ({"source": "text"}, "exactly one of \\+data.paths"),
    ],
)
def test_bad_settings_are_user_errors(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        prepare_corpus(_cfg(tmp_path / "c", **kwargs))
    assert not (tmp_path / "c").exists()  # nothing created before the settings are checked


def test_default_dir_interpolation_is_resolved():
    cfg = resolve_data_config(DataConfig(name="mine"))
    assert cfg.dir == "data/mine"


def test_domain_table_lists_every_domain_and_the_blend(tmp_path):
    meta = prepare_corpus(_cfg(tmp_path))
    table = format_domain_table(meta)
    for domain in meta.domains:
        assert domain in table
    assert "target web_blend = 0.5 words + 0.3 arith + 0.2 markov_soft" in table


@pytest.mark.parametrize("name", DATA_CONFIGS)
def test_every_data_config_composes(name):
    register_prepare_config()
    with initialize_config_module(config_module=CONF_PACKAGE, version_base="1.3"):
        cfg = compose("prepare", overrides=[f"data={name}"])
    app = OmegaConf.to_object(cfg)
    assert isinstance(app, PrepareAppConfig) and isinstance(app.data, DataConfig)
    assert app.data.source in ("synthetic", "text", "pretokenized")
    assert app.data.dir == f"data/{app.data.name}"


def test_shipped_configs_include_synthetic_default_and_text():
    assert {"synthetic", "text"} <= set(DATA_CONFIGS)
    register_prepare_config()
    with initialize_config_module(config_module=CONF_PACKAGE, version_base="1.3"):
        cfg = compose("prepare")
    assert cfg.data.source == "synthetic" and cfg.data.tokenizer.kind == "bytes"


def _prepare_command() -> list[str]:
    script = Path(sys.executable).with_name("regmix-prepare")
    return [str(script)] if script.exists() else [sys.executable, "-m", "regmix.cli.prepare"]


def test_cli_builds_the_default_corpus_without_littering(tmp_path):
    corpus = tmp_path / "corpus"
    result = subprocess.run(
        _prepare_command()
        + [f"data.dir={corpus}", "data.synthetic.train_scale=0.02", "data.synthetic.val_tokens=4096"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    meta = json.loads((corpus / "meta.json").read_text())
    assert meta["target_blend"] == {"web_blend": {"words": 0.5, "arith": 0.3, "markov_soft": 0.2}}
    assert str(corpus) in result.stdout and "markov_sharp" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]  # no outputs/ folder


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run(
        _prepare_command() + [f"data.dir={tmp_path / 'corpus'}", "data=text", "+data.paths.code=[no/such/dir]"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: domain 'code': path no/such/dir does not exist")
    assert "Traceback" not in result.stderr
