"""Training throughput of regmix-train's step loop against a minimal plain-PyTorch loop.

Both train the same model shape on the same batch size, on CPU with one thread (how the
app runs one proxy per core). The app's figure includes everything its loop does per step:
sampling the mixture's sequences from memory-mapped shards, the lr schedule, gradient
clipping and periodic logging. The baseline reuses one in-memory batch. Goal: ratio >= 0.95.

    python benchmarks/train_throughput.py [--steps 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from regmix.config import EvalConfig, MixtureConfig, ModelConfig, TrackerConfig, TrainAppConfig, TrainConfig
from regmix.corpus.config import DataConfig
from regmix.corpus.store import write_corpus
from regmix.model import ProxyLM
from regmix.train import train_run

SHAPES = {
    # name: (model config, batch size, seq_len) -- CPU-sized batches; the shapes are the app's.
    "tiny": (ModelConfig(name="tiny", n_layers=2, d_model=64, n_heads=4, d_mlp=128, max_seq_len=512), 16, 128),
    "1m": (ModelConfig(name="1m", n_layers=2, d_model=256, n_heads=8, d_mlp=512, max_seq_len=2048), 8, 256),
}
VOCAB = 256  # byte-level corpus; the 1m shape's cost with GPT-NeoX's vocab is dominated by the output layer


def make_corpus(root: Path) -> Path:
    rng = np.random.default_rng(0)
    splits = {
        d: {"train": rng.integers(1, VOCAB, 400_000), "val": rng.integers(1, VOCAB, 20_000)} for d in ("a", "b", "c")
    }
    write_corpus(root, name="bench", tokenizer={"kind": "bytes", "vocab_size": VOCAB, "eos_id": 0, "id": "bytes"}, splits=splits)
    return root


def app_tokens_per_s(corpus: Path, out: Path, model: ModelConfig, batch: int, seq_len: int, steps: int, tag: str) -> float:
    cfg = TrainAppConfig(
        model=model,
        data=DataConfig(dir=str(corpus)),
        train=TrainConfig(tokens=steps * batch * seq_len, batch_size=batch, seq_len=seq_len, lr=1e-3, warmup_steps=2, threads=1),
        eval=EvalConfig(tokens_per_domain=seq_len, batch_size=8),
        mixture=MixtureConfig(weights={"a": 0.5, "b": 0.3, "c": 0.2}),
        tracker=TrackerConfig(mode="disabled"),
        out_dir=str(out),
        run_name=tag,
    )
    record = train_run(cfg, log=lambda *_: None)
    return record.tokens / record.train_s


def plain_tokens_per_s(model_cfg: ModelConfig, batch: int, seq_len: int, steps: int) -> float:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = ProxyLM(model_cfg, VOCAB)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    x = torch.randint(1, VOCAB, (batch, seq_len + 1))
    inputs, targets = x[:, :-1], x[:, 1:]
    start = time.perf_counter()
    for _ in range(steps):
        loss = model(inputs, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return steps * batch * seq_len / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="alternating measurements per side; best is kept")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = make_corpus(Path(tmp) / "corpus")
        print(f"{'shape':6} {'batch x seq':>12} {'plain tok/s':>12} {'app tok/s':>12} {'app/plain':>10}")
        for name, (model_cfg, batch, seq_len) in SHAPES.items():
            plain, app = [], []
            for r in range(args.repeats):  # alternate so that machine noise hits both sides alike
                plain.append(plain_tokens_per_s(model_cfg, batch, seq_len, args.steps))
                app.append(app_tokens_per_s(corpus, Path(tmp) / "runs", model_cfg, batch, seq_len, args.steps, f"{name}{r}"))
            print(f"{name:6} {f'{batch} x {seq_len}':>12} {max(plain):12,.0f} {max(app):12,.0f} {max(app) / max(plain):10.3f}")


if __name__ == "__main__":
    main()
