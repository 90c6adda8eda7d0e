"""Is a prepared corpus still the one its meta describes? (`content_hash` checked, cheaply.)

A run records its corpus's `content_hash`; shards overwritten after prepare (same size, other
bytes) would otherwise be trained on under the old hash. Hashing every shard before every run
costs a read of the whole corpus (about 1 s per GB), so a stamp file remembers the size and
mtime of every shard when their bytes last matched the hash: while those are unchanged the check
is one `stat` per shard; when any changed, the shards are hashed again and the stamp renewed.
A writer that keeps size and mtime (e.g. `touch -r`) is not caught; a re-prepare always is.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from regmix.corpus.store import SPLITS, STAMP_NAME, CorpusError, CorpusMeta, shard_path, shard_stats, write_stamp
_CHUNK = 1 << 20  # bytes per read while hashing


def _shards(corpus_dir: Path, meta: CorpusMeta) -> list[tuple[str, str, Path]]:
    return [(domain, split, shard_path(corpus_dir, domain, split)) for domain in meta.domains for split in SPLITS]


def hash_shards(corpus_dir: str | os.PathLike, meta: CorpusMeta) -> tuple[str, dict[str, str]]:
    """The corpus content hash as `write_corpus` computes it, and a sha256 per shard."""
    corpus_dir = Path(corpus_dir)
    total = hashlib.sha256()
    per_shard = {}
    for domain, split, path in _shards(corpus_dir, meta):
        one = hashlib.sha256()
        total.update(domain.encode() + split.encode())
        try:
            with open(path, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    total.update(chunk)
                    one.update(chunk)
        except FileNotFoundError:
            raise CorpusError(f"shard {path} is missing; rebuild the corpus with regmix-prepare ... data.overwrite=true") from None
        per_shard[f"{domain}/{split}"] = one.hexdigest()
    return total.hexdigest()[:16], per_shard


def _read_stamp(corpus_dir: Path) -> dict:
    try:
        stamp = json.loads((corpus_dir / STAMP_NAME).read_text())
        return stamp if isinstance(stamp, dict) and isinstance(stamp.get("shards"), dict) else {}
    except (OSError, ValueError):
        return {}


def verify_corpus(corpus_dir: str | os.PathLike, meta: CorpusMeta) -> bool:
    """Raise `CorpusError` when the shards no longer match `meta.content_hash`.

    Returns True when the fast path (sizes and mtimes as stamped) sufficed, False when it hashed.
    """
    corpus_dir = Path(corpus_dir)
    stamp = _read_stamp(corpus_dir)
    stats = shard_stats(corpus_dir, meta)
    known = stamp.get("shards", {})
    if (stats is not None and stamp.get("content_hash") == meta.content_hash
            and all(known.get(key, [None, None])[:2] == value for key, value in stats.items())):
        return True
    digest, per_shard = hash_shards(corpus_dir, meta)
    if digest != meta.content_hash:
        changed = sorted(key for key, sha in per_shard.items() if key in known and known[key][2:] != [sha])
        which = ", ".join(changed) if changed else "its shards"
        raise CorpusError(
            f"corpus {meta.name!r} at {corpus_dir} changed since it was prepared ({which} no longer match "
            f"content hash {meta.content_hash}); rebuild it with regmix-prepare ... data.overwrite=true"
        )
    write_stamp(corpus_dir, meta, per_shard)
    return False
