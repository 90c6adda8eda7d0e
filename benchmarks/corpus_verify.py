"""What checking a corpus's content hash costs before a run: full hash vs the stat fast path.

Writes a byte corpus of `--mb` MB (8 domains), then times, on the same files in the same run:
reading meta.json (the baseline every run already pays), the full sha256 of every shard (what a
run pays when a shard's size or mtime changed) and the fast path (one stat per shard, what a run
pays otherwise). Prints seconds and each as a ratio of the baseline.

    python benchmarks/corpus_verify.py [--mb 256]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from regmix.corpus.integrity import STAMP_NAME, verify_corpus
from regmix.corpus.store import read_meta, write_corpus


def best_of(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256, help="corpus size in MB (bytes tokenizer: 1 token = 1 byte)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    per_domain = args.mb * 2**20 // 8
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "c"
        splits = {f"d{i}": {"train": rng.integers(1, 256, per_domain * 19 // 20, dtype=np.uint8),
                            "val": rng.integers(1, 256, per_domain // 20, dtype=np.uint8)} for i in range(8)}
        write_corpus(corpus, name="bench", tokenizer={"kind": "bytes", "vocab_size": 256, "eos_id": 0, "id": "b"},
                     splits=splits)
        del splits
        meta = read_meta(corpus)
        baseline = best_of(lambda: read_meta(corpus))

        def full() -> None:
            os.unlink(corpus / STAMP_NAME)  # no stamp: hash every shard (then stamp again)
            assert verify_corpus(corpus, meta) is False

        full_s = best_of(full, repeat=3)
        fast_s = best_of(lambda: verify_corpus(corpus, meta))
        assert verify_corpus(corpus, meta) is True
        print(f"corpus {args.mb} MB in 16 shards")
        print(f"read meta.json (baseline): {baseline * 1e3:9.3f} ms  x1")
        print(f"fast path (stat):          {fast_s * 1e3:9.3f} ms  x{fast_s / baseline:.1f}")
        print(f"full sha256:               {full_s * 1e3:9.3f} ms  x{full_s / baseline:.0f}  "
              f"({args.mb / full_s:.0f} MB/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
