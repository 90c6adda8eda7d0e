"""Does `regmix-prepare` stay in bounded memory and near the tokenizer's own speed as a corpus grows?

Builds its own text in a temporary folder: a small input (>= 0.5 GB) and a large one (4.4x that),
each one large domain (`web`, several .jsonl files) and a small one (`code`, a tenth of the
size, other words). Prepares each with the BPE tokenizer in a fresh process and reports:

- peak resident memory of each prepare (the process's ru_maxrss, from wait4);
- the tokenization rate of the streaming pass (tokens/s, as the prepare logs it) against the
  ceiling of this machine in this run: HF `tokenizers` batch-encoding documents of the same
  corpus from memory with the same tokenizer.json (its best of encode_batch and encode_batch_fast);
- the large input prepared again with data.max_tokens_per_domain=20000000: wall-clock speedup,
  training tokens per domain, and its estimated prior against the full prepare's.

Gates (the issue's): both RSS <= 2048 MB, large within 1.3x of small, rate_vs_ceiling >= 0.7,
budgeted >= 5x faster, budgeted prior within 0.01. The last line is exactly
`prepare: rss_mb_small=<n> rss_mb_large=<n> rate_vs_ceiling=<f>`.

    python benchmarks/prepare_scale.py [--small-gb 0.55] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent
BUDGET = 20_000_000
FILE_MB = 256
"""Size of one .jsonl file of the large domain (a folder of shards, as corpora come)."""


def _vocabulary(rng: np.random.Generator, n: int, letters: str) -> list[str]:
    lengths = rng.integers(2, 10, n)
    alphabet = np.array(list(letters))
    return ["".join(rng.choice(alphabet, k)) for k in lengths]


def write_domain(folder: Path, total_bytes: int, *, seed: int, letters: str, zipf: float) -> None:
    """jsonl files of documents (100-1500 words) of Zipf-distributed words from a vocabulary of
    10k, `FILE_MB` MB per file."""
    rng = np.random.default_rng(seed)
    words = _vocabulary(rng, 10_000, letters)
    folder.mkdir(parents=True)
    written, index = 0, 0
    fh = None
    while written < total_bytes:
        if fh is None or fh.tell() >= FILE_MB << 20:
            if fh:
                fh.close()
            fh = open(folder / f"part-{index:04d}.jsonl", "w")
            index += 1
        ids = (np.minimum(rng.zipf(zipf, 1_000_000), len(words)) - 1).tolist()
        text = [words[i] for i in ids]
        cuts = np.cumsum(rng.integers(100, 1500, 2000)).tolist()
        lines, start = [], 0
        for end in cuts:
            if end >= len(text):
                break
            lines.append('{"text": "' + " ".join(text[start:end]) + '"}\n')
            start = end
        chunk = "".join(lines)
        fh.write(chunk)
        written += len(chunk)
    fh.close()


def make_input(root: Path, gb: float) -> Path:
    total = int(gb * 2**30)
    write_domain(root / "web", total * 10 // 11, seed=1, letters="etaoinshrdlucmfwyp", zipf=1.2)
    write_domain(root / "code", total // 11, seed=2, letters="abcdefxyz_(){}=;", zipf=1.4)
    return root


def prepare(inputs: Path, corpus: Path, *extra: str) -> dict:
    """One regmix-prepare in a fresh process: wall seconds, peak RSS (MB) and the pass's tokens/s."""
    command = [str(BIN / "regmix-prepare"), "data=text", f"data.dir={corpus}", "data.tokenizer.kind=bpe",
               f"+data.paths.web=[{inputs / 'web'}]", f"+data.paths.code=[{inputs / 'code'}]",
               "hydra.run.dir=.", "hydra.output_subdir=null", *extra]
    log = corpus.parent / f"{corpus.name}.log"
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=corpus.parent)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    text = log.read_text()
    if status != 0:
        sys.exit(f"regmix-prepare failed ({status}):\n{text[-3000:]}")
    rate = [float(m) for m in re.findall(r"tokenized .* at ([0-9.]+) tokens/s", text)]
    meta = json.loads((corpus / "meta.json").read_text())
    return {"wall": wall, "rss_mb": usage.ru_maxrss / 1024, "rate": rate[-1] if rate else float("nan"), "meta": meta}


def ceiling(inputs: Path, tokenizer_json: Path, max_bytes: int = 256 << 20) -> float:
    """tokens/s of HF tokenizers batch-encoding the first `max_bytes` of the large domain's
    documents, already in memory, 1024 documents a call (the best of encode_batch and _fast)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    docs, size = [], 0
    for path in sorted((inputs / "web").glob("*.jsonl")):
        with open(path) as fh:
            for line in fh:
                docs.append(json.loads(line)["text"])
                size += len(line)
                if size >= max_bytes:
                    break
        if size >= max_bytes:
            break
    best = 0.0
    for name in ("encode_batch", "encode_batch_fast"):
        encode = getattr(tok, name, None)
        if encode is None:
            continue
        start, tokens = time.perf_counter(), 0
        for i in range(0, len(docs), 1024):
            tokens += sum(len(e) for e in encode(docs[i : i + 1024], add_special_tokens=False))
        rate = (tokens + len(docs)) / (time.perf_counter() - start)  # + one eos per document, as prepare writes
        print(f"ceiling {name}: {rate:,.0f} tokens/s on {size / 2**20:.0f} MB in memory")
        best = max(best, rate)
    return best


def prior(meta: dict) -> dict[str, float]:
    counts = {d: m.get("prior_tokens") or m["train_tokens"] for d, m in meta["domains"].items() if m["role"] == "train"}
    return {d: c / sum(counts.values()) for d, c in counts.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-gb", type=float, default=0.55, help="size of the small input (GiB); the large is 4.4x")
    parser.add_argument("--keep", help="build in this folder and keep it (default: a temporary folder)")
    args = parser.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="regmix-prepare-scale-"))
    print(f"load average before: {os.getloadavg()}, {os.cpu_count()} cpus")
    runs = {}
    for label, gb in (("small", args.small_gb), ("large", args.small_gb * 4.4)):
        start = time.perf_counter()
        inputs = make_input(root / f"in-{label}", gb)
        size = sum(p.stat().st_size for p in inputs.rglob("*.jsonl"))
        print(f"{label} input: {size / 2**30:.2f} GiB of jsonl in {len(list(inputs.rglob('*.jsonl')))} files "
              f"(written in {time.perf_counter() - start:.0f} s)", flush=True)
        runs[label] = prepare(inputs, root / f"corpus-{label}")
        r = runs[label]
        tokens = sum(m["train_tokens"] + m["val_tokens"] for m in r["meta"]["domains"].values())
        print(f"{label}: {tokens / 1e6:,.0f} M tokens in {r['wall']:.0f} s, peak RSS {r['rss_mb']:.0f} MB, "
              f"tokenize pass {r['rate']:,.0f} tokens/s", flush=True)
    top = ceiling(root / "in-large", root / "corpus-large" / "tokenizer.json")
    budgeted = prepare(root / "in-large", root / "corpus-budget", f"data.max_tokens_per_domain={BUDGET}")
    full_prior, sample_prior = prior(runs["large"]["meta"]), prior(budgeted["meta"])
    speedup = runs["large"]["wall"] / budgeted["wall"]
    print(f"budgeted large (max_tokens_per_domain={BUDGET:,}): {budgeted['wall']:.0f} s, {speedup:.1f}x faster; "
          "train tokens " + ", ".join(f"{d} {m['train_tokens']:,}" for d, m in budgeted["meta"]["domains"].items()))
    print("prior full vs budgeted (estimated): " + ", ".join(
        f"{d} {full_prior[d]:.4f} vs {sample_prior[d]:.4f} (diff {abs(full_prior[d] - sample_prior[d]):.4f})" for d in full_prior))
    small, large = runs["small"]["rss_mb"], runs["large"]["rss_mb"]
    rate_vs_ceiling = runs["large"]["rate"] / top
    gates = {
        "rss <= 2048 MB": max(small, large) <= 2048,
        "large rss within 1.3x of small": large <= 1.3 * small,
        "rate_vs_ceiling >= 0.7": rate_vs_ceiling >= 0.7,
        "budgeted >= 5x faster": speedup >= 5,
        "budgeted <= 20M train tokens per domain": all(m["train_tokens"] <= BUDGET for m in budgeted["meta"]["domains"].values()),
        "budgeted prior within 0.01": all(abs(full_prior[d] - sample_prior[d]) <= 0.01 for d in full_prior),
    }
    for name, ok in gates.items():
        print(f"gate {name}: {'pass' if ok else 'FAIL'}")
    print(f"load average after: {os.getloadavg()}; folder {root}{' (kept)' if args.keep else ' (removed)'}")
    if not args.keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    print(f"prepare: rss_mb_small={small:.0f} rss_mb_large={large:.0f} rate_vs_ceiling={rate_vs_ceiling:.2f}")
    return 0 if all(gates.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
