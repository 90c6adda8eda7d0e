"""Model FLOPs per trained token, for throughput figures (GFLOP/s, MFU)."""

from __future__ import annotations

from regmix.config import ModelConfig
from regmix.model import padded_vocab


def flops_per_token(cfg: ModelConfig, vocab_size: int, seq_len: int) -> float:
    """Forward + backward FLOPs per token: 6 x (weights a token passes through: blocks and the
    output layer; the embedding is a lookup) + 12 x layers x width x context for attention scores
    and values (the PaLM appendix's count; causal masking's savings not subtracted)."""
    d, layers = cfg.d_model, cfg.n_layers
    per_block = 4 * d * d + 3 * d * cfg.d_mlp  # qkv + out, gate_up + down
    matmul_weights = layers * per_block + d * padded_vocab(vocab_size)
    return 6.0 * matmul_weights + 12.0 * layers * d * seq_len
