"""Cross-entropy through the output layer in slices of tokens, never the full logits.

At the paper's settings (GPT-NeoX vocabulary 50,432, 512 x 2048 tokens a step) the logits would be
53.7G elements. `chunked_cross_entropy(hidden, weight, targets, chunk_tokens)` computes, slice by
slice, the mean loss and both gradients (hidden states and output weight) in the forward pass, so
only one slice of logits (chunk_tokens x vocab) exists at a time; backward scales the stored
gradients by the incoming one. The arithmetic is the plain loss's (one GEMM forward, two backward).

Precision: the logits slice is computed in the autocast dtype when autocast is on (bf16 on CUDA),
then softmax and log-sum-exp run in fp32; the weight gradient is accumulated in fp32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Logit elements held at once on CPU: 4M fp32 = 16 MiB, below glibc's 32 MiB mmap ceiling so the
#: slice's memory is reused from the heap every step (see regmix.allocator), and small next to the
#: output layer of any real vocabulary (1m at 50,432: 12.9M weights).
CPU_LOGITS_BUDGET = 4 * 1024 * 1024
#: On CUDA: 256M elements (1 GiB of fp32 softmax) per slice, about 5,300 tokens at 50,432: few
#: enough slices per step that kernel launches stay negligible.
CUDA_LOGITS_BUDGET = 256 * 1024 * 1024


def chunk_tokens_for(vocab_size: int, budget_elements: int) -> int:
    """Tokens per slice so that one slice of logits holds at most `budget_elements` (at least 1 token)."""
    return max(1, budget_elements // vocab_size)


def _compute_dtype(device_type: str, dtype: torch.dtype) -> torch.dtype:
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return dtype


class _ChunkedCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk_tokens, compute_dtype):
        n = hidden.shape[0]
        w = weight.to(compute_dtype)
        grad_hidden = torch.empty_like(hidden)
        grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        minus_one = torch.full((1, 1), -1.0 / n, device=hidden.device)
        for start in range(0, n, chunk_tokens):
            h = hidden[start : start + chunk_tokens].to(compute_dtype)
            t = targets[start : start + chunk_tokens]
            logits = (h @ w.t()).float()
            target_logit = logits.gather(1, t[:, None]).squeeze(1)
            # One pass of exp over the slice: softmax in place, log-sum-exp from its normaliser.
            peak = logits.amax(dim=1, keepdim=True)
            probs = logits.sub_(peak).exp_()
            norm = probs.sum(dim=1, keepdim=True)
            total += (peak + norm.log()).sum() - target_logit.sum()
            # d(mean loss)/d(logits) = (softmax - onehot) / n.
            probs.div_(norm * n)
            probs.scatter_add_(1, t[:, None], minus_one.expand(t.shape[0], 1))
            p = probs.to(compute_dtype)
            grad_hidden[start : start + chunk_tokens] = (p @ w).to(hidden.dtype)
            if compute_dtype == torch.float32:
                grad_weight.addmm_(p.t(), h)
            else:  # bf16 product of one slice, summed over slices in fp32
                grad_weight.add_((p.t() @ h).float())
        ctx.save_for_backward(grad_hidden, grad_weight.to(weight.dtype))
        return total / n

    @staticmethod
    def backward(ctx, grad_output):
        grad_hidden, grad_weight = ctx.saved_tensors
        # In place: the stored gradients are this node's own and backward runs once per graph
        # (no retain_graph in training), so no second copy of hidden-state size is made.
        return grad_hidden.mul_(grad_output), grad_weight.mul_(grad_output), None, None, None


@torch.compiler.disable  # eager slices: a compiled graph would unroll one copy per slice
def chunked_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk_tokens: int) -> torch.Tensor:
    """Mean cross-entropy (nats/token) of `hidden @ weight.T` against `targets`, `chunk_tokens` rows at a time.

    hidden: (..., d), weight: (vocab, d), targets: (...) int64. Equal to
    `F.cross_entropy(hidden @ weight.T, targets)` within fp32 rounding, with the same gradients.
    """
    hidden = hidden.reshape(-1, hidden.shape[-1])
    targets = targets.reshape(-1)
    compute_dtype = _compute_dtype(hidden.device.type, hidden.dtype)
    if not (torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad)):
        # Evaluation: the loss alone, slice by slice.
        w = weight.to(compute_dtype)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, hidden.shape[0], chunk_tokens):
            logits = (hidden[start : start + chunk_tokens].to(compute_dtype) @ w.t()).float()
            total += F.cross_entropy(logits, targets[start : start + chunk_tokens], reduction="sum")
        return total / hidden.shape[0]
    with torch.autocast(hidden.device.type, enabled=False):
        return _ChunkedCrossEntropy.apply(hidden, weight, targets, chunk_tokens, compute_dtype)
