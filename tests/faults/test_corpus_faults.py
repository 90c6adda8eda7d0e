"""The corpus under faults: a hostile meta, tampered shards, a full disk, read-only folders,
bad text files, evaluation slices that do not fit, and one giant line for the BPE trainer."""

from __future__ import annotations

import json
import resource
from pathlib import Path

import numpy as np

from regmix.corpus.config import TokenizerConfig
from regmix.corpus.store import read_meta
from regmix.corpus.tokenize import build_tokenizer

from .helpers import QUICK, cli, read_only, record, scrubbed, snapshot, weights_arg

# A synthetic corpus of ~0.3M tokens: prepare takes a second or two.
SMALL_SYNTHETIC = ["data.synthetic.train_scale=0.05", "data.synthetic.val_tokens=4096"]


def prepare(tmp_path: Path, *extra: str, **kwargs):
    return cli("regmix-prepare", "data.dir=corpus", *SMALL_SYNTHETIC, *extra, cwd=tmp_path, **kwargs)


def test_overwrite_never_deletes_folders_a_meta_names_outside_the_corpus(tmp_path, bad_input):
    done = prepare(tmp_path)
    assert done.returncode == 0, done.stderr
    victims = [tmp_path / "victim", tmp_path / "elsewhere" / "abs"]
    for victim in victims:
        victim.mkdir(parents=True)
        (victim / "keep.txt").write_text("not regmix's")
    meta_path = tmp_path / "corpus" / "meta.json"
    meta = json.loads(meta_path.read_text())
    first = next(iter(meta["domains"].values()))
    meta["domains"] = {"../victim": first, str(victims[1]): first, **meta["domains"]}
    meta_path.write_text(json.dumps(meta))
    before = snapshot(tmp_path / "corpus")
    done = prepare(tmp_path, "data.overwrite=true")
    message = bad_input("data.overwrite=true on a corpus whose meta.json names ../victim as a domain", done)
    assert "'../victim'" in message and "nothing was removed" in message
    for victim in victims:
        assert (victim / "keep.txt").read_text() == "not regmix's"
    assert snapshot(tmp_path / "corpus") == before


def test_overwrite_keeps_files_of_the_users_inside_domain_folders(tmp_path):
    assert prepare(tmp_path).returncode == 0
    domain = read_meta(tmp_path / "corpus").train_domains[0]
    note = tmp_path / "corpus" / domain / "notes.txt"
    note.write_text("mine")
    done = prepare(tmp_path, "data.seed=1", "data.overwrite=true")
    assert done.returncode == 0, done.stderr
    assert note.read_text() == "mine" and read_meta(tmp_path / "corpus").source["seed"] == 1


def _tamper(shard: Path) -> None:
    data = np.fromfile(shard, dtype=np.uint8)
    np.roll(data, 7).tofile(shard)  # the same size, other bytes


def test_tampered_shards_are_caught_by_prepare_and_train_and_a_rebuild_fixes_them(tmp_path, bad_input):
    assert prepare(tmp_path).returncode == 0
    corpus = tmp_path / "corpus"
    domain = read_meta(corpus).train_domains[1]
    _tamper(corpus / domain / "train.bin")

    again = prepare(tmp_path)
    message = bad_input("regmix-prepare again after a shard was overwritten with other bytes of the same size", again)
    assert "shards changed since it was prepared" in message and "data.overwrite=true" in message

    mix = weights_arg(**{d: 1 / 8 for d in read_meta(corpus).train_domains})
    done = cli("regmix-train", "sweep=f", "data.dir=corpus", mix, "run_name=r", *QUICK, cwd=tmp_path)
    message = bad_input("regmix-train on a corpus whose shard was overwritten after prepare", done)
    assert f"{domain}/train no longer match" in message and "data.overwrite=true" in message
    assert record(tmp_path / "runs" / "f" / "r") is None

    rebuilt = prepare(tmp_path, "data.overwrite=true")
    assert rebuilt.returncode == 0, rebuilt.stderr
    done = cli("regmix-train", "sweep=f", "data.dir=corpus", mix, "run_name=r", *QUICK, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert record(tmp_path / "runs" / "f" / "r")["corpus"]["content_hash"] == read_meta(corpus).content_hash


def test_full_disk_during_prepare_leaves_no_corpus_and_a_rerun_completes(tmp_path, bad_input):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))  # bytes; shards are ~40-75 kB

    done = prepare(tmp_path, preexec_fn=limit)
    message = bad_input("disk full (file-size limit) while regmix-prepare writes shards", scrubbed(done, tmp_path))
    assert ".bin" in message and "free disk space" in message
    assert not (tmp_path / "corpus" / "meta.json").exists()  # nothing looks finished
    again = prepare(tmp_path)
    assert again.returncode == 0, again.stderr
    assert read_meta(tmp_path / "corpus").train_domains


def test_prepare_into_a_read_only_folder_is_one_line(tmp_path, bad_input):
    parent = tmp_path / "ro"
    parent.mkdir()
    with read_only(parent):
        done = cli("regmix-prepare", "data.dir=ro/corpus", *SMALL_SYNTHETIC, cwd=tmp_path)
        message = bad_input("regmix-prepare into a read-only folder", done)
        assert "ro/corpus" in message and "writable" in message
        assert list(parent.iterdir()) == []


def test_non_utf8_jsonl_names_the_file_and_line(tmp_path, bad_input):
    path = tmp_path / "docs.jsonl"
    path.write_bytes(b'{"text": "fine", "domain": "a"}\n{"text": "caf\xe9", "domain": "b"}\n')
    done = cli("regmix-prepare", "data=text", "data.file=docs.jsonl", "data.dir=corpus", cwd=tmp_path)
    message = bad_input("a .jsonl corpus file with a non-UTF-8 line", done)
    assert "docs.jsonl line 2 is not UTF-8" in message


def _text_domains(root: Path, sizes: dict[str, int]) -> list[str]:
    args = []
    rng = np.random.default_rng(0)
    words = np.array(["alpha", "beta", "gamma", "delta", "eps"])
    for domain, n_docs in sizes.items():
        folder = root / domain
        folder.mkdir()
        for i in range(n_docs):
            (folder / f"{i}.txt").write_text(" ".join(rng.choice(words, 60)))
        args.append(f"+data.paths.{domain}=[{folder}]")
    return args


def test_prepare_says_for_every_domain_whether_the_eval_slice_fits(tmp_path):
    args = _text_domains(tmp_path, {"big": 400, "tiny": 40, "mid": 120})
    done = cli("regmix-prepare", "data=text", "data.dir=corpus", "data.val_fraction=0.1", *args,
               "eval.tokens_per_domain=4000", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.split()[:1] in (["big"], ["tiny"], ["mid"])}
    assert "fits" in rows["big"] and "too short" in rows["tiny"] and "too short" in rows["mid"]
    warning = next(line for line in done.stdout.splitlines() if line.startswith("warning: eval.tokens_per_domain"))
    assert "tiny (" in warning and "mid (" in warning and "big (" not in warning
    assert "data.val_fraction" in warning


def test_bpe_trainer_reads_a_bounded_start_of_each_document(tmp_path):
    """One giant line trains on its first `train_chars_per_document` characters only: a word
    repeated beyond the cap never becomes a token (before the cap it always does)."""
    head = " ".join(["plain words here"] * 2_000)  # ~34k characters
    tail = " zqxvj" * 50_000  # 300k characters, beyond the cap
    cfg = TokenizerConfig(kind="bpe", vocab_size=300, train_chars_per_document=len(head))
    tokenizer = build_tokenizer(cfg, [head + tail])
    vocab = tokenizer.tokenizer.get_vocab()
    assert not any("zq" in token for token in vocab)
    uncapped = build_tokenizer(TokenizerConfig(kind="bpe", vocab_size=300, train_chars_per_document=10**9),
                               [head + tail])
    assert any("zq" in token for token in uncapped.tokenizer.get_vocab())


def test_bpe_prepare_says_what_it_is_doing(tmp_path):
    args = _text_domains(tmp_path, {"one": 30, "two": 30})
    done = cli("regmix-prepare", "data=text", "data.dir=corpus", *args, "data.tokenizer.kind=bpe",
               "data.tokenizer.vocab_size=300", "eval.tokens_per_domain=100", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout + done.stderr
    assert "training a byte-level BPE (vocab 300) on" in out
    assert "encoding one:" in out and "encoding two:" in out
