"""The embedded synthetic corpus: deterministic, learnable, with a known target blend."""

from __future__ import annotations

import math

import numpy as np
import pytest

from regmix.corpus.config import DataConfig, SyntheticConfig
from regmix.corpus.prepare import prepare_corpus
from regmix.corpus.store import TARGET_ROLE, open_shard, read_meta
from regmix.corpus.synthetic import (
    DOMAINS,
    EOS_ID,
    SHARP_SYMBOLS,
    TARGET_BLEND,
    TARGET_NAME,
    build_structure,
    generate_synthetic,
    ngram_cross_entropy,
)

SMALL = SyntheticConfig(train_scale=0.02, val_tokens=4096)


@pytest.fixture(scope="module")
def full_corpus():
    """The default-sized corpus, in memory (a couple of seconds)."""
    return generate_synthetic(SyntheticConfig(), seed=0)


def _prepare(path, seed=0, synthetic=SMALL):
    return prepare_corpus(DataConfig(dir=str(path), seed=seed, synthetic=synthetic))


def test_same_seed_same_content_and_other_seed_differs(tmp_path):
    first = _prepare(tmp_path / "a", seed=3)
    again = _prepare(tmp_path / "b", seed=3)
    other = _prepare(tmp_path / "c", seed=4)
    assert first.content_hash == again.content_hash
    assert first.content_hash != other.content_hash
    shard = ("words", "train.bin")
    assert (tmp_path / "a").joinpath(*shard).read_bytes() == (tmp_path / "b").joinpath(*shard).read_bytes()


def test_meta_has_domains_roles_blend_and_exact_sizes(tmp_path):
    meta = _prepare(tmp_path)
    assert read_meta(tmp_path).content_hash == meta.content_hash
    assert meta.train_domains == list(DOMAINS)
    assert len(meta.train_domains) >= 6
    assert meta.domains[TARGET_NAME].role == TARGET_ROLE
    assert meta.domains[TARGET_NAME].train_tokens == 0
    assert meta.eval_domains == list(DOMAINS) + [TARGET_NAME]
    assert meta.target_blend == {TARGET_NAME: TARGET_BLEND}
    assert sum(TARGET_BLEND.values()) == pytest.approx(1.0)
    assert set(TARGET_BLEND) <= set(meta.train_domains)
    for name, spec in DOMAINS.items():
        assert meta.domains[name].train_tokens == round(spec.train_tokens * SMALL.train_scale)
        assert meta.domains[name].val_tokens == SMALL.val_tokens
        assert meta.domains[name].description
    assert meta.tokenizer["kind"] == "bytes" and meta.vocab_size == 256 and meta.tokenizer["eos_id"] == EOS_ID
    assert meta.source["seed"] == 0 and meta.source["synthetic"]["train_scale"] == SMALL.train_scale
    # Shards are readable through the store and hold byte ids only.
    ids = open_shard(tmp_path, meta, "arith", "train")
    assert ids.max() < 256


def test_prior_does_not_favour_the_target_domains(full_corpus):
    train = {d: s["train"].size for d, s in full_corpus.splits.items() if d != TARGET_NAME}
    total = sum(train.values())
    target_share = sum(train[d] for d in TARGET_BLEND) / total
    assert 0.08 < target_share < 0.16  # ~12%: the prior is far from the answer
    # Each target domain's prior stays below uniform, so RegMix must move weight toward it.
    assert all(train[d] / total < 1 / len(train) for d in TARGET_BLEND)


def test_domains_are_learnable_and_differ_in_entropy(full_corpus):
    log_vocab = math.log(256)
    bigram = {}
    for name in DOMAINS:
        split = full_corpus.splits[name]
        unigram = ngram_cross_entropy(split["train"], split["val"], order=0)
        bigram[name] = ngram_cross_entropy(split["train"], split["val"], order=1)
        assert unigram < log_vocab - 0.8, name  # far below a uniform guess over 256 bytes
        assert bigram[name] <= unigram + 0.05, name
    print({d: round(h, 2) for d, h in bigram.items()})
    assert max(bigram.values()) - min(bigram.values()) > 3.0  # from ~0.7 to ~4.5 nats
    # Every domain of the target has sequential structure a small model can pick up: its
    # bigram entropy is clearly below a uniform guess and below the hard distractor's.
    for name in TARGET_BLEND:
        assert bigram[name] < 3.0 and bigram[name] < bigram["markov2"] - 1.0, name


def test_sharp_and_soft_chains_share_rows_and_wide_shares_markov2_alphabet():
    structure = build_structure(seed=0)
    assert np.array_equal(structure.sharp.argmax(axis=1), structure.soft.argmax(axis=1))
    assert np.allclose(structure.soft.sum(axis=1), 1.0) and np.allclose(structure.second.sum(axis=1), 1.0)
    assert len(SHARP_SYMBOLS) < structure.wide.shape[0]


def test_target_prefix_holds_the_blend(full_corpus):
    """The eval slice (first 64k tokens of val) already has the 0.5/0.3/0.2 blend."""
    ids = full_corpus.splits[TARGET_NAME]["val"][:65536]
    docs = np.split(ids, np.flatnonzero(ids == EOS_ID) + 1)
    tokens = {name: 0 for name in TARGET_BLEND}
    for doc in docs:
        if doc.size == 0 or doc[0] == EOS_ID:
            continue
        first = int(doc[0])
        kind = "markov_soft" if first >= 128 else "arith" if chr(first).isdigit() else "words"
        tokens[kind] += doc.size
    total = sum(tokens.values())
    for name, share in TARGET_BLEND.items():
        assert tokens[name] / total == pytest.approx(share, abs=0.02), (name, tokens)


def test_target_documents_are_fresh_not_copied_from_train(full_corpus):
    target = full_corpus.splits[TARGET_NAME]["val"].tobytes()
    train_words = full_corpus.splits["words"]["train"].tobytes()
    # A 200-byte window of the target's first words document does not occur in the train split.
    first_doc = target.split(bytes([EOS_ID]))[0]
    assert len(first_doc) > 50
    assert first_doc[:200] not in train_words


def test_unknown_domain_override_and_zero_sizes_are_user_errors():
    with pytest.raises(ValueError, match="unknown domain"):
        generate_synthetic(SyntheticConfig(train_tokens={"nope": 10}), seed=0)
    with pytest.raises(ValueError, match="train_scale"):
        generate_synthetic(SyntheticConfig(train_scale=0.0), seed=0)
    with pytest.raises(ValueError, match="val_tokens"):
        generate_synthetic(SyntheticConfig(val_tokens=0), seed=0)


def test_train_token_overrides_reshape_the_prior():
    cfg = SyntheticConfig(train_scale=0.01, train_tokens={"words": 2_000_000}, val_tokens=2048)
    corpus = generate_synthetic(cfg, seed=0)
    assert corpus.splits["words"]["train"].size == 20_000
    assert corpus.splits["arith"]["train"].size == 2_000
