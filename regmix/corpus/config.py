"""Typed config of a corpus: where it lives and how `regmix-prepare` builds it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional


@dataclass
class TokenizerConfig:
    kind: str = "bytes"
    """'bytes' (256 ids, no dependency), 'bpe' (byte-level BPE trained here with HF tokenizers)
    or 'file' (a tokenizer.json at `path`, e.g. GPT-NeoX's)."""
    vocab_size: int = 8192
    """Vocabulary of a trained BPE."""
    path: Optional[str] = None
    """tokenizer.json for kind=file."""


@dataclass
class DataConfig:
    """A prepared corpus: `dir` holds meta.json and <domain>/{train,val}.bin."""

    name: str = "synthetic"
    dir: str = "data/${.name}"
    source: str = "synthetic"
    """'synthetic' (the embedded default, generated from `seed`) or 'text' (local files)."""
    seed: int = 0
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    val_fraction: float = 0.05
    """Share of each domain's documents held out for validation (text sources)."""
    paths: Dict[str, List[str]] = field(default_factory=dict)
    """source=text: domain -> list of files/folders/globs (txt, jsonl, parquet)."""
    file: Optional[str] = None
    """source=text: one jsonl/parquet/csv file with a domain column (instead of `paths`)."""
    text_field: str = "text"
    domain_field: str = "domain"
    overwrite: bool = False
    """Rebuild an existing corpus folder (refused by default)."""
