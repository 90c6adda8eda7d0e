"""`data.domains_dir`: a folder of domains (subfolders, or RegMix's `<domain>-<N>-<id>.jsonl` files)."""

from __future__ import annotations

import json

import pytest

from regmix.corpus.config import DataConfig
from regmix.corpus.layout import LayoutError, domain_of_file, domains_in_folder, expand_domains_dir
from regmix.corpus.prepare import prepare_corpus
from regmix.corpus.text import file_format


def _jsonl(path, docs):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))


@pytest.fixture()
def regmix_tree(tmp_path):
    """RegMix's released layout (train/<domain>-<N>-<id>.jsonl) beside subfolders of domain-N.jsonl."""
    root = tmp_path / "train"
    _jsonl(root / "pile_cc-0-1203.jsonl", [f"web page {i} about rivers" for i in range(10)])
    _jsonl(root / "pile_cc-1-877.jsonl", [f"web page {i} about stones" for i in range(10, 20)])
    _jsonl(root / "arxiv" / "domain-0.jsonl", [f"we prove lemma {i}" for i in range(8)])
    _jsonl(root / "arxiv" / "domain-1.jsonl", [f"we prove theorem {i}" for i in range(8)])
    (root / "arxiv" / "domain-1.jsonl.sha256").write_text("ab12")  # not readable: skipped
    _jsonl(root / "github" / "nested" / "domain-0.jsonl", [f"def f{i}(): return {i}" for i in range(9)])
    (root / ".cache").mkdir()
    _jsonl(root / ".cache" / "x-0.jsonl", ["hidden"])
    return root


def test_domain_of_a_loose_file():
    assert domain_of_file("pile_cc-29-14142175.jsonl") == "pile_cc"
    assert domain_of_file("domain-3.jsonl") == "domain"
    assert domain_of_file("wiki-en.jsonl") == "wiki-en"
    assert domain_of_file("books.txt") == "books"


def test_subfolders_and_shard_named_files_are_the_domains(regmix_tree):
    paths = domains_in_folder(regmix_tree, lambda p: file_format(p) is not None)
    assert paths == {
        "arxiv": [str(regmix_tree / "arxiv")],
        "github": [str(regmix_tree / "github")],
        "pile_cc": [str(regmix_tree / "pile_cc-0-1203.jsonl"), str(regmix_tree / "pile_cc-1-877.jsonl")],
    }


def test_a_domains_dir_prepares_like_the_same_paths_listed_by_hand(regmix_tree, tmp_path):
    by_dir = prepare_corpus(DataConfig(name="r", dir=str(tmp_path / "a"), source="text", domains_dir=str(regmix_tree)))
    listed = expand_domains_dir(DataConfig(source="text", domains_dir=str(regmix_tree))).paths
    by_hand = prepare_corpus(DataConfig(name="r", dir=str(tmp_path / "b"), source="text", paths=listed))
    assert list(by_dir.domains) == ["arxiv", "github", "pile_cc"]
    assert by_dir.content_hash == by_hand.content_hash
    assert by_dir.domains["pile_cc"].train_tokens + by_dir.domains["pile_cc"].val_tokens == sum(
        len(f"web page {i} about {'rivers' if i < 10 else 'stones'}") + 1 for i in range(20))


@pytest.mark.parametrize(
    "make, kwargs, message",
    [
        (lambda root: None, {"paths": {"x": ["y"]}}, "drop data.paths"),
        (lambda root: None, {"domains_dir": "no/such/folder"}, "is not a folder"),
        (lambda root: (root / "empty").mkdir(), {}, "holds no readable file"),
        (lambda root: _jsonl(root / "bad name" / "a-0.jsonl", ["x"]), {}, "not usable as a folder name"),
    ],
    ids=["with-paths", "missing", "empty", "bad-domain-name"],
)
def test_bad_domains_dirs_are_user_errors(tmp_path, make, kwargs, message):
    root = tmp_path / "domains"
    root.mkdir()
    make(root)
    cfg = DataConfig(name="r", dir=str(tmp_path / "c"), source="text", **{"domains_dir": str(root), **kwargs})
    with pytest.raises(ValueError, match=message):
        prepare_corpus(cfg)


def test_domains_dir_is_not_read_by_the_synthetic_source(tmp_path):
    with pytest.raises(LayoutError, match="data.source=text or pretokenized"):
        expand_domains_dir(DataConfig(domains_dir=str(tmp_path)))
