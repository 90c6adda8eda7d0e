"""Peak memory of the output layer's loss (forward + backward) at GPT-NeoX's vocabulary (50,432) and
the 1m width, as the batch grows: chunked cross-entropy against the plain full-logits loss, each in a
fresh process, peak RSS above the process's memory after its inputs exist (Linux: VmHWM after a
reset), and as a multiple of the whole 1m model's fp32 weights.

    python benchmarks/loss_memory.py [--tokens 4096,32768] [--plain-max 8192]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

VOCAB, WIDTH = 50_432, 256


def _mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(tokens: int, plain: bool) -> float:
    import torch
    import torch.nn.functional as F

    from regmix.allocator import keep_freed_memory
    from regmix.chunked_loss import CPU_LOGITS_BUDGET, chunk_tokens_for, chunked_cross_entropy

    torch.set_num_threads(1)
    keep_freed_memory()
    hidden = torch.randn(tokens, WIDTH, requires_grad=True)
    weight = (0.02 * torch.randn(VOCAB, WIDTH)).requires_grad_()
    targets = torch.randint(0, VOCAB, (tokens,))
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak: count only what the loss adds
    base = _mib("VmRSS")
    if plain:
        loss = F.cross_entropy(hidden @ weight.t(), targets)
    else:
        loss = chunked_cross_entropy(hidden, weight, targets, chunk_tokens_for(VOCAB, CPU_LOGITS_BUDGET))
    loss.backward()
    return _mib("VmHWM") - base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", default="4096,32768", help="tokens per step (batch x seq_len)")
    parser.add_argument("--plain-max", type=int, default=8192, help="largest batch the plain loss is tried at")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        job = json.loads(args.child)
        print(json.dumps(child(job["tokens"], job["plain"])))
        return
    from regmix.config import ModelConfig
    from regmix.model import ProxyLM, count_parameters

    params = count_parameters(ProxyLM(ModelConfig(n_layers=2, d_model=WIDTH, n_heads=8, d_mlp=512), VOCAB))["total"]
    model_mib = params * 4 / 2**20
    print(f"1m model at vocab {VOCAB}: {params / 1e6:.1f}M params = {model_mib:.0f} MiB fp32; "
          f"output-layer weight and its gradient alone {2 * VOCAB * WIDTH * 4 / 2**20:.0f} MiB")
    print(f"{'tokens':>8} {'logits (full)':>14} {'plain MiB':>10} {'chunked MiB':>12} {'chunked / model':>15}")

    def run(tokens: int, plain: bool) -> float:
        done = subprocess.run([sys.executable, __file__, "--child", json.dumps({"tokens": tokens, "plain": plain})],
                              capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(done.stderr[-2000:])
        return json.loads(done.stdout.strip().splitlines()[-1])

    for tokens in [int(t) for t in args.tokens.split(",")]:
        chunked = run(tokens, False)
        plain = f"{run(tokens, True):10.0f}" if tokens <= args.plain_max else f"{'not tried':>10}"
        full = tokens * VOCAB * 4 / 2**30
        print(f"{tokens:8} {full:11.1f} GiB {plain} {chunked:12.0f} {chunked / model_mib:15.2f}", flush=True)


if __name__ == "__main__":
    main()
