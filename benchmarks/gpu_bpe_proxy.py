"""One 1m proxy at the paper's shape, fed from a prepared BPE corpus: tokens/s, MFU and the share
of the step spent waiting for data.

The corpus is real text prepared by regmix-prepare's own code: three domains of Python's standard
library source, a byte-level BPE trained here (GPT-NeoX's vocabulary size by default). The run is
regmix-train's config composed with `+experiment=paper_1m` (1m model, 512 x 2048 tokens a step),
as the command composes it, and trained by `train_run` (memory-mapped shards, batches cut ahead
of the step in a thread, pinned for the copy); only the budget (a few steps), the evaluation slice
(the corpus is small) and compile (on CUDA) are overridden. A 2-step run first compiles and warms
up; the timed run's figures come from its record (`train_s`, `data_wait_s`).

Without CUDA it says so and exits 0; `--smoke` runs the same code at a tiny size on CPU (CI).

    python benchmarks/gpu_bpe_proxy.py [--steps 8] [--micro 128] [--vocab 50432] [--peak-tflops 989] [--smoke]
"""

from __future__ import annotations

import argparse
import sys
import sysconfig
import tempfile
from pathlib import Path

import torch
from omegaconf import OmegaConf

from regmix.config import TrainAppConfig, register_configs
from regmix.corpus.config import DataConfig, TokenizerConfig
from regmix.corpus.prepare import prepare_corpus
from regmix.corpus.store import read_meta
from regmix.flops import flops_per_token
from regmix.hydra_conf import compose
from regmix.train import train_run

sys.path.insert(0, str(Path(__file__).parent))
from gpu_throughput import device_peak  # noqa: E402  (a sibling script)


def prepare_bpe(root: Path, vocab: int, smoke: bool) -> Path:
    """Three domains of the standard library's source, BPE-`vocab` trained on them."""
    lib = Path(sysconfig.get_paths()["stdlib"])
    if smoke:  # a few small packages: the code path, in seconds
        paths = {"json": [str(lib / "json" / "*.py")], "email": [str(lib / "email" / "*.py")],
                 "asyncio": [str(lib / "asyncio" / "*.py")]}
    else:
        paths = {"stdlib": [str(lib / "*.py")], "tests": [str(lib / "test" / "test_*.py")],
                 "packages": [str(lib / p / "**" / "*.py") for p in ("asyncio", "email", "json", "idlelib", "tkinter")]}
    prepare_corpus(DataConfig(name="bpe", dir=str(root), source="text", paths=paths, text_suffixes=[".py"],
                              val_fraction=0.05, tokenizer=TokenizerConfig(kind="bpe", vocab_size=vocab)))
    return root


def proxy_config(corpus: Path, out: Path, tag: str, *, steps: int, overrides: list[str]) -> TrainAppConfig:
    """regmix-train's config with +experiment=paper_1m, as the command composes it."""
    domains = read_meta(corpus).train_domains
    weights = "{" + ", ".join(f"{d}: {1 / len(domains)}" for d in domains) + "}"
    base = compose("train", ["+experiment=paper_1m", *overrides])
    tokens = steps * base.train.batch_size * base.train.seq_len
    cfg = compose("train", ["+experiment=paper_1m", *overrides, f"train.tokens={tokens}", f"data.dir={corpus}",
                            f"mixture.weights={weights}", "tracker=disabled", f"out_dir={out}", f"run_name={tag}",
                            "sweep=gpu_check"])
    return OmegaConf.to_object(cfg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="timed optimizer steps (after a 2-step warm-up run)")
    parser.add_argument("--micro", type=int, default=128, help="sequences per forward pass (512 per step in all)")
    parser.add_argument("--vocab", type=int, default=50_432, help="BPE vocabulary (GPT-NeoX's size by default)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak of the device (TFLOP/s)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on CPU: checks the code path, not the speed")
    args, _ = parser.parse_known_args()  # gpu_check.sh passes gpu_throughput.py's options too (--k)
    register_configs()
    if args.smoke:
        device, vocab, steps = "cpu", 512, 2
        overrides = ["train.device=cpu", "train.batch_size=4", "train.micro_batch_size=2", "train.seq_len=64",
                     "train.checkpoint_every=0", "eval.tokens_per_domain=256", "eval.batch_size=4"]
    elif torch.cuda.is_available():
        device, vocab, steps = "cuda", args.vocab, args.steps
        overrides = ["train.device=cuda", "train.compile=true", f"train.micro_batch_size={args.micro}",
                     "train.checkpoint_every=0", "eval.tokens_per_domain=8192", "eval.batch_size=4"]
    else:
        print("no CUDA GPU: the prepared-BPE proxy is skipped (run with --smoke for the CPU code path)")
        return
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    peak = device_peak(name, args.peak_tflops) if device == "cuda" else None
    with tempfile.TemporaryDirectory() as tmp:
        corpus = prepare_bpe(Path(tmp) / "bpe", vocab, args.smoke)
        train_run(proxy_config(corpus, Path(tmp) / "runs", "warm", steps=2, overrides=overrides), log=lambda *_: None)
        cfg = proxy_config(corpus, Path(tmp) / "runs", "timed", steps=steps, overrides=overrides)
        record = train_run(cfg, log=lambda *_: None)
        vocab = read_meta(corpus).vocab_size  # what the BPE reached (at most the size asked for)
    per_token = flops_per_token(cfg.model, vocab, cfg.train.seq_len)
    tps = record.tokens / record.train_s
    mfu = ("n/a on CPU" if device == "cpu" else f"{tps * per_token / peak:.1%}" if peak
           else "n/a (unknown peak; pass --peak-tflops)")
    print(f"device {name}; model {cfg.model.name} at +experiment=paper_1m's shape ({cfg.train.batch_size} x "
          f"{cfg.train.seq_len} tokens a step, micro-batch {cfg.train.micro_batch_size}) on a prepared BPE-{vocab} corpus "
          f"of Python source ({sum(record.corpus['train_tokens'].values()):,} training tokens, {len(record.corpus['train_tokens'])} domains)")
    print(f"prepared-corpus proxy (regmix-train's loop): {tps:,.0f} tokens/s, MFU {mfu}, data wait "
          f"{record.data_wait_s / record.train_s:.2%} of the step ({record.data_wait_s:.3f} s of {record.train_s:.2f} s)")


if __name__ == "__main__":
    main()
