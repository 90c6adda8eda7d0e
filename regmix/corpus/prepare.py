"""`regmix-prepare`'s work: build a corpus folder (shards + meta.json) from a `DataConfig`.

The settings that made a corpus are recorded in `meta.source`; preparing again with the same
settings is a no-op, with different ones it is refused unless `overwrite` is set, so a corpus
that runs were trained on is never replaced by accident.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf
from tqdm.auto import tqdm

from regmix.corpus import layout, pretokenized, stream, synthetic, text
from regmix.corpus.integrity import STAMP_NAME, hash_shards, verify_corpus
from regmix.corpus.config import DataConfig
from regmix.corpus.store import (
    META_NAME,
    TARGET_ROLE,
    TRAIN_ROLE,
    CorpusError,
    CorpusMeta,
    DomainMeta,
    read_meta,
    shard_path,
    write_corpus,
    write_meta,
)
from regmix.atomic_file import write_text_atomic
from regmix.corpus.tokenize import (
    BPE_EOS_TOKEN,
    BPE_PIECE_CHARS,
    TOKENIZER_FILE,
    ByteTokenizer,
    HFTokenizer,
    build_tokenizer,
    check_tokenizer_config,
    load_tokenizer_file,
    train_bpe,
)
from regmix.errors import RegmixError

log = logging.getLogger(__name__)

SOURCES = ("synthetic", "text", "pretokenized")
UNFINISHED_NAME = ".preparing.json"
"""Written before the shards, removed after meta.json: the settings and domains of a build in progress."""


class PrepareError(RegmixError):
    """Settings that cannot build a corpus, or a corpus folder that must not be replaced."""


def resolve_data_config(cfg: DataConfig) -> DataConfig:
    """`cfg` with interpolations such as the default `dir: data/${.name}` resolved."""
    return OmegaConf.to_object(OmegaConf.structured(cfg))


def _check_config(cfg: DataConfig) -> None:
    if cfg.source not in SOURCES:
        raise PrepareError(f"unknown data.source={cfg.source!r}; use data.source=synthetic, text or pretokenized")
    check_tokenizer_config(cfg.tokenizer)
    if cfg.source == "synthetic" and cfg.tokenizer.kind != "bytes":
        raise PrepareError(
            f"the synthetic corpus is byte-level, but data.tokenizer.kind={cfg.tokenizer.kind!r}; "
            "use data.tokenizer.kind=bytes (or data=text for real text)"
        )
    if cfg.source == "pretokenized":
        pretokenized.check_config(cfg)
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
        if cfg.max_tokens_per_domain is not None and cfg.max_tokens_per_domain < 1:
            raise PrepareError(
                f"data.max_tokens_per_domain={cfg.max_tokens_per_domain}; use a positive count, e.g. 20000000, "
                "or null for every token"
            )


def _tokenizer_settings(cfg: DataConfig) -> dict[str, Any]:
    tok = cfg.tokenizer
    if tok.kind == "bpe":
        return {"kind": "bpe", "vocab_size": tok.vocab_size, "min_frequency": tok.min_frequency,
                "train_chars": tok.train_chars, "train_chars_per_document": tok.train_chars_per_document}
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
            max_tokens_per_domain=cfg.max_tokens_per_domain,
            inputs=inputs,
        )
        if cfg.source == "pretokenized":
            settings["token_dtype"] = cfg.token_dtype
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
        # A build of these very settings was interrupted (Ctrl-C, kill, full disk): finish it,
        # from its last stamped file (regmix.corpus.stream).
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
    parts = corpus_dir / stream.PARTS_DIR
    if parts.is_dir() and not parts.is_symlink():
        shutil.rmtree(parts)


def _text_units(cfg: DataConfig) -> tuple[list[stream.Unit], list[str]]:
    """The input files of a text corpus in reading order, and the domains known before reading."""
    if cfg.file:
        path = Path(cfg.file)
        if not path.is_file():
            raise text.TextSourceError(f"data.file {cfg.file} does not exist; fix data.file")
        fmt = text.file_format(path)
        if fmt is None or fmt == "txt":
            raise text.TextSourceError(
                f"unknown format of data.file {path} (suffix {path.suffix or 'none'!r}); "
                "use a .jsonl(.gz/.zst), .parquet, .csv or .arrow file"
            )
        return [stream.Unit(path, fmt, None, path.name, path.stat().st_size)], []
    unknown = sorted(set(cfg.targets) - set(cfg.paths))
    if unknown:
        raise PrepareError(f"data.targets names {unknown}, which data.paths lacks; known domains: {sorted(cfg.paths)}")
    units = []
    for domain, specs in cfg.paths.items():
        files = text.resolve_paths(domain, specs, cfg.text_suffixes)
        # Sampling names a file by its path below the domain's files: moving the corpus elsewhere,
        # or listing its files in another order, samples the same documents.
        root = os.path.commonpath([str(p.resolve().parent) for p in files])
        for path in files:
            key = os.path.relpath(path.resolve(), root)
            units.append(stream.Unit(path, text.file_format(path, cfg.text_suffixes), domain, key, path.stat().st_size))
    if not set(cfg.paths) - set(cfg.targets):
        raise PrepareError("every domain is in data.targets; leave at least one training domain out of it")
    return units, list(cfg.paths)


def _read_options(cfg: DataConfig) -> stream.ReadOptions:
    return stream.ReadOptions(text_field=cfg.text_field, domain_field=cfg.domain_field, txt_documents=cfg.txt_documents)


def _earlier_plan(corpus_dir: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The plan of an interrupted prepare of these very settings, whose work a rerun goes on with."""
    try:
        plan = json.loads((corpus_dir / stream.PARTS_DIR / stream.PLAN_NAME).read_text())
    except (OSError, ValueError):
        return None
    return plan if isinstance(plan, dict) and plan.get("settings") == settings else None


def _text_tokenizer(cfg: DataConfig, corpus_dir: Path, units, opts, raw: dict[str, int] | None,
                    earlier: dict[str, Any] | None) -> ByteTokenizer | HFTokenizer:
    """The tokenizer of the pass: the BPE an interrupted run trained (same plan), or a new one."""
    if cfg.tokenizer.kind == "bpe" and earlier is not None and (corpus_dir / TOKENIZER_FILE).is_file():
        loaded = load_tokenizer_file(corpus_dir / TOKENIZER_FILE, eos_token=BPE_EOS_TOKEN)
        resumed = HFTokenizer(loaded.tokenizer, kind="bpe", eos_id=loaded.eos_id)
        if resumed.info()["id"] == earlier.get("tokenizer", {}).get("id"):
            return resumed
    if cfg.tokenizer.kind != "bpe":
        return build_tokenizer(cfg.tokenizer)
    train_domains = [d for d in dict.fromkeys(u.domain for u in units) if d is not None and d not in cfg.targets]
    sizes = raw or {d: sum(u.size for u in units if u.domain == d) for d in train_domains}
    if cfg.file:  # domains are known only from the rows: one quota over the file's training rows
        quotas: dict[str | None, int] = {None: cfg.tokenizer.train_chars}
    else:
        total = sum(sizes.get(d, 0) for d in train_domains) or 1
        quotas = {d: max(1, int(cfg.tokenizer.train_chars * sizes.get(d, 0) / total)) for d in train_domains}
    log.info("training a byte-level BPE (vocab %d) on at most %.1f M characters from %d domains",
             cfg.tokenizer.vocab_size, cfg.tokenizer.train_chars / 1e6, len(quotas))
    pieces = stream.training_sample(units, opts, quotas, targets=list(cfg.targets),
                                    max_chars_per_document=cfg.tokenizer.train_chars_per_document,
                                    piece_chars=BPE_PIECE_CHARS)
    return train_bpe(pieces, vocab_size=cfg.tokenizer.vocab_size, min_frequency=cfg.tokenizer.min_frequency)


def _sampling_rates(cfg: DataConfig, units, opts, tokenizer, raw: dict[str, int]) -> dict[str, float]:
    """domain -> share of its documents a token budget keeps: the budget over the domain's
    estimated tokens (its raw bytes times the tokens per byte of its first documents)."""
    budget = cfg.max_tokens_per_domain
    per_byte = stream.probe_tokens_per_byte(units, opts, tokenizer, sorted(raw))
    rates = {}
    for domain, nbytes in raw.items():
        share = 1.0 if domain in cfg.targets else 1.0 - cfg.val_fraction  # a target's tokens all go to val
        estimate = nbytes * per_byte.get(domain, 0.0) * share
        rates[domain] = 1.0 if estimate <= budget else budget / estimate
    return rates


def _prepare_text(cfg: DataConfig, corpus_dir: Path, settings: dict[str, Any]) -> CorpusMeta:
    """Stream the text inputs into shards (resuming an interrupted run) and write meta.json."""
    units, domains = _text_units(cfg)
    opts = _read_options(cfg)
    budget = cfg.max_tokens_per_domain
    earlier = _earlier_plan(corpus_dir, settings)
    write_text_atomic(corpus_dir / UNFINISHED_NAME, json.dumps({"settings": settings, "domains": domains}))
    raw = (earlier or {}).get("raw_bytes") if earlier else None
    if budget is not None and raw is None:
        raw = stream.scan_raw_bytes(units, opts)
    tokenizer = _text_tokenizer(cfg, corpus_dir, units, opts, raw, earlier)
    if isinstance(tokenizer, HFTokenizer):
        tokenizer.save(corpus_dir)
    if earlier is not None and earlier.get("tokenizer", {}).get("id") == tokenizer.info()["id"]:
        rates = earlier.get("rates", {})
    else:
        rates = _sampling_rates(cfg, units, opts, tokenizer, raw) if budget is not None else {}
    plan = {"settings": settings, "tokenizer": tokenizer.info(), "raw_bytes": raw, "rates": rates}
    dtype = np.dtype(np.uint16 if tokenizer.vocab_size <= np.iinfo(np.uint16).max + 1 else np.uint32)
    for domain in domains:
        log.info("encoding %s: %d files%s", domain, sum(u.domain == domain for u in units),
                 f", {rates[domain]:.2%} of documents for the budget" if rates.get(domain, 1.0) < 1.0 else "")
    tallies = stream.run_pass(
        corpus_dir, units, tokenizer, dtype, opts,
        stream.PassSettings(seed=cfg.seed, val_fraction=cfg.val_fraction, targets=list(cfg.targets),
                            rates=rates, max_tokens=budget),
        plan, known_domains=domains,
    )
    if cfg.file:
        if not any(t.documents for t in tallies.values()):
            raise text.TextSourceError(f"data.file {cfg.file} has no non-empty documents; give it text")
        unknown = sorted(set(cfg.targets) - set(tallies))
        if unknown:
            raise PrepareError(f"data.targets names {unknown}, which {cfg.file} lacks; its domains: {sorted(tallies)}")
        domains = sorted(tallies)
        if not set(domains) - set(cfg.targets):
            raise PrepareError("every domain is in data.targets; leave at least one training domain out of it")
        write_text_atomic(corpus_dir / UNFINISHED_NAME, json.dumps({"settings": settings, "domains": domains}))
    metas = {}
    for domain in domains:
        tally, target = tallies[domain], domain in cfg.targets
        stream.raise_for_empty(domain, tally, target=target, budgeted=budget is not None)
        sampled = budget is not None and (rates.get(domain, 1.0) < 1.0 or tally.train_tokens >= budget)
        description = f"{tally.documents} documents from local text"
        prior = 0
        if sampled and not target:
            prior = round(tally.raw_bytes * tally.tokens_per_byte * (1.0 - cfg.val_fraction))
            description += f" (a sample: {rates.get(domain, 1.0):.2%} of its documents, for the token budget)"
        metas[domain] = DomainMeta(role=TARGET_ROLE if target else TRAIN_ROLE, train_tokens=tally.train_tokens,
                                   val_tokens=tally.val_tokens, description=description,
                                   prior_tokens=prior, prior_estimated=bool(prior))
    meta = CorpusMeta(name=cfg.name, tokenizer=tokenizer.info(), dtype=dtype.name, domains=metas, source=settings)
    meta.content_hash, per_shard = hash_shards(corpus_dir, meta)
    write_meta(corpus_dir, meta, per_shard)
    stream.finish_pass(corpus_dir)
    return meta


def prepare_corpus(cfg: DataConfig) -> CorpusMeta:
    """Build the corpus `cfg` describes in `cfg.dir` and return its meta.

    Same settings as the corpus already there: nothing is done. Other settings: refused
    (`PrepareError`) unless `cfg.overwrite`, which always rebuilds. User errors are `ValueError`s naming the fix.
    """
    cfg = layout.expand_domains_dir(resolve_data_config(cfg))  # data.domains_dir -> data.paths
    _check_config(cfg)
    corpus_dir = Path(cfg.dir)
    inputs = text.fingerprint(u.path for u in _text_units(cfg)[0]) if cfg.source == "text" else None
    if cfg.source == "pretokenized":
        inputs = text.fingerprint(pretokenized.input_files(cfg))
    settings = prepare_settings(cfg, inputs)
    existing = _existing_corpus(corpus_dir, settings, cfg.overwrite)
    if existing is not None:
        log.info("corpus %r already prepared at %s with these settings (content %s); nothing to do",
                 existing.name, corpus_dir, existing.content_hash)
        return existing
    corpus_dir.mkdir(parents=True, exist_ok=True)
    if cfg.source == "pretokenized":  # the token files are copied in pieces, never held in memory
        write_text_atomic(corpus_dir / UNFINISHED_NAME, json.dumps({"settings": settings, "domains": list(cfg.paths)}))
        meta = pretokenized.write_pretokenized(cfg, corpus_dir, source=settings)
    elif cfg.source == "text":
        meta = _prepare_text(cfg, corpus_dir, settings)
    else:
        meta = _prepare_synthetic(cfg, corpus_dir, settings)
    (corpus_dir / UNFINISHED_NAME).unlink()
    return meta


def _prepare_synthetic(cfg: DataConfig, corpus_dir: Path, settings: dict[str, Any]) -> CorpusMeta:
    generated = synthetic.generate_synthetic(
        cfg.synthetic, cfg.seed, progress=lambda names: tqdm(names, desc="generate", unit="domain", disable=None)
    )
    # Which settings and domains are being written: an interrupted build is finished by a rerun.
    write_text_atomic(corpus_dir / UNFINISHED_NAME, json.dumps({"settings": settings, "domains": list(generated.splits)}))
    return write_corpus(
        corpus_dir,
        name=cfg.name,
        tokenizer=ByteTokenizer().info(),
        splits=generated.splits,
        roles=generated.roles,
        descriptions=generated.descriptions,
        source=settings,
        target_blend=generated.target_blend,
    )


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
