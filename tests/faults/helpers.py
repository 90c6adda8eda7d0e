"""What the training/data fault tests share: the console scripts, a tiny corpus, quick runs."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from regmix.corpus.store import write_corpus

BIN = Path(sys.executable).parent
# A run of a few seconds on one core: 40 steps of 8 x 64 tokens on the tiny model.
QUICK = ["train.tokens=20480", "train.batch_size=8", "train.seq_len=64", "eval.tokens_per_domain=2048",
         "tracker=disabled", "train.log_every=5"]


def cli(name: str, *args: str, cwd: Path, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / name), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, **kwargs)


def popen(name: str, *args: str, cwd: Path, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / name), *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)


def small_corpus(path: Path, *, val_tokens: dict[str, int] | None = None, seed: int = 0) -> Path:
    """Three byte-level domains (a, b, c) of 40k training tokens; validation sizes per domain."""
    rng = np.random.default_rng(seed)
    val_tokens = {"a": 8_000, "b": 8_000, "c": 8_000, **(val_tokens or {})}
    tok = {"kind": "bytes", "vocab_size": 256, "eos_id": 0, "id": "bytes"}
    splits = {d: {"train": rng.integers(1, 64 * (i + 1), 40_000), "val": rng.integers(1, 64 * (i + 1), n)}
              for i, (d, n) in enumerate(val_tokens.items())}
    write_corpus(path, name=path.name, tokenizer=tok, splits=splits)
    return path


def weights_arg(**weights: float) -> str:
    return "mixture.weights={" + ", ".join(f"{d}: {w}" for d, w in weights.items()) + "}"


def record(run_dir: Path) -> dict | None:
    path = run_dir / "result.json"
    return json.loads(path.read_text()) if path.exists() else None


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under `root` with its size and mtime: to show that nothing was touched."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            st = os.stat(os.path.join(dirpath, name))
            out[os.path.relpath(os.path.join(dirpath, name), root)] = (st.st_size, st.st_mtime_ns)
    return out


def scrubbed(done: subprocess.CompletedProcess, *paths: Path) -> subprocess.CompletedProcess:
    """`done` with temp paths, pids, host names and times replaced by placeholders, so that
    the generated bad-input table is the same on every machine and every run."""
    import re

    def clean(text: str) -> str:
        for path in paths:
            text = text.replace(str(path), "<tmp>")
        text = re.sub(r"pid \d+ on \S+ since \S+;", "pid <pid> on <host> since <time>;", text)
        return text

    return subprocess.CompletedProcess(done.args, done.returncode, clean(done.stdout or ""), clean(done.stderr or ""))


@contextlib.contextmanager
def read_only(folder: Path):
    """`folder` made read-only for the block: by mode bits, and where that does not bind (root)
    by the immutable attribute; skips the test where neither can be set."""
    import pytest

    folder.chmod(0o555)
    immutable = False
    try:
        if os.access(folder, os.W_OK):
            immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
            if not immutable or os.access(folder, os.W_OK):
                pytest.skip("cannot make a folder read-only for this user")
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
        folder.chmod(0o755)
