"""On-disk layout of a prepared corpus, and its reader/writer.

A corpus folder holds::

    meta.json                 see `CorpusMeta`
    <domain>/train.bin        flat token ids (dtype in meta), documents joined by eos_id
    <domain>/val.bin

Shards are read as `np.memmap`, so a proxy run touches only the windows it samples.
Torch-free: the sampler and the analysis read token counts (the prior) from here.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from regmix.atomic_file import write_text_atomic
from regmix.errors import RegmixError

META_NAME = "meta.json"
FORMAT_VERSION = 1
TRAIN_ROLE, TARGET_ROLE = "train", "target"


class CorpusError(RegmixError):
    """A corpus that cannot be used; the message names the problem and the fix."""


@dataclass
class DomainMeta:
    role: str = TRAIN_ROLE
    """'train': a mixture domain; 'target': evaluated only (e.g. a held-out blend)."""
    train_tokens: int = 0
    val_tokens: int = 0
    description: str = ""
    prior_tokens: int = 0
    """Training tokens of the whole domain when the shards hold a sample of it (a token budget):
    its raw bytes times the tokens per byte measured on the sample. 0: the shards hold it all."""
    prior_estimated: bool = False
    """True when `prior_tokens` is such an estimate (said in meta.json, for whoever reads it)."""


@dataclass
class CorpusMeta:
    name: str
    tokenizer: dict[str, Any]
    """{'kind', 'vocab_size', 'eos_id', 'id'}: id identifies the exact tokenizer (hash)."""
    dtype: str
    domains: dict[str, DomainMeta]
    content_hash: str = ""
    """sha256 over every shard's bytes, in domain order: two runs agree on data iff equal."""
    source: dict[str, Any] = field(default_factory=dict)
    """How the corpus was made (prepare settings)."""
    target_blend: dict[str, dict[str, float]] = field(default_factory=dict)
    """Known answer of a synthetic corpus: target domain -> {train domain: share}."""
    format: int = FORMAT_VERSION

    @property
    def train_domains(self) -> list[str]:
        """Domains a mixture may put weight on, in meta order."""
        return [d for d, m in self.domains.items() if m.role == TRAIN_ROLE]

    @property
    def eval_domains(self) -> list[str]:
        """Every domain with validation tokens (train and target domains)."""
        return [d for d, m in self.domains.items() if m.val_tokens > 0]

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer["vocab_size"])

    def token_prior(self) -> dict[str, float]:
        """Each train domain's share of training tokens (RegMix's prior), of the whole domains:
        a domain prepared under a token budget counts its estimated full size."""
        counts = {d: self.domains[d].prior_tokens or self.domains[d].train_tokens for d in self.train_domains}
        total = sum(counts.values())
        if total <= 0:
            raise CorpusError("corpus has no training tokens; run regmix-prepare again")
        return {d: c / total for d, c in counts.items()}

    def eval_slice_shortfalls(self, tokens: int) -> dict[str, int]:
        """Domains whose validation split is too short for an evaluation slice of `tokens`
        tokens (a slice needs `tokens + 1`: inputs and their next-token targets), with their
        validation token counts."""
        return {d: m.val_tokens for d, m in self.domains.items() if m.val_tokens > 0 and m.val_tokens < tokens + 1}

    def identity(self, path: str | os.PathLike) -> dict[str, Any]:
        """What a run records about its corpus."""
        return {
            "name": self.name,
            "path": str(Path(path).resolve()),
            "content_hash": self.content_hash,
            "tokenizer": self.tokenizer.get("id", self.tokenizer.get("kind")),
            "train_tokens": {d: self.domains[d].train_tokens for d in self.train_domains},
        }

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["domains"] = {d: asdict(m) for d, m in self.domains.items()}
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "CorpusMeta":
        raw = dict(raw)
        raw["domains"] = {d: DomainMeta(**m) for d, m in raw["domains"].items()}
        return cls(**raw)


def shard_path(corpus_dir: str | os.PathLike, domain: str, split: str) -> Path:
    return Path(corpus_dir) / domain / f"{split}.bin"


def read_meta(corpus_dir: str | os.PathLike) -> CorpusMeta:
    """The corpus meta, or a `CorpusError` that says how to make one."""
    path = Path(corpus_dir) / META_NAME
    if not path.is_file():
        raise CorpusError(
            f"no prepared corpus at {Path(corpus_dir)} (missing {META_NAME}); "
            f"run `regmix-prepare` first (e.g. `regmix-prepare data=synthetic`) or set data.dir"
        )
    try:
        return CorpusMeta.from_json(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError, KeyError) as exc:
        raise CorpusError(f"{path} is not a valid corpus meta ({exc}); run `regmix-prepare` again") from None


def check_eval_slice(meta: CorpusMeta, tokens: int) -> None:
    """Raise one `CorpusError` naming every domain too short for `eval.tokens_per_domain=tokens`."""
    short = meta.eval_slice_shortfalls(tokens)
    if short:
        counts = ", ".join(f"{d} ({n:,})" for d, n in short.items())
        fits = min(short.values()) - 1
        raise CorpusError(
            f"eval.tokens_per_domain={tokens} is more than the validation tokens of {len(short)} domain(s): "
            f"{counts}; set eval.tokens_per_domain={fits} or lower, or prepare with a larger data.val_fraction"
        )


def open_shard(corpus_dir: str | os.PathLike, meta: CorpusMeta, domain: str, split: str) -> np.memmap:
    """Memory-map one domain's split, checking it against the meta."""
    path = shard_path(corpus_dir, domain, split)
    expected = getattr(meta.domains[domain], f"{split}_tokens")
    if not path.is_file():
        raise CorpusError(f"shard {path} is missing; run `regmix-prepare` again for {meta.name!r}")
    dtype = np.dtype(meta.dtype)
    n = path.stat().st_size // dtype.itemsize
    if n != expected:
        raise CorpusError(
            f"shard {path} has {n} tokens but meta.json says {expected}; the corpus is damaged, "
            "run `regmix-prepare ... data.overwrite=true`"
        )
    if n == 0:
        raise CorpusError(f"domain {domain!r} has no {split} tokens in {path}; give it text or drop it")
    return np.memmap(path, dtype=dtype, mode="r", shape=(n,))


def write_corpus(
    corpus_dir: str | os.PathLike,
    *,
    name: str,
    tokenizer: dict[str, Any],
    splits: dict[str, dict[str, np.ndarray]],
    roles: dict[str, str] | None = None,
    descriptions: dict[str, str] | None = None,
    source: dict[str, Any] | None = None,
    target_blend: dict[str, dict[str, float]] | None = None,
) -> CorpusMeta:
    """Write shards and meta. `splits` maps domain -> {'train': ids, 'val': ids}.

    meta.json is written last and atomically: a folder without it is not a corpus, so an
    interrupted prepare never leaves something that looks finished.
    """
    corpus_dir = Path(corpus_dir)
    vocab = int(tokenizer["vocab_size"])
    dtype = np.dtype(np.uint16 if vocab <= np.iinfo(np.uint16).max + 1 else np.uint32)
    roles = roles or {}
    descriptions = descriptions or {}
    digest = hashlib.sha256()
    per_shard: dict[str, str] = {}
    domains: dict[str, DomainMeta] = {}
    for domain, parts in splits.items():
        (corpus_dir / domain).mkdir(parents=True, exist_ok=True)
        counts = {}
        for split in ("train", "val"):
            ids = np.asarray(parts.get(split, np.zeros(0)), dtype=dtype)
            path = shard_path(corpus_dir, domain, split)
            try:  # not ndarray.tofile: its errors carry no errno; a full disk names the shard
                with open(path, "wb") as fh:
                    fh.write(memoryview(np.ascontiguousarray(ids)).cast("B"))
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, str(path)) from None
            digest.update(domain.encode() + split.encode() + ids.tobytes())
            per_shard[f"{domain}/{split}"] = hashlib.sha256(ids.tobytes()).hexdigest()
            counts[split] = int(ids.size)
        domains[domain] = DomainMeta(
            role=roles.get(domain, TRAIN_ROLE),
            train_tokens=counts["train"],
            val_tokens=counts["val"],
            description=descriptions.get(domain, ""),
        )
    meta = CorpusMeta(
        name=name,
        tokenizer=tokenizer,
        dtype=dtype.name,
        domains=domains,
        content_hash=digest.hexdigest()[:16],
        source=source or {},
        target_blend=target_blend or {},
    )
    write_meta(corpus_dir, meta, per_shard)
    return meta


def write_meta(corpus_dir: str | os.PathLike, meta: CorpusMeta, per_shard: dict[str, str]) -> None:
    """Finish a corpus whose shards are written: the verification stamp, then meta.json (atomically,
    last: a folder with meta is a finished corpus)."""
    write_stamp(corpus_dir, meta, per_shard)
    write_text_atomic(Path(corpus_dir) / META_NAME, json.dumps(meta.to_json(), indent=2))


# --------------------------------------------------------------------------------------
# The verification stamp (read by regmix.corpus.integrity; written here with the corpus)
# --------------------------------------------------------------------------------------

#: Beside meta.json: size and mtime of every shard when its bytes last matched content_hash.
STAMP_NAME = ".verified.json"
SPLITS = ("train", "val")


def shard_stats(corpus_dir: Path, meta: CorpusMeta) -> dict[str, list[int]] | None:
    """Size and mtime (ns) of every shard, or None when one is missing."""
    out = {}
    for domain in meta.domains:
        for split in SPLITS:
            path = shard_path(corpus_dir, domain, split)
            try:
                st = path.stat()
            except FileNotFoundError:
                return None
            out[f"{domain}/{split}"] = [st.st_size, st.st_mtime_ns]
    return out


def write_stamp(corpus_dir: str | os.PathLike, meta: CorpusMeta, per_shard: dict[str, str]) -> None:
    """Remember that the shards, as they are now, match `meta.content_hash` (best effort: a
    read-only corpus is simply hashed again next time)."""
    corpus_dir = Path(corpus_dir)
    stats = shard_stats(corpus_dir, meta)
    if stats is None:
        return
    stamp = {"content_hash": meta.content_hash,
             "shards": {key: [*stats[key], per_shard.get(key)] for key in stats}}
    try:
        write_text_atomic(corpus_dir / STAMP_NAME, json.dumps(stamp, indent=1))
    except OSError:
        pass
