"""`data.source=text` (txt/jsonl/parquet/csv, per-domain paths or one table) and the tokenizers."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from regmix.corpus.config import DataConfig, TokenizerConfig
from regmix.corpus.prepare import prepare_corpus
from regmix.corpus.store import TARGET_ROLE, open_shard
from regmix.corpus.text import TextSourceError
from regmix.corpus.tokenize import TOKENIZER_FILE, TokenizerError, load_tokenizer_file

PROSE = [f"The {animal} number {i} walks slowly across the wide green field." for i, animal in
         enumerate(["cat", "dog", "horse", "goat", "sheep", "cow", "fox", "owl", "hen", "duck"] * 3)]
CODE = [f"def f{i}(x):\n    return x * {i} + {i * 7}\n" for i in range(30)]


def _decode_bytes(ids: np.ndarray, eos: int = 0) -> list[str]:
    raw = bytes(np.asarray(ids, dtype=np.uint8))
    return [doc.decode("utf-8") for doc in raw.split(bytes([eos]))[:-1]]


@pytest.fixture()
def text_tree(tmp_path):
    """prose as one .txt per document, code as jsonl, a notes folder with blank-line blocks."""
    prose = tmp_path / "prose"
    prose.mkdir()
    for i, doc in enumerate(PROSE):
        (prose / f"{i:02d}.txt").write_text(doc)
    (prose / "image.png").write_bytes(b"\x89PNG")  # skipped inside a folder
    with open(tmp_path / "code.jsonl", "w") as fh:
        for doc in CODE:
            fh.write(json.dumps({"text": doc, "lang": "py"}) + "\n")
    (tmp_path / "notes.md").write_text("\n\n".join(f"note {i}: remember item {i}" for i in range(12)))
    return tmp_path


def _text_cfg(tmp_path, paths, **kwargs) -> DataConfig:
    return DataConfig(name="t", dir=str(tmp_path / "corpus"), source="text", paths=paths, **kwargs)


def test_paths_of_txt_jsonl_and_globs_become_domains(text_tree):
    cfg = _text_cfg(
        text_tree,
        {
            "prose": [str(text_tree / "prose")],
            "code": [str(text_tree / "*.jsonl")],
            "notes": [str(text_tree / "notes.md")],
        },
        val_fraction=0.2,
        txt_documents="blank_line",
    )
    meta = prepare_corpus(cfg)
    assert list(meta.domains) == ["prose", "code", "notes"]
    assert meta.tokenizer == {**meta.tokenizer, "kind": "bytes", "vocab_size": 256, "eos_id": 0}
    corpus = text_tree / "corpus"
    prose_train = _decode_bytes(open_shard(corpus, meta, "prose", "train"))
    prose_val = _decode_bytes(open_shard(corpus, meta, "prose", "val"))
    assert len(prose_val) == 6 and len(prose_train) == 24  # ceil(0.2 * 30) held out
    assert sorted(prose_train + prose_val) == sorted(PROSE)  # every document exactly once
    code = [doc for split in ("train", "val") for doc in _decode_bytes(open_shard(corpus, meta, "code", split))]
    assert sorted(code) == sorted(CODE)
    assert meta.domains["notes"].train_tokens + meta.domains["notes"].val_tokens == sum(
        len(f"note {i}: remember item {i}") + 1 for i in range(12)
    )
    assert meta.source["inputs"]  # input fingerprint recorded


def test_split_is_deterministic_by_seed_and_holds_out_exactly_its_share(tmp_path):
    docs = [f"doc {i}" for i in range(50)]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))

    def val_docs(seed, name):
        cfg = _text_cfg(tmp_path, {"x": [str(tmp_path / "d.jsonl")]}, val_fraction=0.1, seed=seed)
        cfg.dir = str(tmp_path / name)
        meta = prepare_corpus(cfg)
        val = _decode_bytes(open_shard(tmp_path / name, meta, "x", "val"))
        train = _decode_bytes(open_shard(tmp_path / name, meta, "x", "train"))
        assert sorted(train + val) == sorted(docs)
        return val

    a, b, c = val_docs(0, "a"), val_docs(0, "b"), val_docs(1, "c")
    assert a == b and a != c
    assert len(a) == len(c) == 5  # ceil(0.1 * 50)


def test_changed_input_file_is_not_a_no_op(text_tree):
    cfg = _text_cfg(text_tree, {"prose": [str(text_tree / "prose")], "code": [str(text_tree / "code.jsonl")]})
    prepare_corpus(cfg)
    with open(text_tree / "code.jsonl", "a") as fh:
        fh.write(json.dumps({"text": "print('new')"}) + "\n")
    with pytest.raises(ValueError, match="differ in: inputs"):
        prepare_corpus(cfg)


def test_one_file_with_a_domain_column_csv_and_targets(tmp_path):
    import pandas as pd

    rows = [{"body": d, "src": "prose"} for d in PROSE] + [{"body": d, "src": "code"} for d in CODE]
    rows += [{"body": f"held out {i}", "src": "eval_only"} for i in range(5)]
    pd.DataFrame(rows).to_csv(tmp_path / "all.csv", index=False)
    cfg = DataConfig(
        dir=str(tmp_path / "corpus"), source="text", file=str(tmp_path / "all.csv"),
        text_field="body", domain_field="src", targets=["eval_only"],
    )
    meta = prepare_corpus(cfg)
    assert list(meta.domains) == ["code", "eval_only", "prose"]  # sorted domain names
    assert meta.domains["eval_only"].role == TARGET_ROLE and meta.domains["eval_only"].train_tokens == 0
    assert meta.train_domains == ["code", "prose"]
    held_out = _decode_bytes(open_shard(tmp_path / "corpus", meta, "eval_only", "val"))
    assert sorted(held_out) == [f"held out {i}" for i in range(5)]


def test_one_jsonl_file_with_a_domain_field(tmp_path):
    with open(tmp_path / "all.jsonl", "w") as fh:
        for doc in PROSE:
            fh.write(json.dumps({"text": doc, "domain": "prose"}) + "\n")
        for doc in CODE:
            fh.write(json.dumps({"text": doc, "domain": "code"}) + "\n")
    meta = prepare_corpus(DataConfig(dir=str(tmp_path / "c"), source="text", file=str(tmp_path / "all.jsonl")))
    assert meta.train_domains == ["code", "prose"]
    assert meta.domains["prose"].val_tokens > 0


def test_parquet_paths_and_file(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow", exc_type=ImportError)  # absent or built for another numpy
    pd.DataFrame({"text": PROSE}).to_parquet(tmp_path / "prose.parquet")
    domains = ["prose"] * len(PROSE) + ["code"] * len(CODE)
    pd.DataFrame({"text": PROSE + CODE, "domain": domains}).to_parquet(tmp_path / "all.parquet")
    by_paths = prepare_corpus(_text_cfg(tmp_path, {"prose": [str(tmp_path / "prose.parquet")]}))
    prose = by_paths.domains["prose"]
    assert prose.train_tokens + prose.val_tokens == sum(len(d) + 1 for d in PROSE)
    by_file = prepare_corpus(DataConfig(dir=str(tmp_path / "c2"), source="text", file=str(tmp_path / "all.parquet")))
    assert by_file.train_domains == ["code", "prose"]


def test_parquet_without_a_working_pyarrow_is_a_user_error(tmp_path):
    try:
        import pyarrow  # noqa: F401

        pytest.skip("pyarrow works here; test_parquet_paths_and_file covers parquet")
    except ImportError:
        pass
    (tmp_path / "a.parquet").write_bytes(b"PAR1")
    with pytest.raises(TextSourceError, match="needs a pyarrow"):
        prepare_corpus(_text_cfg(tmp_path, {"prose": [str(tmp_path / "a.parquet")]}))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t: {"prose": [str(t / "missing")]}, "path .*missing does not exist"),
        (lambda t: {"prose": [str(t / "*.nothing")]}, "matches no file"),
        (lambda t: {"prose": [str(t / "empty.txt")]}, "domain 'prose' has no documents"),
        (lambda t: {"prose": [str(t / "data.gz")]}, "unknown format of .*data.gz"),
        (lambda t: {"prose": [str(t / "nofield.jsonl")]}, "line 1 has no field 'text'"),
        (lambda t: {"prose": [str(t / "bad.jsonl")]}, "line 2 is not JSON"),
        (lambda t: {"prose": [str(t / "one.txt")]}, "domain 'prose' has 1 document"),
        (lambda t: {"a/b": [str(t / "code.jsonl")]}, "not usable as a folder name"),
        (lambda t: {"prose": [str(t / "blobs")]}, "holds no readable file"),
    ],
)
def test_bad_text_inputs_are_user_errors(text_tree, make, message):
    (text_tree / "empty.txt").write_text("  \n")
    (text_tree / "data.gz").write_bytes(b"\x1f\x8b")
    (text_tree / "nofield.jsonl").write_text(json.dumps({"body": "x"}) + "\n")
    (text_tree / "bad.jsonl").write_text(json.dumps({"text": "x"}) + "\n{oops\n")
    (text_tree / "one.txt").write_text("a single document")
    (text_tree / "blobs").mkdir()
    (text_tree / "blobs" / "x.bin").write_bytes(b"\x00")
    with pytest.raises(TextSourceError, match=message):
        prepare_corpus(_text_cfg(text_tree, make(text_tree)))


def test_bad_file_and_target_settings_are_user_errors(text_tree):
    (text_tree / "nodomain.jsonl").write_text(json.dumps({"text": "x"}) + "\n")
    with pytest.raises(ValueError, match="has no field 'domain'"):
        prepare_corpus(DataConfig(dir=str(text_tree / "c"), source="text", file=str(text_tree / "nodomain.jsonl")))
    with pytest.raises(ValueError, match="data.file .*missing.jsonl does not exist"):
        prepare_corpus(DataConfig(dir=str(text_tree / "c"), source="text", file=str(text_tree / "missing.jsonl")))
    with pytest.raises(ValueError, match="unknown format of data.file"):
        prepare_corpus(DataConfig(dir=str(text_tree / "c"), source="text", file=str(text_tree / "notes.md")))
    with pytest.raises(ValueError, match=r"data.targets names \['web'\]"):
        prepare_corpus(_text_cfg(text_tree, {"code": [str(text_tree / "code.jsonl")]}, targets=["web"]))
    with pytest.raises(ValueError, match="val_fraction=1.0"):
        prepare_corpus(_text_cfg(text_tree, {"code": [str(text_tree / "code.jsonl")]}, val_fraction=1.0))


def test_extra_text_suffixes_read_code_as_plain_text(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i, doc in enumerate(CODE[:5]):
        (src / f"m{i}.py").write_text(doc)
    cfg = _text_cfg(tmp_path, {"code": [str(src)]}, text_suffixes=[".py"])
    meta = prepare_corpus(cfg)
    assert meta.domains["code"].train_tokens + meta.domains["code"].val_tokens == sum(len(d) + 1 for d in CODE[:5])
    with pytest.raises(TextSourceError, match="unknown format"):
        prepare_corpus(_text_cfg(tmp_path, {"code": [str(src / "m0.py")]}, overwrite=True))


def test_bpe_is_trained_on_train_split_and_round_trips_through_kind_file(text_tree):
    paths = {"prose": [str(text_tree / "prose")], "code": [str(text_tree / "code.jsonl")]}
    bpe_cfg = _text_cfg(text_tree, paths, tokenizer=TokenizerConfig(kind="bpe", vocab_size=300))
    meta = prepare_corpus(bpe_cfg)
    corpus = text_tree / "corpus"
    assert meta.tokenizer["kind"] == "bpe" and meta.tokenizer["eos_id"] == 0
    assert 257 <= meta.vocab_size <= 300 and meta.dtype == "uint16"
    tokenizer = load_tokenizer_file(corpus / TOKENIZER_FILE)
    ids = np.asarray(open_shard(corpus, meta, "prose", "train"), dtype=np.int64)
    first_doc = ids[: int(np.flatnonzero(ids == 0)[0])]
    assert tokenizer.tokenizer.decode(first_doc.tolist()) in PROSE
    # BPE compresses: fewer tokens than bytes.
    n_bytes = sum(len(d.encode()) + 1 for d in PROSE)
    assert meta.domains["prose"].train_tokens + meta.domains["prose"].val_tokens < 0.8 * n_bytes

    # The same tokenizer.json loaded as kind=file reproduces the corpus exactly.
    saved = text_tree / "tok.json"
    shutil.copy(corpus / TOKENIZER_FILE, saved)
    file_cfg = DataConfig(
        name="t", dir=str(text_tree / "corpus2"), source="text", paths=paths,
        tokenizer=TokenizerConfig(kind="file", path=str(saved)),
    )
    loaded = prepare_corpus(file_cfg)
    assert loaded.tokenizer["kind"] == "file"
    assert loaded.tokenizer["id"] == meta.tokenizer["id"]
    assert loaded.content_hash == meta.content_hash
    assert (text_tree / "corpus2" / TOKENIZER_FILE).is_file()


def test_tokenizer_errors(tmp_path, text_tree):
    paths = {"code": [str(text_tree / "code.jsonl")]}
    with pytest.raises(TokenizerError, match="needs data.tokenizer.path"):
        prepare_corpus(_text_cfg(text_tree, paths, tokenizer=TokenizerConfig(kind="file")))
    with pytest.raises(TokenizerError, match="does not exist"):
        missing = TokenizerConfig(kind="file", path=str(tmp_path / "x.json"))
        prepare_corpus(_text_cfg(text_tree, paths, tokenizer=missing))
    with pytest.raises(TokenizerError, match="too small"):
        prepare_corpus(_text_cfg(text_tree, paths, tokenizer=TokenizerConfig(kind="bpe", vocab_size=100)))
    (tmp_path / "junk.json").write_text("{}")
    with pytest.raises(TokenizerError, match="not a valid tokenizer.json"):
        load_tokenizer_file(tmp_path / "junk.json")


def test_file_tokenizer_without_eos_needs_eos_token(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(PROSE, trainers.BpeTrainer(vocab_size=280, special_tokens=["<sep>"], show_progress=False))
    tok.save(str(tmp_path / "t.json"))
    with pytest.raises(TokenizerError, match="no end-of-document token"):
        load_tokenizer_file(tmp_path / "t.json")
    assert load_tokenizer_file(tmp_path / "t.json", eos_token="<sep>").eos_id == tok.token_to_id("<sep>")
