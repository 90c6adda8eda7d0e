"""Chunked cross-entropy: the plain loss and gradients, without ever holding the full logits."""

from __future__ import annotations

import platform

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from regmix.allocator import keep_freed_memory
from regmix.chunked_loss import chunk_tokens_for, chunked_cross_entropy
from regmix.config import ModelConfig
from regmix.model import ProxyLM


def _plain_and_chunked(n: int, d: int, vocab: int, chunk: int):
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(n, d, generator=gen, dtype=torch.float64).float()
    weight = (0.1 * torch.randn(vocab, d, generator=gen)).requires_grad_()
    targets = torch.randint(0, vocab, (n,), generator=gen)
    results = []
    for fn in (lambda h, w: F.cross_entropy(h @ w.t(), targets), lambda h, w: chunked_cross_entropy(h, w, targets, chunk)):
        h, w = hidden.clone().requires_grad_(), weight.detach().clone().requires_grad_()
        loss = fn(h, w)
        (3.0 * loss).backward()  # a non-unit upstream gradient reaches both inputs
        results.append((loss.detach(), h.grad, w.grad))
    return results


@pytest.mark.parametrize("n, chunk", [(300, 64), (300, 300), (300, 1000), (97, 7)])
def test_loss_and_both_gradients_equal_the_plain_loss(n, chunk):
    (loss0, gh0, gw0), (loss1, gh1, gw1) = _plain_and_chunked(n, 32, 500, chunk)
    torch.testing.assert_close(loss1, loss0, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(gh1, gh0, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(gw1, gw0, rtol=1e-5, atol=1e-7)


def test_model_loss_matches_full_logits_with_and_without_grad():
    torch.manual_seed(0)
    model = ProxyLM(ModelConfig(max_seq_len=64), 1000)
    ids = torch.randint(0, 1000, (3, 33))
    full = model(ids[:, :-1], ids[:, 1:], chunk_tokens=0)
    full.backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    model.zero_grad()
    chunked = model(ids[:, :-1], ids[:, 1:], chunk_tokens=10)
    chunked.backward()
    torch.testing.assert_close(chunked, full, rtol=1e-6, atol=1e-6)
    for k, p in model.named_parameters():
        torch.testing.assert_close(p.grad, grads[k], rtol=1e-4, atol=1e-7, msg=k)
    with torch.no_grad():
        torch.testing.assert_close(model(ids[:, :-1], ids[:, 1:], chunk_tokens=7), full.detach(), rtol=1e-6, atol=1e-6)


class _LargestTensor(TorchDispatchMode):
    """Records the most elements any op produced (forward and backward run on this thread on CPU)."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("vocab, tokens", [(50_432, 512), (50_432, 2048), (8_192, 2048)])
def test_no_tensor_larger_than_one_slice_of_logits_or_the_output_layer(vocab, tokens):
    """Peak memory stays flat as vocabulary and batch grow: nothing near tokens x vocab exists."""
    d, budget = 8, 1 << 20
    hidden = torch.randn(tokens, d, requires_grad=True)
    weight = torch.randn(vocab, d, requires_grad=True)
    targets = torch.randint(0, vocab, (tokens,))
    chunk = chunk_tokens_for(vocab, budget)
    with _LargestTensor() as seen:
        chunked_cross_entropy(hidden, weight, targets, chunk).backward()
    assert seen.largest <= max(budget, vocab * d)
    assert seen.largest < tokens * vocab // 4  # the full logits never appear


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_allocator_keeps_freed_memory_on_glibc():
    assert keep_freed_memory() is True and keep_freed_memory() is True  # applied, and idempotent


@pytest.mark.gpu
def test_cuda_fp32_equal_and_bf16_autocast_close_to_the_plain_loss():
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(4096, 256, generator=gen).cuda()
    weight = (0.05 * torch.randn(50_432, 256, generator=gen)).cuda()
    targets = torch.randint(0, 50_432, (4096,), generator=gen).cuda()
    for dtype, tol in ((None, 1e-5), (torch.bfloat16, 2e-2)):
        results = []
        for fn in (lambda h, w: F.cross_entropy((h @ w.t()).float(), targets), lambda h, w: chunked_cross_entropy(h, w, targets, 1000)):
            h, w = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
            with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = fn(h, w)
            loss.backward()
            results.append((loss.detach().float(), h.grad, w.grad))
        for plain, chunked in zip(*results):
            torch.testing.assert_close(chunked, plain, rtol=tol, atol=tol * 1e-3)
