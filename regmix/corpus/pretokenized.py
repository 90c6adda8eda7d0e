"""Corpora tokenized elsewhere (`data.source=pretokenized`): token files taken as they are.

Per domain, flat token files made with the tokenizer given as `data.tokenizer.kind=file
data.tokenizer.path=<the tokenizer.json they were made with>` (or `kind=bytes`):

- `.bin`: raw ids, nanoGPT style (`data.token_dtype`, uint16 for vocabularies up to 65,536);
- `.npy`: a NumPy array (its header names the dtype), or a raw memmap under that name as OLMo and
  dolma write them (no header: `data.token_dtype`).

Nothing is re-tokenized. Documents are the runs of ids that end in the tokenizer's eos id (how
nanoGPT, OLMo and dolma join documents); a file whose last document lacks one gets it. Validation
is held out as text prepare holds it out (`regmix.corpus.sampling`: a hash of the seed, the file's
path below its domain's files and the document's position in it; exactly ceil(n * val_fraction)
documents of n), and `data.max_tokens_per_domain` samples documents by the same hash. Both splits
keep file order and are streamed copies of the files in pieces; ids outside the tokenizer's
vocabulary are refused, before anything is written.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from regmix.corpus import sampling
from regmix.corpus.config import DataConfig
from regmix.corpus.integrity import hash_shards
from regmix.corpus.store import TARGET_ROLE, TRAIN_ROLE, CorpusMeta, DomainMeta, shard_path, write_meta
from regmix.corpus.text import check_domain_name
from regmix.corpus.tokenize import ByteTokenizer, HFTokenizer, build_tokenizer
from regmix.errors import RegmixError

TOKEN_SUFFIXES = (".bin", ".npy")
TOKEN_DTYPES = ("uint16", "uint32")
_CHUNK_TOKENS = 1 << 23
"""Tokens per read while scanning and copying (8M: 16-32 MB), so memory does not grow with a file."""
_NPY_MAGIC = b"\x93NUMPY"
_LITGPT_MAGIC = b"LITPKDS"


class PretokenizedError(RegmixError):
    """Token files that cannot be taken as a corpus; the message names the file and the fix."""


def is_token_file(path: Path) -> bool:
    return path.suffix.lower() in TOKEN_SUFFIXES


def check_config(cfg: DataConfig) -> None:
    """Settings of `data.source=pretokenized` that cannot work, before any file is read."""
    if cfg.tokenizer.kind not in ("file", "bytes"):
        raise PretokenizedError(
            f"data.source=pretokenized takes the tokenizer the files were made with, not data.tokenizer.kind="
            f"{cfg.tokenizer.kind!r}; use data.tokenizer.kind=file data.tokenizer.path=<its tokenizer.json>"
        )
    if cfg.file or not cfg.paths:
        raise PretokenizedError(
            "data.source=pretokenized needs token files per domain: +data.paths.<domain>=[files/folders/globs "
            "of .bin/.npy] or data.domains_dir=<folder with a subfolder per domain>"
        )
    if cfg.token_dtype not in TOKEN_DTYPES:
        raise PretokenizedError(f"data.token_dtype={cfg.token_dtype!r}; use uint16 or uint32 (the dtype of the .bin files)")
    if not 0.0 < cfg.val_fraction < 1.0:
        raise PretokenizedError(f"data.val_fraction={cfg.val_fraction}; use a share strictly between 0 and 1, e.g. 0.05")
    for domain in cfg.paths:
        check_domain_name(domain)
    if cfg.max_tokens_per_domain is not None and cfg.max_tokens_per_domain < 1:
        raise PretokenizedError(
            f"data.max_tokens_per_domain={cfg.max_tokens_per_domain}; use a positive count, e.g. 20000000, or null for every token"
        )
    unknown = sorted(set(cfg.targets) - set(cfg.paths))
    if unknown:
        raise PretokenizedError(f"data.targets names {unknown}, which data.paths lacks; known domains: {sorted(cfg.paths)}")
    if not set(cfg.paths) - set(cfg.targets):
        raise PretokenizedError("every domain is in data.targets; leave at least one training domain out of it")


def domain_files(cfg: DataConfig) -> dict[str, list[Path]]:
    """domain -> its token files, in a stable order (specs as given, files in folders sorted)."""
    out = {}
    for domain, specs in cfg.paths.items():
        files: list[Path] = []
        for spec in [specs] if isinstance(specs, str) else specs:
            spec = os.path.expanduser(str(spec))
            matches = sorted(glob.glob(spec, recursive=True)) if glob.has_magic(spec) else [spec]
            if not matches or not Path(matches[0]).exists():
                raise PretokenizedError(f"domain {domain!r}: {spec} matches no file; fix data.paths.{domain}")
            for match in map(Path, matches):
                if match.is_dir():
                    inside = sorted(p for p in match.rglob("*") if p.is_file() and is_token_file(p))
                    if not inside:
                        raise PretokenizedError(f"domain {domain!r}: folder {match} holds no .bin or .npy file")
                    files.extend(inside)
                elif is_token_file(match):
                    files.append(match)
                else:
                    raise PretokenizedError(
                        f"domain {domain!r}: {match} is not a token file (.bin or .npy); text goes through data.source=text"
                    )
        out[domain] = files
    return out


def open_tokens(path: Path, token_dtype: str) -> np.ndarray:
    """The ids of one file, memory-mapped: a NumPy .npy by its header, anything else as raw ids."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(_LITGPT_MAGIC):
        raise PretokenizedError(
            f"{path} is a lit-gpt packed chunk (LITPKDS, padded fixed-size chunks), not a flat token file; "
            "prepare the text it was made from with data.source=text"
        )
    if head.startswith(_NPY_MAGIC):
        ids = np.load(path, mmap_mode="r", allow_pickle=False)
        if ids.ndim != 1 or ids.dtype.kind not in "ui":
            raise PretokenizedError(f"{path} holds a {ids.ndim}-d {ids.dtype} array; a token file is one flat array of integer ids")
        return ids
    dtype = np.dtype(token_dtype)
    size = path.stat().st_size
    if size % dtype.itemsize:
        raise PretokenizedError(
            f"{path} has {size} bytes, not a whole number of {token_dtype} ids; set data.token_dtype to the dtype it was written with"
        )
    return np.memmap(path, dtype=dtype, mode="r") if size else np.zeros(0, dtype=dtype)


def check_ids(files: dict[str, list[Path]], *, token_dtype: str, vocab_size: int) -> None:
    """Refuse, before anything is written, a file holding an id outside the vocabulary."""
    for paths in files.values():
        for path in paths:
            ids = open_tokens(path, token_dtype)
            low, top = 0, -1
            for lo in range(0, len(ids), _CHUNK_TOKENS):
                chunk = ids[lo : lo + _CHUNK_TOKENS]
                low, top = min(low, int(chunk.min())), max(top, int(chunk.max()))
            if low < 0 or top >= vocab_size:
                bad = low if low < 0 else top
                raise PretokenizedError(
                    f"{path} holds token id {bad}, but the tokenizer has {vocab_size} ids (0..{vocab_size - 1}); give the "
                    "tokenizer.json the files were made with (data.tokenizer.path) or the right data.token_dtype"
                )


def document_spans(ids: np.ndarray, eos_id: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """(starts, ends) of a file's documents, ends exclusive and after the eos, and whether the
    last document lacks its eos (the file ends inside it)."""
    found = [np.flatnonzero(np.asarray(ids[lo : lo + _CHUNK_TOKENS]) == eos_id) + lo
             for lo in range(0, len(ids), _CHUNK_TOKENS)]
    ends = (np.concatenate(found) + 1) if found else np.zeros(0, dtype=np.int64)
    open_tail = len(ids) > 0 and (ends.size == 0 or ends[-1] < len(ids))
    if open_tail:
        ends = np.append(ends, len(ids))
    ends = ends.astype(np.int64)
    return np.concatenate([[0], ends[:-1]]).astype(np.int64), ends, open_tail


def file_keys(files: list[Path]) -> list[str]:
    """Each file's path below its domain's files: what the hashes name it by (as for text), so
    moving the corpus or listing its files in another order holds out the same documents."""
    root = os.path.commonpath([str(p.resolve().parent) for p in files])
    return [os.path.relpath(p.resolve(), root) for p in files]


class _Shard:
    """One shard file written in pieces, with a cap on its tokens (the budget) and a count."""

    def __init__(self, path: Path, dtype: np.dtype, cap: int | None) -> None:
        self.path, self.dtype, self.cap = path, dtype, cap
        self.tokens = 0
        self.fh = open(path, "wb")

    @property
    def full(self) -> bool:
        return self.cap is not None and self.tokens >= self.cap

    def write(self, ids: np.ndarray) -> None:
        if self.cap is not None:
            ids = ids[: max(self.cap - self.tokens, 0)]  # the budget ends inside this piece
        try:  # not ndarray.tofile: its errors carry no errno; a full disk names the shard
            self.fh.write(memoryview(np.ascontiguousarray(ids, dtype=self.dtype)).cast("B"))
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(self.path)) from None
        self.tokens += len(ids)

    def copy(self, ids: np.ndarray, start: int, end: int) -> None:
        for lo in range(start, end, _CHUNK_TOKENS):
            if self.full:
                return
            self.write(ids[lo : min(end, lo + _CHUNK_TOKENS)])


def _copy_runs(out: _Shard, ids: np.ndarray, docs: np.ndarray, starts, ends, open_tail: bool, eos: np.ndarray) -> None:
    """Copy documents `docs` (sorted indices into starts/ends) of one file, consecutive ones in one piece."""
    if docs.size == 0:
        return
    breaks = np.flatnonzero(np.diff(docs) != 1) + 1
    for run in np.split(docs, breaks):
        out.copy(ids, int(starts[run[0]]), int(ends[run[-1]]))
        if open_tail and run[-1] == len(ends) - 1 and not out.full:
            out.write(eos)


@dataclass
class _Tally:
    documents: int = 0
    """Documents kept by the budget (all of them without one)."""
    tokens_in_files: int = 0
    """Every token of the domain's files: the whole domain, for the prior of a sample."""


def _write_domain(files: list[Path], cfg: DataConfig, *, target: bool, rate: float, eos: np.ndarray,
                  train: _Shard, val: _Shard) -> _Tally:
    """Copy one domain's files into its shards, file by file: sampled (`rate`), then split."""
    split = sampling.ValidationSplit(cfg.val_fraction)
    tally = _Tally()
    for path, key in zip(files, file_keys(files)):
        ids = open_tokens(path, cfg.token_dtype)
        tally.tokens_in_files += len(ids)
        starts, ends, open_tail = document_spans(ids, int(eos[0]))
        # One batch per file: the same hashes as text prepare (the file's key, the document's position).
        hashes = sampling.record_hashes(sampling.file_key(cfg.seed, "", key), 0, ends.size)
        rows = np.flatnonzero(sampling.kept(hashes, rate))
        tally.documents += rows.size
        to_val = np.ones(rows.size, dtype=bool) if target else split.take(hashes[rows])
        _copy_runs(train, ids, rows[~to_val], starts, ends, open_tail, eos)
        _copy_runs(val, ids, rows[to_val], starts, ends, open_tail, eos)
    return tally


def write_pretokenized(cfg: DataConfig, corpus_dir: Path, *, source: dict) -> CorpusMeta:
    """Copy the domains' token files into `corpus_dir` as a corpus (shards, tokenizer.json, stamp, meta)."""
    tokenizer: ByteTokenizer | HFTokenizer = build_tokenizer(cfg.tokenizer)
    files = domain_files(cfg)
    vocab = tokenizer.vocab_size
    check_ids(files, token_dtype=cfg.token_dtype, vocab_size=vocab)
    # The store's dtype rule (store.write_corpus): uint16 while every id fits.
    dtype = np.dtype(np.uint16 if vocab <= np.iinfo(np.uint16).max + 1 else np.uint32)
    eos = np.array([tokenizer.eos_id], dtype=dtype)
    budget = cfg.max_tokens_per_domain
    domains: dict[str, DomainMeta] = {}
    for domain in tqdm(list(files), desc="copy token files", unit="domain", disable=None):
        target = domain in cfg.targets
        # Tokens are known before reading (file sizes): the budget's rate is exact, not estimated.
        tokens = sum(len(open_tokens(p, cfg.token_dtype)) for p in files[domain])
        wanted = tokens * (1.0 if target else 1.0 - cfg.val_fraction)
        rate = 1.0 if budget is None or wanted <= budget else budget / wanted
        (corpus_dir / domain).mkdir(parents=True, exist_ok=True)
        train = _Shard(shard_path(corpus_dir, domain, "train"), dtype, None if target else budget)
        val = _Shard(shard_path(corpus_dir, domain, "val"), dtype, budget if target else None)
        try:
            tally = _write_domain(files[domain], cfg, target=target, rate=rate, eos=eos, train=train, val=val)
        finally:
            train.fh.close()
            val.fh.close()
        if tally.documents < (1 if target else 2):
            raise PretokenizedError(
                f"domain {domain!r} has {tally.documents} document (runs of ids ending in the eos id); at least 2 are "
                "needed to hold one out for validation: check data.tokenizer.eos_token, or give the domain more files"
            )
        description = f"{tally.documents} documents from {len(files[domain])} token files"
        prior = 0
        if rate < 1.0 and not target:  # a sample: the prior describes the whole domain
            prior = round(tally.tokens_in_files * (1.0 - cfg.val_fraction))
            description += f" (a sample: {rate:.2%} of its documents, for the token budget)"
        domains[domain] = DomainMeta(role=TARGET_ROLE if target else TRAIN_ROLE, train_tokens=train.tokens,
                                     val_tokens=val.tokens, description=description,
                                     prior_tokens=prior, prior_estimated=bool(prior))
    if isinstance(tokenizer, HFTokenizer):
        tokenizer.save(corpus_dir)
    meta = CorpusMeta(name=cfg.name, tokenizer=tokenizer.info(), dtype=dtype.name, domains=domains, source=source)
    meta.content_hash, per_shard = hash_shards(corpus_dir, meta)
    write_meta(corpus_dir, meta, per_shard)
    return meta


def input_files(cfg: DataConfig) -> Iterable[Path]:
    """Every token file, for the input fingerprint of `meta.source`."""
    return [path for files in domain_files(cfg).values() for path in files]
