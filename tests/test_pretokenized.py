"""`data.source=pretokenized`: token files made elsewhere (nanoGPT .bin, NumPy and OLMo-style .npy)
with their tokenizer.json become a corpus without re-tokenization, split as text prepare splits,
and a tiny proxy trains on it through the real commands, with no text anywhere."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from regmix.corpus.config import DataConfig, TokenizerConfig
from regmix.corpus.prepare import prepare_corpus
from regmix.corpus.pretokenized import PretokenizedError
from regmix.corpus.store import open_shard, read_meta
from regmix.corpus.tokenize import TOKENIZER_FILE, load_tokenizer_file, train_bpe

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
WORDS = ("river stone market light paper garden window engine number signal winter orange "
         "travel silver animal forest letter theory music school doctor island").split()


def _documents(domain: str, n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"{domain} {i}: " + " ".join(rng.choice(WORDS, size=int(rng.integers(8, 40)))) + "." for i in range(n)]


DOCS = {"prose": _documents("prose", 120, 0), "code": _documents("code", 80, 1), "notes": _documents("notes", 60, 2)}


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory) -> Path:
    """A small byte-level BPE (eos <|endoftext|> = id 0) trained here on the test's documents."""
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    train_bpe([d for docs in DOCS.values() for d in docs], vocab_size=400).tokenizer.save(str(path))
    return path


def _encode(tokenizer_json: Path, docs: list[str]) -> np.ndarray:
    """What a nanoGPT/OLMo prepare script writes: each document's ids, then the eos id."""
    tok = load_tokenizer_file(tokenizer_json)
    return np.concatenate([np.append(enc.ids, tok.eos_id) for enc in tok.tokenizer.encode_batch(docs, add_special_tokens=False)])


@pytest.fixture(scope="module")
def token_tree(tmp_path_factory, tokenizer_json) -> Path:
    """prose: two nanoGPT uint16 .bin files (its last document without an eos); code: a NumPy
    uint32 .npy; notes: an OLMo/dolma-style raw uint16 memmap named .npy."""
    root = tmp_path_factory.mktemp("tokens")
    for domain in DOCS:
        (root / domain).mkdir()
    prose = _encode(tokenizer_json, DOCS["prose"])
    cut = int(np.flatnonzero(prose == 0)[69]) + 1  # after document 70
    prose[:cut].astype(np.uint16).tofile(root / "prose" / "train-000.bin")
    prose[cut:-1].astype(np.uint16).tofile(root / "prose" / "train-001.bin")  # the file's last eos dropped
    np.save(root / "code" / "part-0.npy", _encode(tokenizer_json, DOCS["code"]).astype(np.uint32))
    _encode(tokenizer_json, DOCS["notes"]).astype(np.uint16).tofile(root / "notes" / "part-0-00000.npy")
    (root / "notes" / "README.txt").write_text("not a token file: skipped")
    return root


def _docs_of(ids: np.ndarray, eos: int = 0) -> list[tuple[int, ...]]:
    ends = np.flatnonzero(ids == eos)
    return [tuple(ids[a + 1 : b].tolist()) for a, b in zip(np.concatenate([[-1], ends[:-1]]), ends)]


def _pretok_cfg(token_tree: Path, tokenizer_json: Path, out: Path, **kwargs) -> DataConfig:
    return DataConfig(name="pre", dir=str(out), source="pretokenized", domains_dir=str(token_tree),
                      tokenizer=TokenizerConfig(kind="file", path=str(tokenizer_json)), val_fraction=0.1, **kwargs)


def test_token_files_become_the_corpus_of_their_documents(tmp_path, token_tree, tokenizer_json):
    """Every document of the files exactly once, in file order within each split; exactly
    ceil(n * val_fraction) held out, as text prepare holds out; the same tokenizer id and the same
    tokens as text prepare of the same documents with the same tokenizer.json."""
    for domain, docs in DOCS.items():
        with open(tmp_path / f"{domain}.jsonl", "w") as fh:
            fh.writelines(json.dumps({"text": d}) + "\n" for d in docs)
    text = prepare_corpus(DataConfig(
        name="txt", dir=str(tmp_path / "from_text"), source="text", val_fraction=0.1,
        paths={d: [str(tmp_path / f"{d}.jsonl")] for d in ("code", "notes", "prose")},
        tokenizer=TokenizerConfig(kind="file", path=str(tokenizer_json))))
    pre = prepare_corpus(_pretok_cfg(token_tree, tokenizer_json, tmp_path / "from_tokens"))

    assert list(pre.domains) == ["code", "notes", "prose"]
    assert pre.tokenizer["id"] == text.tokenizer["id"] and pre.dtype == "uint16"
    for domain, docs in DOCS.items():
        info = pre.domains[domain]
        assert info.train_tokens + info.val_tokens == text.domains[domain].train_tokens + text.domains[domain].val_tokens
        originals = _docs_of(_encode(tokenizer_json, docs))
        train, val = (_docs_of(np.asarray(open_shard(tmp_path / "from_tokens", pre, domain, s))) for s in ("train", "val"))
        assert len(val) == int(np.ceil(0.1 * len(docs))) and sorted(train + val) == sorted(originals)
        for split in (train, val):  # file order: each split is a subsequence of the documents
            positions = [originals.index(d) for d in split]
            assert positions == sorted(positions)
    assert pre.token_prior() == pytest.approx({d: m.train_tokens / sum(x.train_tokens for x in pre.domains.values())
                                               for d, m in pre.domains.items()})
    assert (tmp_path / "from_tokens" / TOKENIZER_FILE).read_text() == tokenizer_json.read_text()
    assert pre.source["token_dtype"] == "uint16" and pre.source["inputs"]
    # Same settings again: nothing to do, the same corpus.
    assert prepare_corpus(_pretok_cfg(token_tree, tokenizer_json, tmp_path / "from_tokens")) == pre


def test_a_token_budget_samples_documents_and_keeps_the_whole_domains_prior(tmp_path, token_tree, tokenizer_json):
    full = prepare_corpus(_pretok_cfg(token_tree, tokenizer_json, tmp_path / "full"))
    budget = 600
    cut = prepare_corpus(_pretok_cfg(token_tree, tokenizer_json, tmp_path / "cut", max_tokens_per_domain=budget))
    for domain, info in cut.domains.items():
        assert 0 < info.train_tokens <= budget < full.domains[domain].train_tokens
        assert info.prior_estimated and "a sample" in info.description
    for domain, share in full.token_prior().items():
        assert abs(cut.token_prior()[domain] - share) < 0.01
    assert cut.source["max_tokens_per_domain"] == budget


def test_ids_outside_the_vocabulary_are_refused_naming_the_file_and_the_max_id(tmp_path, tokenizer_json):
    vocab = load_tokenizer_file(tokenizer_json).vocab_size
    (tmp_path / "web").mkdir()
    bad = tmp_path / "web" / "a.bin"
    np.array([5, 7, 0, vocab + 3, vocab + 41, 0, 9, 0], dtype=np.uint16).tofile(bad)
    cfg = DataConfig(name="x", dir=str(tmp_path / "c"), source="pretokenized", paths={"web": [str(bad)]},
                     tokenizer=TokenizerConfig(kind="file", path=str(tokenizer_json)))
    with pytest.raises(PretokenizedError) as err:
        prepare_corpus(cfg)
    message = str(err.value)
    assert "\n" not in message and str(bad) in message and f"token id {vocab + 41}" in message
    assert f"has {vocab} ids" in message


@pytest.mark.parametrize(
    "content, kwargs, message",
    [
        (np.arange(1, 8, dtype=np.uint16).tobytes()[:-1], {}, "not a whole number of uint16 ids"),
        (b"LITPKDS" + bytes(40), {}, "lit-gpt packed chunk"),
        (np.arange(4, dtype=np.uint16).tobytes(), {"token_dtype": "int8"}, "data.token_dtype='int8'"),
        (np.array([5, 6, 7], dtype=np.uint16).tobytes(), {}, "has 1 document"),
        (np.arange(4, dtype=np.uint16).tobytes(), {"tokenizer": TokenizerConfig(kind="bpe")}, "kind=file"),
    ],
    ids=["odd-size", "litgpt", "dtype", "one-document", "bpe"],
)
def test_bad_token_files_and_settings_are_one_line_user_errors(tmp_path, tokenizer_json, content, kwargs, message):
    (tmp_path / "a.bin").write_bytes(content)
    settings = {"tokenizer": TokenizerConfig(kind="file", path=str(tokenizer_json)), **kwargs}
    cfg = DataConfig(name="x", dir=str(tmp_path / "c"), source="pretokenized", paths={"web": [str(tmp_path / "a.bin")]},
                     **settings)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")) as err:
        prepare_corpus(cfg)
    assert "\n" not in str(err.value)


def cli(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / name), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def _readme_line(start: str) -> list[str]:
    (line,) = [line for line in (REPO / "README.md").read_text().splitlines() if line.startswith(start)]
    return shlex.split(line.split("#", 1)[0])


def test_a_tiny_proxy_trains_on_token_files_without_their_text(tmp_path, token_tree, tokenizer_json):
    """The README's command on a tokens/ folder (one subfolder per domain, the tokenizer.json beside
    them), then regmix-train on the corpus: no text exists anywhere."""
    shutil.copytree(token_tree, tmp_path / "tokens")
    shutil.copy(tokenizer_json, tmp_path / "tokens" / "tokenizer.json")
    command = _readme_line("regmix-prepare data=pretokenized")
    assert "data.domains_dir=tokens/" in command
    done = cli(command[0], *command[1:], "data.val_fraction=0.2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    name = next((arg.split("=", 1)[1] for arg in command if arg.startswith("data.name=")), "pretokenized")
    corpus = tmp_path / "data" / name
    assert "prose" in done.stdout and "code" in done.stdout
    meta = read_meta(corpus)
    assert meta.tokenizer["kind"] == "file" and meta.vocab_size == load_tokenizer_file(tokenizer_json).vocab_size
    done = cli("regmix-train", f"data.dir={corpus}", "model=tiny", "train=tiny", "train.tokens=8192", "train.seq_len=64",
               "eval.tokens_per_domain=256", "tracker=disabled", "sweep=pre", "run_name=r0",
               "mixture.weights={prose: 0.5, code: 0.3, notes: 0.2}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "runs" / "pre" / "r0" / "result.json").read_text())
    assert record["status"] == "finished" and record["steps"] == 8
    assert set(record["val_loss"]) == {"prose", "code", "notes"}
    assert all(0 < loss < np.log(meta.vocab_size) + 1 for loss in record["val_loss"].values())
    assert record["corpus"]["content_hash"] == meta.content_hash

    # A token id past the tokenizer's vocabulary: one line, exit 2, no corpus.
    bad = tmp_path / "bad"
    (bad / "web").mkdir(parents=True)
    np.array([1, 2, 0, 60_000, 0], dtype=np.uint16).tofile(bad / "web" / "x.bin")
    done = cli("regmix-prepare", "data=pretokenized", f"data.domains_dir={bad}", f"data.dir={tmp_path / 'c2'}",
               f"data.tokenizer.path={tokenizer_json}", cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and lines[-1].startswith("error: ") and "token id 60000" in lines[-1], done.stderr
    assert not (tmp_path / "c2" / "meta.json").exists()


def test_byte_level_token_files_with_the_bytes_tokenizer(tmp_path):
    """kind=bytes: UTF-8 bytes as ids, documents ended by NUL (id 0), as data=text's bytes tokenizer writes them."""
    docs = [f"note {i}: the bytes of a short document." for i in range(20)]
    (tmp_path / "notes").mkdir()
    raw = b"".join(d.encode() + b"\0" for d in docs)
    np.frombuffer(raw, dtype=np.uint8).astype(np.uint32).tofile(tmp_path / "notes" / "a.bin")
    meta = prepare_corpus(DataConfig(name="b", dir=str(tmp_path / "c"), source="pretokenized", token_dtype="uint32",
                                     paths={"notes": [str(tmp_path / "notes")]}, tokenizer=TokenizerConfig(kind="bytes")))
    assert meta.tokenizer["kind"] == "bytes" and meta.vocab_size == 256
    ids = [np.asarray(open_shard(tmp_path / "c", meta, "notes", s)) for s in ("train", "val")]
    decoded = [bytes(d).decode() for split in ids for d in _docs_of(split)]
    assert sorted(decoded) == sorted(docs) and len(_docs_of(ids[1])) == 1  # ceil(20 * 0.05)
