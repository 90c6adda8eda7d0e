"""`regmix-prepare`'s work: build a corpus folder (shards + meta.json) from a `DataConfig`.

The settings that made a corpus are recorded in `meta.source`; preparing again with the same
settings is a no-op, with different ones it is refused unless `overwrite` is set, so a corpus
that runs were trained on is never replaced by accident.
"""

from __future__ import annotations

import hashlib
import json
import logging
import contextlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf
from tqdm.auto import tqdm

from regmix.corpus import synthetic, text
from regmix.corpus.integrity import STAMP_NAME, verify_corpus
from regmix.corpus.config import DataConfig
from regmix.corpus.store import (
    META_NAME,
    TARGET_ROLE,
    TRAIN_ROLE,
    CorpusError,
    CorpusMeta,
    read_meta,
    shard_path,
    write_corpus,
)
from regmix.atomic_file import write_text_atomic
from regmix.corpus.tokenize import TOKENIZER_FILE, ByteTokenizer, HFTokenizer, build_tokenizer, check_tokenizer_config
from regmix.errors import RegmixError

log = logging.getLogger(__name__)

SOURCES = ("synthetic", "text")
UNFINISHED_NAME = ".preparing.json"
"""Written before the shards, removed after meta.json: the settings and domains of a build in progress."""


class PrepareError(RegmixError):
    """Settings that cannot build a corpus, or a corpus folder that must not be replaced."""


def resolve_data_config(cfg: DataConfig) -> DataConfig:
    """`cfg` with interpolations such as the default `dir: data/${.name}` resolved."""
    return OmegaConf.to_object(OmegaConf.structured(cfg))


def _check_config(cfg: DataConfig) -> None:
    if cfg.source not in SOURCES:
        raise PrepareError(f"unknown data.source={cfg.source!r}; use data.source=synthetic or data.source=text")
    check_tokenizer_config(cfg.tokenizer)
    if cfg.source == "synthetic" and cfg.tokenizer.kind != "bytes":
        raise PrepareError(
            f"the synthetic corpus is byte-level, but data.tokenizer.kind={cfg.tokenizer.kind!r}; "
            "use data.tokenizer.kind=bytes (or data=text for real text)"
        )
    if cfg.source == "text":
        if bool(cfg.paths) == bool(cfg.file):
            raise PrepareError(
                "data.source=text needs exactly one of +data.paths.<domain>=[files] or data.file=<table with a "
                f"{cfg.domain_field!r} column>"
            )
        if not 0.0 < cfg.val_fraction < 1.0:
            raise PrepareError(f"data.val_fraction={cfg.val_fraction}; use a share strictly between 0 and 1, e.g. 0.05")
        if cfg.txt_documents not in text.TXT_DOCUMENT_MODES:
            raise PrepareError(f"data.txt_documents={cfg.txt_documents!r}; use 'file' or 'blank_line'")
        for domain in cfg.paths:
            text.check_domain_name(domain)


def _tokenizer_settings(cfg: DataConfig) -> dict[str, Any]:
    tok = cfg.tokenizer
    if tok.kind == "bpe":
        return {"kind": "bpe", "vocab_size": tok.vocab_size, "min_frequency": tok.min_frequency}
    if tok.kind == "file":
        digest = hashlib.sha256(Path(tok.path).read_bytes()).hexdigest()[:12]
        return {"kind": "file", "path": str(tok.path), "sha": digest, "eos_token": tok.eos_token}
    return {"kind": tok.kind}


def prepare_settings(cfg: DataConfig, inputs: str | None = None) -> dict[str, Any]:
    """What identifies a corpus build (stored as meta.source): equal settings, equal corpus."""
    settings: dict[str, Any] = {
        "name": cfg.name,
        "source": cfg.source,
        "seed": cfg.seed,
        "tokenizer": _tokenizer_settings(cfg),
    }
    if cfg.source == "synthetic":
        settings["generator_version"] = synthetic.GENERATOR_VERSION
        settings["synthetic"] = asdict(cfg.synthetic)
    else:
        settings.update(
            val_fraction=cfg.val_fraction,
            paths={d: list(p) for d, p in cfg.paths.items()},
            file=cfg.file,
            text_field=cfg.text_field,
            domain_field=cfg.domain_field if cfg.file else None,
            targets=list(cfg.targets),
            txt_documents=cfg.txt_documents,
            text_suffixes=list(cfg.text_suffixes),
            inputs=inputs,
        )
    return json.loads(json.dumps(settings))  # the form it has after a round trip through meta.json


def _shards_intact(corpus_dir: Path, meta: CorpusMeta) -> bool:
    """Every shard has the size the meta says and the bytes its content hash names."""
    itemsize = np.dtype(meta.dtype).itemsize
    for domain, info in meta.domains.items():
        for split in ("train", "val"):
            path = shard_path(corpus_dir, domain, split)
            if not path.is_file() or path.stat().st_size != getattr(info, f"{split}_tokens") * itemsize:
                return False
    try:
        verify_corpus(corpus_dir, meta)
    except CorpusError:
        return False
    return True


def _existing_corpus(corpus_dir: Path, settings: dict[str, Any], overwrite: bool) -> CorpusMeta | None:
    """The corpus already there if it has exactly these settings (and no overwrite is asked);
    otherwise clears the old corpus when `overwrite`, or refuses."""
    if not corpus_dir.exists():
        return None
    if not corpus_dir.is_dir():
        raise PrepareError(f"data.dir={corpus_dir} is a file, not a folder; choose another data.dir")
    try:
        old = read_meta(corpus_dir) if (corpus_dir / META_NAME).exists() else None
    except CorpusError:
        old = None  # a damaged meta: treat the folder as an unfinished corpus
    if not overwrite and old is not None and old.source == settings and _shards_intact(corpus_dir, old):
        return old
    unfinished = _read_unfinished(corpus_dir) if old is None else None
    if unfinished is not None and unfinished.get("settings") == settings:
        # A build of these very settings was interrupted (Ctrl-C, kill, full disk): finish it.
        _remove_corpus(corpus_dir, list(unfinished.get("domains", [])))
        return None
    others = sorted(p.name for p in corpus_dir.iterdir())
    if not others:
        return None
    if not overwrite:
        if old is None:
            what = f"a folder that is not a finished corpus (holds {others[:5]})"
        else:
            changed = sorted(k for k in set(settings) | set(old.source) if settings.get(k) != old.source.get(k))
            what = (f"corpus {old.name!r} made with other settings (differ in: {', '.join(changed)})" if changed
                    else f"corpus {old.name!r} whose shards changed since it was prepared")
        raise PrepareError(
            f"data.dir={corpus_dir} already holds {what}; "
            "pass data.overwrite=true to rebuild it or choose another data.dir"
        )
    domains = list(old.domains) if old is not None else list((unfinished or {}).get("domains", []))
    _remove_corpus(corpus_dir, domains)
    return None


def _read_unfinished(corpus_dir: Path) -> dict[str, Any] | None:
    try:
        raw = json.loads((corpus_dir / UNFINISHED_NAME).read_text())
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) and isinstance(raw.get("domains"), list) else None


def _remove_corpus(corpus_dir: Path, domains: list[str]) -> None:
    """Remove only what a corpus consists of (meta, shards, tokenizer, stamp), meta first: a
    half-removed corpus never looks finished. Domain names come from a file on disk, so each is
    checked to be a plain folder of this corpus before anything is removed: a meta naming
    `/tmp/x` or `../y` must not delete those."""
    for domain in domains:
        folder = corpus_dir / domain
        bad = not isinstance(domain, str) or text.DOMAIN_NAME.fullmatch(domain) is None
        if bad or folder.is_symlink() or (folder.exists() and folder.resolve().parent != corpus_dir.resolve()):
            raise PrepareError(
                f"{corpus_dir / META_NAME} names domain {domain!r}, which is not a folder of this corpus; "
                f"nothing was removed: delete {corpus_dir} yourself or choose another data.dir"
            )
    (corpus_dir / META_NAME).unlink(missing_ok=True)
    for domain in domains:
        for split in ("train", "val"):
            shard_path(corpus_dir, domain, split).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # a folder holding files of the user's stays
            (corpus_dir / domain).rmdir()
    (corpus_dir / TOKENIZER_FILE).unlink(missing_ok=True)
    (corpus_dir / STAMP_NAME).unlink(missing_ok=True)
    (corpus_dir / UNFINISHED_NAME).unlink(missing_ok=True)


def _collect_text_files(cfg: DataConfig) -> list[Path]:
    if cfg.file:
        if not Path(cfg.file).is_file():
            raise text.TextSourceError(f"data.file {cfg.file} does not exist; fix data.file")
        return [Path(cfg.file)]
    unknown = sorted(set(cfg.targets) - set(cfg.paths))
    if unknown:
        raise PrepareError(f"data.targets names {unknown}, which data.paths lacks; known domains: {sorted(cfg.paths)}")
    files = []
    for domain, specs in cfg.paths.items():
        files.extend(text.resolve_paths(domain, specs, cfg.text_suffixes))
    return files


def _build_text(cfg: DataConfig):
    if cfg.file:
        documents = text.read_domain_file(cfg.file, text_field=cfg.text_field, domain_field=cfg.domain_field)
        unknown = sorted(set(cfg.targets) - set(documents))
        if unknown:
            raise PrepareError(
                f"data.targets names {unknown}, which {cfg.file} lacks; its domains: {sorted(documents)}"
            )
    else:
        files = {d: text.resolve_paths(d, specs, cfg.text_suffixes) for d, specs in cfg.paths.items()}
        documents = text.read_domain_paths(
            files, text_field=cfg.text_field, txt_documents=cfg.txt_documents, text_suffixes=cfg.text_suffixes
        )
    if not set(documents) - set(cfg.targets):
        raise PrepareError("every domain is in data.targets; leave at least one training domain out of it")
    roles = {d: TARGET_ROLE if d in cfg.targets else TRAIN_ROLE for d in documents}
    split_docs = {}
    for domain, docs in documents.items():
        if roles[domain] == TARGET_ROLE:
            split_docs[domain] = ([], docs)
        else:
            split_docs[domain] = text.split_documents(docs, val_fraction=cfg.val_fraction, seed=cfg.seed, domain=domain)
    train_docs = [doc for d, (train, _) in split_docs.items() if roles[d] == TRAIN_ROLE for doc in train]
    if cfg.tokenizer.kind == "bpe":
        chars = sum(min(len(doc), cfg.tokenizer.train_chars_per_document) for doc in train_docs)
        log.info("training a byte-level BPE (vocab %d) on %d documents, %.1f M characters",
                 cfg.tokenizer.vocab_size, len(train_docs), chars / 1e6)
    tokenizer = build_tokenizer(cfg.tokenizer, train_docs, total=len(train_docs))
    splits = {}
    for domain in split_docs:
        train, val = split_docs[domain]
        log.info("encoding %s: %d + %d documents", domain, len(train), len(val))
        splits[domain] = {"train": tokenizer.encode(train), "val": tokenizer.encode(val)}
    descriptions = {d: f"{len(documents[d])} documents from local text" for d in documents}
    return tokenizer, splits, roles, descriptions, {}


def prepare_corpus(cfg: DataConfig) -> CorpusMeta:
    """Build the corpus `cfg` describes in `cfg.dir` and return its meta.

    Same settings as the corpus already there: nothing is done. Other settings: refused
    (`PrepareError`) unless `cfg.overwrite`, which always rebuilds. User errors are `ValueError`s naming the fix.
    """
    cfg = resolve_data_config(cfg)
    _check_config(cfg)
    corpus_dir = Path(cfg.dir)
    inputs = text.fingerprint(_collect_text_files(cfg)) if cfg.source == "text" else None
    settings = prepare_settings(cfg, inputs)
    existing = _existing_corpus(corpus_dir, settings, cfg.overwrite)
    if existing is not None:
        log.info("corpus %r already prepared at %s with these settings (content %s); nothing to do",
                 existing.name, corpus_dir, existing.content_hash)
        return existing
    corpus_dir.mkdir(parents=True, exist_ok=True)
    if cfg.source == "synthetic":
        generated = synthetic.generate_synthetic(
            cfg.synthetic, cfg.seed, progress=lambda names: tqdm(names, desc="generate", unit="domain", disable=None)
        )
        tokenizer: ByteTokenizer | HFTokenizer = ByteTokenizer()
        splits, roles = generated.splits, generated.roles
        descriptions, target_blend = generated.descriptions, generated.target_blend
    else:
        tokenizer, splits, roles, descriptions, target_blend = _build_text(cfg)
    # Which settings and domains are being written: an interrupted build is finished by a rerun.
    write_text_atomic(corpus_dir / UNFINISHED_NAME, json.dumps({"settings": settings, "domains": list(splits)}))
    if isinstance(tokenizer, HFTokenizer):
        tokenizer.save(corpus_dir)
    meta = write_corpus(
        corpus_dir,
        name=cfg.name,
        tokenizer=tokenizer.info(),
        splits=splits,
        roles=roles,
        descriptions=descriptions,
        source=settings,
        target_blend=target_blend,
    )
    (corpus_dir / UNFINISHED_NAME).unlink()
    return meta


def format_domain_table(meta: CorpusMeta, eval_tokens: int | None = None) -> str:
    """A per-domain table of roles, token counts and prior shares, for humans; with `eval_tokens`
    it also says, for every domain, whether its validation split holds that evaluation slice."""
    prior = meta.token_prior()
    short = meta.eval_slice_shortfalls(eval_tokens) if eval_tokens else {}
    width = max(len("domain"), *(len(d) for d in meta.domains))
    slice_col = "  eval slice" if eval_tokens else ""
    lines = [f"{'domain':<{width}}  {'role':<6}  {'train tokens':>12}  {'val tokens':>10}  {'prior':>6}{slice_col}  description"]
    for domain, info in meta.domains.items():
        share = f"{prior[domain]:6.3f}" if domain in prior else f"{'-':>6}"
        counts = f"{info.train_tokens:>12,}  {info.val_tokens:>10,}"
        fits = f"  {('too short' if domain in short else 'fits'):<10}" if eval_tokens else ""
        lines.append(f"{domain:<{width}}  {info.role:<6}  {counts}  {share}{fits}  {info.description}")
    total_train = sum(m.train_tokens for m in meta.domains.values())
    total_val = sum(m.val_tokens for m in meta.domains.values())
    lines.append(f"{'total':<{width}}  {'':<6}  {total_train:>12,}  {total_val:>10,}")
    for target, blend in meta.target_blend.items():
        lines.append(f"target {target} = " + " + ".join(f"{w:g} {d}" for d, w in blend.items()))
    if eval_tokens:
        lines.append(eval_slice_summary(meta, eval_tokens))
    return "\n".join(lines)


def eval_slice_summary(meta: CorpusMeta, eval_tokens: int) -> str:
    """One line: does the evaluation slice fit every domain, and if not, which and what fits."""
    short = meta.eval_slice_shortfalls(eval_tokens)
    if not short:
        return f"eval slice eval.tokens_per_domain={eval_tokens:,} fits every domain"
    names = ", ".join(f"{d} ({n:,} val tokens)" for d, n in short.items())
    return (
        f"warning: eval.tokens_per_domain={eval_tokens} does not fit {len(short)} of {len(meta.eval_domains)} "
        f"domains: {names}; regmix-train will refuse them: train with eval.tokens_per_domain="
        f"{min(short.values()) - 1} or lower, or prepare with a larger data.val_fraction"
    )
