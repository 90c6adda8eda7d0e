"""K proxies of one shape trained as one batched model (torch.func: stacked weights + vmap) against
the same K trained one after another, in the same process. Decides whether several proxies per
process pay on this device (docs/decisions.md records the figures).

The stacked side: `stack_module_state` gives each weight a leading model dimension, `vmap` runs
the K forwards as one, one AdamW steps all stacked weights (AdamW is elementwise, so this equals K
separate optimizers; gradient clipping is per model). Each model gets its own batch (its mixture's
stream). Under vmap the loss is the plain full-logits one (the chunked autograd.Function has no
vmap rule), so this is measured at vocabularies where the full logits fit.

    python benchmarks/stacked_proxies.py [--k 4] [--steps 10] [--vocabs 256,8192]
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import torch
from torch.func import functional_call, stack_module_state, vmap

from regmix.allocator import keep_freed_memory
from regmix.config import ModelConfig
from regmix.model import ProxyLM

TINY = ModelConfig(name="tiny", n_layers=2, d_model=64, n_heads=4, d_mlp=128, max_seq_len=512)


def make_models(cfg: ModelConfig, vocab: int, k: int, device) -> list[ProxyLM]:
    models = []
    for i in range(k):
        torch.manual_seed(i)
        models.append(ProxyLM(cfg, vocab).to(device))
    return models


def batches(vocab: int, k: int, steps: int, batch: int, seq_len: int, device) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [torch.randint(1, vocab, (k, batch, seq_len + 1), generator=gen).to(device) for _ in range(steps)]


def train_one_by_one(models, data, *, autocast, chunk_tokens=None) -> list[list[float]]:
    """Each model alone over its own slice of every batch; returns losses[model][step]."""
    losses = []
    for i, model in enumerate(models):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
        mine = []
        for x in data:
            with autocast():
                loss = model(x[i, :, :-1], x[i, :, 1:], chunk_tokens=chunk_tokens)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            mine.append(loss.detach())
        losses.append([v.item() for v in mine])
    return losses


def train_stacked(models, data, *, autocast) -> list[list[float]]:
    """All models as one vmapped model; returns losses[model][step]."""
    params, buffers = stack_module_state(models)  # leaves with a leading model dimension
    base = copy.deepcopy(models[0]).to("meta")
    opt = torch.optim.AdamW(list(params.values()), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)

    def loss_of(p, b, x):
        return functional_call(base, (p, b), (x[:, :-1], x[:, 1:]), kwargs={"chunk_tokens": 0})

    per_step = []
    for x in data:
        with autocast():
            losses = vmap(loss_of)(params, buffers, x)
        losses.sum().backward()  # models share nothing, so each gets exactly its own gradient
        norms = torch.stack([g.grad.flatten(1).norm(dim=1) for g in params.values()]).norm(dim=0)
        scale = (1.0 / (norms + 1e-6)).clamp(max=1.0)  # clip_grad_norm_(1.0), per model
        for p in params.values():
            p.grad.mul_(scale.view(-1, *[1] * (p.dim() - 1)))
        opt.step()
        opt.zero_grad(set_to_none=True)
        per_step.append(losses.detach())
    return torch.stack(per_step, dim=1).tolist()


def timed(fn) -> tuple[object, float]:
    """Seconds fn takes: wall time on CUDA (synchronised), this process's CPU time on CPU (what the
    work costs; a shared machine gives a process a varying share of a core)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        torch.cuda.synchronize()
        return out, time.perf_counter() - start
    start = time.process_time()
    out = fn()
    return out, time.process_time() - start


def compare(cfg: ModelConfig, vocab: int, k: int, steps: int, batch: int, seq_len: int, device, autocast) -> dict:
    data = batches(vocab, k, steps + 1, batch, seq_len, device)
    warm = data[:1]  # one step each side first: lazy init, allocator warm-up
    train_one_by_one(make_models(cfg, vocab, k, device), warm, autocast=autocast)
    train_stacked(make_models(cfg, vocab, k, device), warm, autocast=autocast)
    loop, loop_s = timed(lambda: train_one_by_one(make_models(cfg, vocab, k, device), data[1:], autocast=autocast))
    loop_full, _ = (loop, 0) if device.type != "cpu" else timed(
        lambda: train_one_by_one(make_models(cfg, vocab, k, device), data[1:], autocast=autocast, chunk_tokens=0))
    stacked, stacked_s = timed(lambda: train_stacked(make_models(cfg, vocab, k, device), data[1:], autocast=autocast))
    tokens = k * steps * batch * seq_len
    diff = max(abs(a - b) for la, lb in zip(loop_full, stacked) for a, b in zip(la, lb))
    return {"loop": tokens / loop_s, "stacked": tokens / stacked_s, "max_loss_diff": diff}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--vocabs", default="256,8192")
    args = parser.parse_args()
    torch.set_num_threads(1)
    keep_freed_memory()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; tiny shape, 16 x 128 tokens per model-step, fp32")
    print(f"{'vocab':>6} {'K':>3} {'one by one tok/CPU-s':>20} {'stacked tok/CPU-s':>17} {'stacked/loop':>12} {'max loss diff':>13}")
    for vocab in [int(v) for v in args.vocabs.split(",")]:
        r = compare(TINY, vocab, args.k, args.steps, 16, 128, torch.device("cpu"), autocast=lambda: torch.autocast("cpu", enabled=False))
        print(f"{vocab:6} {args.k:3} {r['loop']:20,.0f} {r['stacked']:17,.0f} {r['stacked'] / r['loop']:12.2f} {r['max_loss_diff']:13.1e}")


if __name__ == "__main__":
    main()
