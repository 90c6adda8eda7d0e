"""A corpus of random byte tokens written straight into the store: for tests that train a run and
care about its mechanics (resume, identity, prefetch), not about what the text says."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from regmix.corpus.store import write_corpus

BYTES_TOKENIZER = {"kind": "bytes", "vocab_size": 256, "eos_id": 0, "id": "bytes"}


def random_byte_corpus(root: Path, *, name: str, domains: Iterable[str], train_tokens: int, val_tokens: int,
                       seed: int = 0) -> Path:
    """Each domain: `train_tokens` and `val_tokens` uniform ids in 1..255 (0 is EOS), drawn in domain order."""
    rng = np.random.default_rng(seed)
    splits = {d: {"train": rng.integers(1, 256, train_tokens), "val": rng.integers(1, 256, val_tokens)}
              for d in domains}
    write_corpus(root, name=name, tokenizer=BYTES_TOKENIZER, splits=splits)
    return root
