"""Which documents a streaming prepare keeps (a token budget) and which it holds out (validation).

Both choices hang on a 64-bit hash of (seed, domain, the file's path relative to its domain's
files, the record's position in the file): reproducible, and independent of the order files are
listed or read in, of how a file is cut into batches, and of other files.

- Budget: a document is kept when its hash, read as a number in [0, 1), is below the domain's
  sampling rate (tokens wanted / tokens estimated).
- Validation: the split counts a domain's kept documents as they stream; a batch holding documents
  k0..k0+m-1 sends ceil((k0+m)·f) - ceil(k0·f) of them (those of smallest second hash) to
  validation, so a domain of n documents holds out exactly ceil(n·f), as the in-memory split did.
"""

from __future__ import annotations

import hashlib
import math
from fractions import Fraction

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_SECOND = np.uint64(0xD1B54A32D192ED03)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a bijection of uint64 whose outputs look uniform."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def file_key(seed: int, domain: str, relative_path: str) -> int:
    """The hash seed of one input file."""
    digest = hashlib.blake2b(f"{seed}\0{domain}\0{relative_path}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def record_hashes(key: int, first: int, n: int) -> np.ndarray:
    """uint64 hashes of records first..first+n-1 of the file with `file_key` `key`."""
    with np.errstate(over="ignore"):
        positions = np.arange(first, first + n, dtype=np.uint64) * _GOLDEN
    return _mix(positions ^ np.uint64(key))


def unit_interval(hashes: np.ndarray) -> np.ndarray:
    """The hashes as floats in [0, 1) (their top 53 bits)."""
    return (hashes >> np.uint64(11)).astype(np.float64) * 2.0**-53


def kept(hashes: np.ndarray, rate: float) -> np.ndarray:
    """The budget's choice: True where a record is in the sample of `rate` (1 keeps every record)."""
    if rate >= 1.0:
        return np.ones(len(hashes), dtype=bool)
    return unit_interval(hashes) < rate


class ValidationSplit:
    """Streams a domain's documents into train/val, holding out exactly ceil(n · fraction)."""

    def __init__(self, fraction: float, seen: int = 0) -> None:
        # An exact fraction: ceil(20 * 0.05) must be 1, not 2 as the binary float 0.05 makes it.
        self.fraction = Fraction(fraction).limit_denominator(1_000_000)
        self.seen = seen

    def _held_out_before(self, k: int) -> int:
        return math.ceil(k * self.fraction)

    def take(self, hashes: np.ndarray) -> np.ndarray:
        """True for the documents (of this batch, in order) that go to validation."""
        m = len(hashes)
        n_val = self._held_out_before(self.seen + m) - self._held_out_before(self.seen)
        self.seen += m
        out = np.zeros(m, dtype=bool)
        if n_val:
            out[np.argsort(_mix(hashes ^ _SECOND), kind="stable")[:n_val]] = True
        return out
