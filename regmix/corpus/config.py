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
    eos_token: Optional[str] = None
    """kind=file: the end-of-document token; None = the first of <|endoftext|>, </s>, <eos>,
    <|end_of_text|> that the tokenizer knows."""
    min_frequency: int = 2
    """kind=bpe: a pair must occur this often in the training split to become a merge."""
    train_chars: int = 50_000_000
    """kind=bpe: characters the BPE trains on in all (50M: a few minutes and ~1-2 GB of trainer
    memory), taken from the training domains in proportion to their size, from the start of each
    file. A corpus's whole text would cost hours and memory that grows with the corpus."""
    train_chars_per_document: int = 1_000_000
    """kind=bpe: characters of one document (its start) that train the BPE; the whole document is
    still encoded. Bounds the trainer: one 50 MB line ran it for 600 s+ and 2.9 GB without a cap."""


@dataclass
class SyntheticConfig:
    """The embedded synthetic corpus (source=synthetic). Its per-domain token counts are chosen
    so that the token prior does NOT favour the target's domains (see regmix/corpus/synthetic.py)."""

    train_scale: float = 1.0
    """Multiplies every domain's default training tokens (0.2M-1.5M each, 6.7M in all at 1.0)."""
    train_tokens: Dict[str, int] = field(default_factory=dict)
    """Per-domain overrides of training tokens (domain -> tokens, before train_scale)."""
    val_tokens: int = 131_072
    """Validation tokens of every domain, the target included (an eval slice of 64k fits twice)."""


@dataclass
class DataConfig:
    """A prepared corpus: `dir` holds meta.json and <domain>/{train,val}.bin."""

    name: str = "synthetic"
    dir: str = "data/${.name}"
    source: str = "synthetic"
    """'synthetic' (the embedded default, generated from `seed`), 'text' (local files) or
    'pretokenized' (token files made elsewhere, with their tokenizer.json: regmix/corpus/pretokenized.py)."""
    seed: int = 0
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    val_fraction: float = 0.05
    """Share of each domain's documents held out for validation (text sources)."""
    paths: Dict[str, List[str]] = field(default_factory=dict)
    """source=text: domain -> list of files/folders/globs (txt, jsonl[.gz|.zst], parquet, csv, arrow;
    a `datasets.save_to_disk` folder is a folder of arrow shards)."""
    file: Optional[str] = None
    """source=text: one jsonl/parquet/csv file with a domain column (instead of `paths`)."""
    text_field: str = "text"
    domain_field: str = "domain"
    max_tokens_per_domain: Optional[int] = None
    """source=text or pretokenized: prepare at most this many training tokens per domain (None = all), from
    documents sampled by a hash of their file and position. The token prior in meta.json still
    describes the whole domains (estimated, and marked so)."""
    overwrite: bool = False
    """Rebuild an existing corpus folder (refused by default)."""
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    """source=synthetic: sizes of the generated corpus."""
    targets: List[str] = field(default_factory=list)
    """source=text: domains evaluated only (role 'target': all their documents go to val)."""
    txt_documents: str = "file"
    """source=text, plain-text files: 'file' (one document per file) or 'blank_line'
    (one document per block separated by an empty line)."""
    text_suffixes: List[str] = field(default_factory=list)
    """source=text: extra file suffixes read as plain text besides .txt/.text/.md (e.g. ['.py'])."""
    domains_dir: Optional[str] = None
    """source=text or pretokenized, instead of `paths`: a folder whose subfolders are the domains (or
    whose files are named <domain>-<N>.<suffix>, as RegMix's released data; regmix/corpus/layout.py)."""
    token_dtype: str = "uint16"
    """source=pretokenized: dtype of raw token files (.bin, and .npy without a NumPy header):
    uint16 (nanoGPT, GPT-2/NeoX vocabularies) or uint32 (vocabularies over 65,536)."""


@dataclass
class EvalConfig:
    """The fixed validation slice every run is scored on (same tokens for every run).

    Lives beside the corpus config because `regmix-prepare` checks it too: it reports, for every
    domain, whether its validation split holds the slice."""

    tokens_per_domain: int = 65_536
    """Validation tokens per domain: the first tokens of each val split. CPU-sized (64k, about
    1 s of evaluation per domain for a tiny proxy); the paper's ~1.6M is in experiment=paper_1m."""
    batch_size: int = 64
    """Sequences per evaluation forward pass."""
    seq_len: Optional[int] = None
    """None = train.seq_len."""


@dataclass
class PrepareAppConfig:
    """`regmix-prepare`: build a corpus folder (shards + meta.json) from `data`."""

    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    """The evaluation slice training will use (`eval.tokens_per_domain`, as regmix-train takes it):
    prepare says which domains' validation splits hold it."""
