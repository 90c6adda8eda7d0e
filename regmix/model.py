"""The proxy model: a LLaMA-style decoder (RoPE, RMSNorm, SwiGLU, untied embeddings).

Architecture only: device placement, precision and compilation live in `regmix.train`.
Shapes come from `conf/model/` (the paper's 1m / 60m / 1b and a CPU-sized tiny).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from regmix.chunked_loss import CPU_LOGITS_BUDGET, chunk_tokens_for, chunked_cross_entropy
from regmix.config import ModelConfig
from regmix.errors import SettingsError

#: Vocabularies are padded up to a multiple of this many ids: matmuls with a width that is
#: a multiple of 64 run on fast kernels (GPT-NeoX pads its 50,277 ids to 50,432, a multiple of 256).
VOCAB_MULTIPLE = 64


def padded_vocab(vocab_size: int) -> int:
    return int(math.ceil(vocab_size / VOCAB_MULTIPLE) * VOCAB_MULTIPLE)


def rope_tables(head_dim: int, max_seq_len: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables of shape (max_seq_len, head_dim // 2) for rotary position embeddings."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(max_seq_len, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (first half, second half) of the head dimension; x: (B, H, T, D)."""
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.d_model % cfg.n_heads:
            raise SettingsError(f"model.d_model={cfg.d_model} is not divisible by model.n_heads={cfg.n_heads}")
        self.n_heads = cfg.n_heads
        self.head_dim = cfg.d_model // cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class SwiGLU(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.gate_up = nn.Linear(cfg.d_model, 2 * cfg.d_mlp, bias=False)
        self.down = nn.Linear(cfg.d_mlp, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attn_norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.attn = Attention(cfg)
        self.mlp_norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.mlp = SwiGLU(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin)
        return x + self.mlp(self.mlp_norm(x))


class ProxyLM(nn.Module):
    """Decoder-only LM; `forward(ids, targets)` returns mean cross-entropy (nats/token) or logits."""

    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__()
        self.cfg = cfg
        self.vocab_size = padded_vocab(vocab_size)
        self.embed = nn.Embedding(self.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.d_model, self.vocab_size, bias=False)  # untied, as in the paper
        cos, sin = rope_tables(cfg.d_model // cfg.n_heads, cfg.max_seq_len, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init_weights)
        # GPT-2/OLMo-style: scale residual output projections by depth so activations stay O(1).
        for name, p in self.named_parameters():
            if name.endswith(("attn.out.weight", "mlp.down.weight")):
                nn.init.normal_(p, mean=0.0, std=cfg.init_std / math.sqrt(2 * cfg.n_layers))

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=self.cfg.init_std)

    def hidden_states(self, ids: torch.Tensor) -> torch.Tensor:
        """Final normalised hidden states (B, T, d): the output layer's input."""
        t = ids.shape[1]
        if t > self.cfg.max_seq_len:
            raise SettingsError(f"sequence of {t} tokens exceeds model.max_seq_len={self.cfg.max_seq_len}")
        cos, sin = self.rope_cos[:t], self.rope_sin[:t]
        x = self.embed(ids)
        for block in self.blocks:
            x = block(x, cos, sin)
        return self.norm(x)

    def forward(self, ids: torch.Tensor, targets: torch.Tensor | None = None, *, chunk_tokens: int | None = None) -> torch.Tensor:
        """Logits, or with `targets` the mean cross-entropy computed `chunk_tokens` tokens at a time
        (None: slices of at most CPU_LOGITS_BUDGET logits; 0: the plain loss over the full logits)."""
        h = self.hidden_states(ids)
        if targets is None:
            return self.lm_head(h)
        if chunk_tokens == 0:
            logits = self.lm_head(h)
            return F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))
        chunk = chunk_tokens or chunk_tokens_for(self.vocab_size, CPU_LOGITS_BUDGET)
        return chunked_cross_entropy(h, self.lm_head.weight, targets, chunk)


def count_parameters(model: ProxyLM) -> dict[str, int]:
    """Total and non-embedding parameters (the paper counts neither embedding nor output layer)."""
    total = sum(p.numel() for p in model.parameters())
    embedding = model.embed.weight.numel() + model.lm_head.weight.numel()
    return {"total": total, "non_embedding": total - embedding}
