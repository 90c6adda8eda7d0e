"""Does `regmix-prepare` stay in bounded memory and near the tokenizer's own speed as a corpus grows?

Builds its own text in a temporary folder: a small input (>= 0.5 GB) and a large one (4.4x that),
each one large domain (`web`, several .jsonl files) and a small one (`code`, a tenth of the
size, other words). Prepares each with the BPE tokenizer in a fresh process and reports:

- peak resident memory of each prepare (the process's ru_maxrss, from wait4);
- the tokenization rate of the streaming pass against the ceiling of this machine in this run:
  HF `tokenizers` batch-encoding (encode_batch_fast, 1,024 documents a call) the same documents
  from memory with the same tokenizer.json. The two are timed in pairs, seconds apart, on a
  32 MB slice of the large domain (the pass: a whole `prepare_corpus`, tokenizer kind=file, so
  reading, parsing, writing and hashing count against it), five pairs in alternating order, and
  the median ratio is reported: on a machine shared with other work, rates taken minutes apart
  differ by 3x with the load (measured: the same encode took 19 s and 57 s). The full passes'
  own tokens/s (wall and per CPU-second) are printed too;
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
    rates = re.findall(r"tokenized .* at ([0-9.]+) tokens/s; [0-9.]+ cpu-s, ([0-9.]+) tokens per cpu-s", text)
    rate, cpu_rate = map(float, rates[-1]) if rates else (float("nan"), float("nan"))
    meta = json.loads((corpus / "meta.json").read_text())
    return {"wall": wall, "rss_mb": usage.ru_maxrss / 1024, "rate": rate, "cpu_rate": cpu_rate, "meta": meta}


def paired_rate(inputs: Path, tokenizer_json: Path, work: Path, *, mb: int = 32, pairs: int = 5) -> float:
    """Median over `pairs` of (streaming prepare tokens/s) / (in-memory encode tokens/s), each pair
    timed back to back on the same documents (see the module docstring)."""
    from tokenizers import Tokenizer

    from regmix.corpus.config import DataConfig, TokenizerConfig
    from regmix.corpus.prepare import prepare_corpus

    source = sorted((inputs / "web").glob("*.jsonl"))[0]
    piece = work / "pair" / "web.jsonl"
    piece.parent.mkdir(parents=True, exist_ok=True)
    with open(source) as fh, open(piece, "w") as out:
        for line in fh:
            out.write(line)
            if out.tell() >= mb << 20:
                break
    docs = [json.loads(line)["text"] for line in open(piece)]
    tok = Tokenizer.from_file(str(tokenizer_json))

    def in_memory() -> float:
        start, tokens = time.perf_counter(), len(docs)  # + one eos per document, as prepare writes
        for i in range(0, len(docs), 1024):
            tokens += sum(len(e) for e in tok.encode_batch_fast(docs[i : i + 1024], add_special_tokens=False))
        return tokens / (time.perf_counter() - start)

    def streamed(round_: int) -> float:
        cfg = DataConfig(name="pair", dir=str(work / f"pair-{round_}"), source="text", paths={"web": [str(piece)]},
                         tokenizer=TokenizerConfig(kind="file", path=str(tokenizer_json)))
        start = time.perf_counter()
        meta = prepare_corpus(cfg)
        return sum(m.train_tokens + m.val_tokens for m in meta.domains.values()) / (time.perf_counter() - start)

    ratios = []
    for round_ in range(pairs):
        if round_ % 2:
            a = streamed(round_)
            b = in_memory()
        else:
            b = in_memory()
            a = streamed(round_)
        ratios.append(a / b)
        print(f"pair {round_}: streamed {a:,.0f} tokens/s, in memory {b:,.0f} tokens/s, ratio {a / b:.2f}", flush=True)
    return float(np.median(ratios))


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
              f"tokenize pass {r['rate']:,.0f} tokens/s, {r['cpu_rate']:,.0f} tokens per cpu-s; "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
    budgeted = prepare(root / "in-large", root / "corpus-budget", f"data.max_tokens_per_domain={BUDGET}")
    full_prior, sample_prior = prior(runs["large"]["meta"]), prior(budgeted["meta"])
    speedup = runs["large"]["wall"] / budgeted["wall"]
    print(f"budgeted large (max_tokens_per_domain={BUDGET:,}): {budgeted['wall']:.0f} s, {speedup:.1f}x faster; "
          "train tokens " + ", ".join(f"{d} {m['train_tokens']:,}" for d, m in budgeted["meta"]["domains"].items()))
    print("prior full vs budgeted (estimated): " + ", ".join(
        f"{d} {full_prior[d]:.4f} vs {sample_prior[d]:.4f} (diff {abs(full_prior[d] - sample_prior[d]):.4f})" for d in full_prior))
    small, large = runs["small"]["rss_mb"], runs["large"]["rss_mb"]
    rate_vs_ceiling = paired_rate(root / "in-large", root / "corpus-large" / "tokenizer.json", root)
    print(f"streamed vs in-memory encode (median of pairs): {rate_vs_ceiling:.2f}")
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
