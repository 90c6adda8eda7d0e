"""Tokens/s and MFU of the `1m` proxy with GPT-NeoX's vocabulary (50,432) at the paper's batch
(512 x 2048 tokens a step), through regmix-train's own loop (bf16, torch.compile, fused AdamW,
chunked cross-entropy), then K stacked proxies (benchmarks/stacked_proxies.py) on the same device.

MFU = model FLOPs (regmix.flops) per second / the device's dense bf16 peak. Without CUDA it says
so and exits 0; `--smoke` runs the same code at a tiny size on CPU (what CI checks).

    python benchmarks/gpu_throughput.py [--steps 8] [--k 8] [--peak-tflops 989] [--smoke]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from regmix.config import EvalConfig, MixtureConfig, ModelConfig, TrackerConfig, TrainAppConfig, TrainConfig
from regmix.corpus.config import DataConfig
from regmix.corpus.store import write_corpus
from regmix.flops import flops_per_token
from regmix.train import train_run

sys.path.insert(0, str(Path(__file__).parent))
from stacked_proxies import compare  # noqa: E402  (a sibling script)

NEOX_VOCAB = 50_432
ONE_M = ModelConfig(name="1m", n_layers=2, d_model=256, n_heads=8, d_mlp=512, max_seq_len=2048)
#: Dense bf16 peaks from the vendors' spec sheets (FLOP/s), matched against the device name.
BF16_PEAK = {"H200 NVL": 835e12, "H100 PCIe": 756e12, "H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12}


def device_peak(name: str, override_tflops: float | None) -> float | None:
    if override_tflops:
        return override_tflops * 1e12
    return next((peak for key, peak in BF16_PEAK.items() if key in name), None)


def app_tokens_per_s(corpus: Path, out: Path, model: ModelConfig, *, batch, micro, seq_len, steps, device) -> float:
    def cfg(n_steps: int, tag: str) -> TrainAppConfig:
        return TrainAppConfig(
            model=model, data=DataConfig(dir=str(corpus)),
            train=TrainConfig(tokens=n_steps * batch * seq_len, batch_size=batch, micro_batch_size=micro, seq_len=seq_len,
                              device=device, compile=device == "cuda", checkpoint_every=0, warmup_steps=2),
            eval=EvalConfig(tokens_per_domain=seq_len, batch_size=1),
            mixture=MixtureConfig(weights={"a": 0.5, "b": 0.5}), tracker=TrackerConfig(mode="disabled"),
            out_dir=str(out), run_name=tag,
        )

    train_run(cfg(2, "warm"), log=lambda *_: None)  # compiles the graphs and warms the allocator
    record = train_run(cfg(steps, "timed"), log=lambda *_: None)
    return record.tokens / record.train_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="timed optimizer steps (after a 2-step warm-up run)")
    parser.add_argument("--micro", type=int, default=128, help="sequences per forward pass (512 per step in all)")
    parser.add_argument("--k", type=int, default=8, help="stacked proxies")
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak of the device (TFLOP/s)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on CPU: checks the code path, not the speed")
    args = parser.parse_args()
    if args.smoke:
        device, model, batch, micro, seq_len, steps, k, vocab = "cpu", ModelConfig(max_seq_len=64), 4, 2, 64, 2, 2, 4096
    elif torch.cuda.is_available():
        device, model, batch, micro, seq_len, steps, k, vocab = "cuda", ONE_M, 512, args.micro, 2048, args.steps, args.k, NEOX_VOCAB
    else:
        print("no CUDA GPU: the throughput check is skipped (run with --smoke for the CPU code path)")
        return
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    peak = device_peak(name, args.peak_tflops) if device == "cuda" else None
    per_token = flops_per_token(model, vocab, seq_len)

    def mfu(tokens_per_s: float) -> str:
        if device == "cpu":
            return "n/a on CPU"
        return f"{tokens_per_s * per_token / peak:.1%}" if peak else "n/a (unknown peak; pass --peak-tflops)"

    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        splits = {d: {"train": rng.integers(1, vocab, 4 * batch * (seq_len + 1)), "val": rng.integers(1, vocab, 4 * seq_len)}
                  for d in ("a", "b")}
        write_corpus(Path(tmp) / "corpus", name="gpu", splits=splits,
                              tokenizer={"kind": "synthetic", "vocab_size": vocab, "eos_id": 0, "id": f"v{vocab}"})
        tps = app_tokens_per_s(Path(tmp) / "corpus", Path(tmp) / "runs", model, batch=batch, micro=micro,
                               seq_len=seq_len, steps=steps, device=device)
    print(f"device {name}; model {model.name} at vocab {vocab}, {batch} x {seq_len} tokens a step "
          f"({per_token / 1e6:.1f} MFLOP/token)")
    print(f"one proxy (regmix-train's loop): {tps:,.0f} tokens/s, {tps * per_token / 1e12:.2f} TFLOP/s, MFU {mfu(tps)}")
    dev = torch.device(device)
    per_model = 2 if args.smoke else 4  # sequences per model per step: K full-logit slices must fit under vmap
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device == "cuda" else (
        lambda: torch.autocast("cpu", enabled=False))
    r = compare(model, vocab, k, steps, per_model, seq_len, dev, autocast)
    print(f"{k} stacked proxies ({per_model} x {seq_len} tokens per model-step, full logits under vmap): "
          f"{r['stacked']:,.0f} tokens/s, MFU {mfu(r['stacked'])}; the same {k} one by one: {r['loop']:,.0f} tokens/s, "
          f"MFU {mfu(r['loop'])}; stacked/one-by-one {r['stacked'] / r['loop']:.2f}")


if __name__ == "__main__":
    main()
