"""The streaming prepare: the formats users have, token budgets, a bounded BPE sample, and a
prepare killed halfway that a rerun finishes with the same bytes."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from regmix.corpus import stream
from regmix.corpus.config import DataConfig, TokenizerConfig
from regmix.corpus.formats import TextSourceError
from regmix.corpus.prepare import prepare_corpus
from regmix.corpus.store import open_shard, read_meta

BIN = Path(sys.executable).parent
WORDS = np.array("the a of river stone quickly green under over market light seven bright cold".split())


def _docs(n: int, seed: int, words: int = 40) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"doc {seed}-{i}: " + " ".join(rng.choice(WORDS, words)) for i in range(n)]


def _decode(corpus: Path, meta, domain: str, split: str) -> list[str]:
    raw = bytes(np.asarray(open_shard(corpus, meta, domain, split), dtype=np.uint8))
    return [doc.decode("utf-8") for doc in raw.split(b"\0")[:-1]]


def _all_docs(corpus: Path, meta, domain: str) -> list[str]:
    return sorted(_decode(corpus, meta, domain, "train") + _decode(corpus, meta, domain, "val"))


def _jsonl_lines(docs: list[str]) -> bytes:
    return "".join(json.dumps({"text": d, "id": i}) + "\n" for i, d in enumerate(docs)).encode()


def _cfg(tmp_path: Path, paths: dict, name: str = "corpus", **kwargs) -> DataConfig:
    return DataConfig(name="t", dir=str(tmp_path / name), source="text", paths=paths, **kwargs)


def _write_datasets_folder(folder: Path, docs: list[str]) -> None:
    """What `datasets.Dataset.save_to_disk` writes: Arrow IPC *stream* shards (its ArrowWriter is a
    pyarrow RecordBatchStreamWriter) beside state.json and dataset_info.json."""
    import pyarrow as pa

    folder.mkdir()
    halves = [docs[: len(docs) // 2], docs[len(docs) // 2 :]]
    names = []
    for i, part in enumerate(halves):
        name = f"data-{i:05d}-of-00002.arrow"
        table = pa.table({"text": part, "n": list(range(len(part)))})
        with pa.OSFile(str(folder / name), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            for batch in table.to_batches(max_chunksize=7):
                writer.write_batch(batch)
        names.append({"filename": name})
    (folder / "state.json").write_text(json.dumps({"_data_files": names, "_split": "train"}))
    (folder / "dataset_info.json").write_text(json.dumps({"features": {"text": {"dtype": "string"}}}))


def test_every_text_format_prepares_every_document_once(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    import zstandard

    docs = {name: _docs(30, seed) for seed, name in enumerate(["gz", "zst", "hf", "shards", "ipc", "csv"])}
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(_jsonl_lines(docs["gz"])))
    (tmp_path / "a.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(_jsonl_lines(docs["zst"])))
    _write_datasets_folder(tmp_path / "hf", docs["hf"])
    (tmp_path / "shards").mkdir()
    for i in range(3):
        pq.write_table(pa.table({"text": docs["shards"][i::3]}), tmp_path / "shards" / f"part-{i}.parquet", row_group_size=4)
    with pa.OSFile(str(tmp_path / "b.arrow"), "wb") as sink:
        table = pa.table({"text": docs["ipc"]})
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=8)
    import pandas as pd

    pd.DataFrame({"text": docs["csv"]}).to_csv(tmp_path / "c.csv", index=False)
    paths = {"gz": [str(tmp_path / "a.jsonl.gz")], "zst": [str(tmp_path / "a.jsonl.zst")], "hf": [str(tmp_path / "hf")],
             "shards": [str(tmp_path / "shards")], "ipc": [str(tmp_path / "b.arrow")], "csv": [str(tmp_path / "c.csv")]}
    meta = prepare_corpus(_cfg(tmp_path, paths, val_fraction=0.1))
    for domain in paths:
        assert _all_docs(tmp_path / "corpus", meta, domain) == sorted(docs[domain]), domain
        assert len(_decode(tmp_path / "corpus", meta, domain, "val")) == 3  # ceil(0.1 * 30)


def test_a_real_datasets_save_to_disk_folder_prepares(tmp_path):
    datasets = pytest.importorskip("datasets")
    docs = _docs(20, 3)
    datasets.Dataset.from_dict({"text": docs}).save_to_disk(str(tmp_path / "ds"))
    meta = prepare_corpus(_cfg(tmp_path, {"web": [str(tmp_path / "ds")]}))
    assert _all_docs(tmp_path / "corpus", meta, "web") == sorted(docs)


def test_zst_without_zstandard_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    (tmp_path / "a.jsonl.zst").write_bytes(b"\x28\xb5\x2f\xfd")
    monkeypatch.setitem(sys.modules, "zstandard", None)  # as if the extra were not installed
    with pytest.raises(TextSourceError, match=r"needs the zstandard package: pip install 'regmix\[formats\]'"):
        prepare_corpus(_cfg(tmp_path, {"x": [str(tmp_path / "a.jsonl.zst")]}))


def _budget_tree(tmp_path: Path) -> dict:
    """`big`: 4 jsonl files of 400 documents; `small`: 60 documents (under any budget below)."""
    (tmp_path / "big").mkdir()
    for i in range(4):
        (tmp_path / "big" / f"part{i}.jsonl").write_bytes(_jsonl_lines(_docs(400, 10 + i)))
    (tmp_path / "small.jsonl").write_bytes(_jsonl_lines(_docs(60, 99, words=25)))
    return {"big": [str(tmp_path / "big")], "small": [str(tmp_path / "small.jsonl")]}


def test_a_token_budget_caps_each_domain_and_keeps_the_full_prior(tmp_path):
    paths = _budget_tree(tmp_path)
    full = prepare_corpus(_cfg(tmp_path, paths, name="full"))
    budget = 40_000  # about a sixth of `big`, more than all of `small`
    meta = prepare_corpus(_cfg(tmp_path, paths, name="budget", max_tokens_per_domain=budget))
    assert full.domains["big"].train_tokens > 5 * budget
    assert 0.8 * budget <= meta.domains["big"].train_tokens <= budget
    assert meta.domains["small"].train_tokens == full.domains["small"].train_tokens  # not sampled
    assert meta.domains["big"].prior_estimated and not meta.domains["small"].prior_estimated
    raw = json.loads((tmp_path / "budget" / "meta.json").read_text())
    assert raw["domains"]["big"]["prior_estimated"] is True
    for domain, share in full.token_prior().items():
        assert abs(meta.token_prior()[domain] - share) <= 0.01, (domain, meta.token_prior(), full.token_prior())
    assert meta.identity(tmp_path / "budget")["train_tokens"]["big"] <= budget  # repetition limits see the sample


def test_a_budget_on_one_table_with_a_domain_column(tmp_path):
    rows = [{"text": d, "domain": "big"} for d in _docs(1200, 5)] + [{"text": d, "domain": "small"} for d in _docs(60, 6)]
    order = np.random.default_rng(0).permutation(len(rows))
    (tmp_path / "all.jsonl").write_text("".join(json.dumps(rows[i]) + "\n" for i in order))
    full = prepare_corpus(DataConfig(dir=str(tmp_path / "full"), source="text", file=str(tmp_path / "all.jsonl")))
    meta = prepare_corpus(DataConfig(dir=str(tmp_path / "b"), source="text", file=str(tmp_path / "all.jsonl"),
                                     max_tokens_per_domain=30_000))
    assert 0.8 * 30_000 <= meta.domains["big"].train_tokens <= 30_000
    assert meta.domains["small"].train_tokens == full.domains["small"].train_tokens
    assert abs(meta.token_prior()["big"] - full.token_prior()["big"]) <= 0.01


def test_the_budget_sample_does_not_depend_on_file_order(tmp_path):
    paths = _budget_tree(tmp_path)
    files = sorted(str(p) for p in (tmp_path / "big").iterdir())
    forward = prepare_corpus(_cfg(tmp_path, {"big": files, "small": paths["small"]}, name="f", max_tokens_per_domain=40_000))
    backward = prepare_corpus(_cfg(tmp_path, {"big": files[::-1], "small": paths["small"]}, name="b",
                                   max_tokens_per_domain=40_000))
    a = set(_all_docs(tmp_path / "f", forward, "big"))
    b = set(_all_docs(tmp_path / "b", backward, "big"))
    # The same documents, except those past the cap (it trims the estimate's error, in reading order).
    assert len(a & b) >= 0.9 * max(len(a), len(b))
    assert 0.1 < len(a) / 1600 < 0.3


def test_the_bpe_sample_is_bounded_in_total_shared_by_size_and_cut_into_pieces(tmp_path):
    (tmp_path / "big.jsonl").write_bytes(_jsonl_lines(_docs(300, 1)))
    (tmp_path / "small.jsonl").write_bytes(_jsonl_lines(_docs(100, 2)))
    (tmp_path / "line.txt").write_text("x" * 2_000_000)  # one long run without whitespace
    units = [stream.Unit(tmp_path / n, f, d, n, (tmp_path / n).stat().st_size)
             for n, f, d in [("big.jsonl", "jsonl", "big"), ("small.jsonl", "jsonl", "small"), ("line.txt", "txt", "line")]]
    sizes = {u.domain: u.size for u in units}
    total = sum(sizes.values())
    budget = 30_000
    quotas = {d: int(budget * s / total) for d, s in sizes.items()}
    pieces = list(stream.training_sample(units, stream.ReadOptions(), quotas, targets=[],
                                         max_chars_per_document=10**9, piece_chars=4096))
    assert sum(map(len, pieces)) <= budget
    assert max(map(len, pieces)) <= 4096
    got = {d: sum(len(p) for p in pieces if p.startswith("x") == (d == "line")) for d in ("line",)}
    assert abs(got["line"] - quotas["line"]) <= 1


def test_bpe_prepare_reads_at_most_train_chars(tmp_path):
    """A word that first appears after the training sample never becomes a token."""
    head = " ".join(["plain words here"] * 200)
    (tmp_path / "a.txt").write_text(head + " zqxvj" * 5000)
    (tmp_path / "b.txt").write_text(head)
    paths = {"x": [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]}
    for train_chars, name in ((len(head), "bounded"), (10**8, "whole")):
        tok = TokenizerConfig(kind="bpe", vocab_size=300, train_chars=train_chars)
        prepare_corpus(_cfg(tmp_path, paths, name=name, tokenizer=tok))
    vocab = {name: json.loads((tmp_path / name / "tokenizer.json").read_text())["model"]["vocab"] for name in ("bounded", "whole")}
    assert not any("zq" in token for token in vocab["bounded"])
    assert any("zq" in token for token in vocab["whole"])


def _kill_tree(tmp_path: Path) -> list[str]:
    rng = np.random.default_rng(0)
    args = []
    for domain, n_files in (("web", 60), ("code", 20)):
        folder = tmp_path / domain
        folder.mkdir()
        for i in range(n_files):
            docs = [" ".join(rng.choice(WORDS, 80)) for _ in range(150)]
            (folder / f"{i:03d}.jsonl").write_bytes(_jsonl_lines(docs))
        args.append(f"+data.paths.{domain}=[{folder}]")
    return args + ["data.tokenizer.kind=bpe", "data.tokenizer.vocab_size=400", "data.tokenizer.train_chars=200000",
                   "eval.tokens_per_domain=100"]


def test_a_prepare_killed_halfway_reruns_only_what_was_left_and_gives_the_same_bytes(tmp_path):
    args = _kill_tree(tmp_path)
    command = [str(BIN / "regmix-prepare"), "data=text", *args]
    whole = subprocess.run([*command, "data.dir=whole"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr
    first_stamp = tmp_path / "killed" / stream.PARTS_DIR / "000000.json"
    proc = subprocess.Popen([*command, "data.dir=killed"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not first_stamp.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the prepare finished before it could be killed"
    assert not (tmp_path / "killed" / "meta.json").exists()
    rerun = subprocess.run([*command, "data.dir=killed"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming an interrupted prepare:" in rerun.stdout + rerun.stderr
    assert not (tmp_path / "killed" / stream.PARTS_DIR).exists()
    for rel in ("web/train.bin", "web/val.bin", "code/train.bin", "code/val.bin", "tokenizer.json"):
        assert (tmp_path / "killed" / rel).read_bytes() == (tmp_path / "whole" / rel).read_bytes(), rel
    assert read_meta(tmp_path / "killed").content_hash == read_meta(tmp_path / "whole").content_hash
