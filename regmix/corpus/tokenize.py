"""Tokenizers of `regmix-prepare`: bytes (no dependency), a byte-level BPE trained here, or a file.

Every tokenizer turns documents into one flat id stream per split, each document followed by
the end-of-document id, and describes itself as the meta's `tokenizer` dict
`{kind, vocab_size, eos_id, id}` (`id`: a short sha of the tokenizer's full definition, so
two corpora share token ids iff their ids are equal).
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from regmix.corpus.config import TokenizerConfig
from regmix.errors import RegmixError

TOKENIZER_FILE = "tokenizer.json"
"""Name of the HF tokenizer definition saved inside a corpus folder (kinds bpe and file)."""

BYTES_EOS_ID = 0
"""End-of-document id of the bytes tokenizer: the NUL byte, which real text practically never holds."""

BPE_EOS_TOKEN = "<|endoftext|>"
"""End-of-document token of a trained BPE (id 0), spelled as GPT-2/GPT-NeoX spell it."""

KNOWN_EOS_TOKENS = ("<|endoftext|>", "</s>", "<eos>", "<|end_of_text|>")
KINDS = ("bytes", "bpe", "file")

_ENCODE_CHUNK = 1024
"""Documents per encode_batch call (bounds peak memory on large domains)."""


class TokenizerError(RegmixError):
    """A tokenizer setting that cannot be used; the message names the value and the fix."""


class ByteTokenizer:
    """UTF-8 bytes as ids 0-255; documents end with id 0 (NUL)."""

    kind = "bytes"
    vocab_size = 256
    eos_id = BYTES_EOS_ID

    def encode(self, documents: Sequence[str]) -> np.ndarray:
        """One flat uint8 stream: each document's UTF-8 bytes then the eos id."""
        eos = bytes([self.eos_id])
        return np.frombuffer(b"".join(doc.encode("utf-8") + eos for doc in documents), dtype=np.uint8)

    def encode_documents(self, documents: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(flat ids, tokens per document): each document's ids then the eos id."""
        raw = [doc.encode("utf-8") for doc in documents]
        lengths = np.fromiter(map(len, raw), dtype=np.int64, count=len(raw)) + 1
        eos = bytes([self.eos_id])
        return np.frombuffer(eos.join(raw) + eos, dtype=np.uint8) if raw else np.zeros(0, np.uint8), lengths

    def info(self) -> dict[str, Any]:
        definition = f"bytes:utf-8:vocab={self.vocab_size}:eos={self.eos_id}"
        return _info(self.kind, self.vocab_size, self.eos_id, definition)


class HFTokenizer:
    """A HF `tokenizers.Tokenizer` (a BPE trained here, or one loaded from tokenizer.json)."""

    def __init__(self, tokenizer: Any, *, kind: str, eos_id: int) -> None:
        self.tokenizer = tokenizer
        self.kind = kind
        self.eos_id = int(eos_id)
        self.vocab_size = int(tokenizer.get_vocab_size(with_added_tokens=True))

    def encode(self, documents: Sequence[str]) -> np.ndarray:
        """One flat int64 stream: each document's ids then the eos id."""
        parts: list[np.ndarray] = []
        eos = np.array([self.eos_id], dtype=np.int64)
        for start in tqdm(
            range(0, len(documents), _ENCODE_CHUNK), desc="tokenize", unit="chunk", leave=False, disable=None
        ):
            batch = documents[start : start + _ENCODE_CHUNK]
            for enc in self.tokenizer.encode_batch(list(batch), add_special_tokens=False):
                parts.append(np.asarray(enc.ids, dtype=np.int64))
                parts.append(eos)
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def encode_documents(self, documents: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(flat uint32 ids, tokens per document): each document's ids then the eos id. One
        encode_batch call: the Rust side spreads the documents over every core."""
        lists = [enc.ids for enc in self._encode_batch(list(documents), add_special_tokens=False)]
        lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists)) + 1
        for ids in lists:
            ids.append(self.eos_id)
        flat = np.fromiter(itertools.chain.from_iterable(lists), dtype=np.uint32, count=int(lengths.sum()))
        return flat, lengths

    @property
    def _encode_batch(self):
        # encode_batch_fast (tokenizers >= 0.21) skips the character offsets nobody here reads.
        return getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)

    def save(self, corpus_dir: str | os.PathLike) -> None:
        """Write tokenizer.json into the corpus folder, so the corpus can be decoded on its own."""
        self.tokenizer.save(str(Path(corpus_dir) / TOKENIZER_FILE))

    def info(self) -> dict[str, Any]:
        out = _info(self.kind, self.vocab_size, self.eos_id, self.tokenizer.to_str())
        out["file"] = TOKENIZER_FILE
        return out


def _info(kind: str, vocab_size: int, eos_id: int, definition: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "vocab_size": int(vocab_size),
        "eos_id": int(eos_id),
        # No kind in the id: a BPE trained here and the same tokenizer.json loaded as kind=file
        # produce the same ids, so they must compare equal.
        "id": hashlib.sha256(definition.encode()).hexdigest()[:12],
    }


def check_tokenizer_config(cfg: TokenizerConfig) -> None:
    """Raise `TokenizerError` for settings that cannot work, before any data is read."""
    if cfg.kind not in KINDS:
        raise TokenizerError(f"unknown tokenizer kind {cfg.kind!r}; use data.tokenizer.kind=bytes, bpe or file")
    if cfg.kind == "bpe" and cfg.vocab_size < 257:
        raise TokenizerError(
            f"data.tokenizer.vocab_size={cfg.vocab_size} is too small for a byte-level BPE; "
            "use at least 257 (256 bytes + the eos token)"
        )
    if cfg.kind == "bpe" and cfg.train_chars_per_document < 1:
        raise TokenizerError(
            f"data.tokenizer.train_chars_per_document={cfg.train_chars_per_document}; use a positive count, e.g. 1000000"
        )
    if cfg.kind == "bpe" and cfg.train_chars < 1:
        raise TokenizerError(f"data.tokenizer.train_chars={cfg.train_chars}; use a positive count, e.g. 50000000")
    if cfg.kind == "file":
        if not cfg.path:
            raise TokenizerError("data.tokenizer.kind=file needs data.tokenizer.path=<tokenizer.json>")
        if not Path(cfg.path).is_file():
            raise TokenizerError(f"tokenizer file {cfg.path} does not exist; fix data.tokenizer.path")


def build_tokenizer(
    cfg: TokenizerConfig, training_documents: Iterable[str] = (), *, total: int | None = None
) -> ByteTokenizer | HFTokenizer:
    """The tokenizer `cfg` asks for; a BPE is trained on `training_documents` (the train split,
    `total` documents)."""
    check_tokenizer_config(cfg)
    if cfg.kind == "bytes":
        return ByteTokenizer()
    if cfg.kind == "bpe":
        return train_bpe(training_documents, vocab_size=cfg.vocab_size, min_frequency=cfg.min_frequency,
                         max_chars_per_document=cfg.train_chars_per_document, total=total)
    return load_tokenizer_file(cfg.path, eos_token=cfg.eos_token)


BPE_PIECE_CHARS = 4096
"""Characters per string handed to the BPE trainer. A run of text without whitespace is one
pre-token, and the trainer's cost grows with each pre-token's length times the merges: cutting
documents into pieces bounds it (one cut word per 4096 characters changes nothing measurable)."""


def bpe_training_pieces(documents: Iterable[str], *, max_chars: int, piece_chars: int = BPE_PIECE_CHARS):
    """What the BPE trainer reads: the first `max_chars` characters of each document, in pieces."""
    for doc in documents:
        doc = doc[:max_chars]
        for start in range(0, len(doc), piece_chars):
            yield doc[start : start + piece_chars]


def train_bpe(
    documents: Iterable[str],
    *,
    vocab_size: int,
    min_frequency: int = 2,
    max_chars_per_document: int = 1_000_000,
    total: int | None = None,
) -> HFTokenizer:
    """Train a byte-level BPE (GPT-2 style pre-tokenizer) locally; the eos token gets id 0.

    At most `max_chars_per_document` characters of each document train it (the whole document
    is still encoded); `total` (documents) sizes the progress bar.
    """
    import sys

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[BPE_EOS_TOKEN],
        # All 256 byte symbols up front: any text encodes, even bytes the training split lacks.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=sys.stderr.isatty(),  # the trainer's own bars (counting pairs, merges)
    )
    read = tqdm(documents, desc="train BPE: read documents", unit="doc", total=total, disable=None)
    tokenizer.train_from_iterator(bpe_training_pieces(read, max_chars=max_chars_per_document), trainer=trainer)
    return HFTokenizer(tokenizer, kind="bpe", eos_id=tokenizer.token_to_id(BPE_EOS_TOKEN))


def load_tokenizer_file(path: str | os.PathLike, *, eos_token: str | None = None) -> HFTokenizer:
    """A tokenizer.json (e.g. GPT-NeoX's) and its end-of-document token."""
    from tokenizers import Tokenizer

    if not Path(path).is_file():
        raise TokenizerError(f"tokenizer file {path} does not exist; fix data.tokenizer.path")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust side raises plain Exception subclasses
        raise TokenizerError(f"{path} is not a valid tokenizer.json ({exc}); give a HF tokenizers file") from None
    candidates = (eos_token,) if eos_token else KNOWN_EOS_TOKENS
    for token in candidates:
        eos_id = tokenizer.token_to_id(token)
        if eos_id is not None:
            return HFTokenizer(tokenizer, kind="file", eos_id=eos_id)
    raise TokenizerError(
        f"tokenizer {path} has no end-of-document token {list(candidates)}; "
        "name the one it has with data.tokenizer.eos_token=<token>"
    )
